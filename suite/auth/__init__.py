"""Authentication, sessions, permissions and login throttling."""
