"""Staff directory: people with department, role, phones, e-mail, location and photo; search; the
department tree; the opted-in people on the public org chart (only the fields they made public)."""

from .plugin import DirectoryPlugin

plugin = DirectoryPlugin()
