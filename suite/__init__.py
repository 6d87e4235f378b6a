"""Concelho core: app factory, settings, database, plugins, auth, templates, events, storage."""

__version__ = "0.1.0"
