"""Workspaces: team spaces with members and roles (open or private), the base of document sharing."""

from .plugin import WorkspacesPlugin

plugin = WorkspacesPlugin()
