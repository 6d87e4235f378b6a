"""Documents: files of a workspace in folders, with versions, trash, quota, sharing and full-text search."""

from .plugin import DocumentsPlugin

plugin = DocumentsPlugin()
