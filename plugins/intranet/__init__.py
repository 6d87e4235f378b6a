"""Intranet: the employee home (news with read receipts, workspaces, activity, quick links, notifications)."""

from .plugin import IntranetPlugin

plugin = IntranetPlugin()
