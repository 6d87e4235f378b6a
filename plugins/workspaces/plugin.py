"""The workspaces plugin object."""

from __future__ import annotations

from typing import Any

from concelho.suite.plugins import NavItem, Plugin


class WorkspacesPlugin(Plugin):
    name = "workspaces"
    label = "Workspaces"
    version = "0.1.0"
    permissions = {
        "workspaces.create": "Create workspaces",
        "workspaces.admin": "Manage every workspace",
    }

    def default_settings(self) -> dict[str, Any]:
        #: When true, any employee may create a workspace (else only holders of workspaces.create).
        return {"employees_can_create": False}

    def cli(self):  # type: ignore[no-untyped-def]
        from .cli import app

        return app

    def nav_items(self) -> list[NavItem]:
        return [NavItem("Workspaces", "/intranet/espacos/", area="intranet", order=20)]

    def visibility_hooks(self) -> dict[str, Any]:
        """Other parts of the suite (search) ask which workspaces a user may read."""
        from .services import workspace_ids_for

        return {"workspace_ids": workspace_ids_for}
