"""The workspaces plugin object and its wiki page content type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from concelho.suite.content.types import ContentType, FieldSpec
from concelho.suite.i18n import N_
from concelho.suite.plugins import NavItem, Plugin

SLUG_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"


@dataclass(frozen=True)
class WorkspacePageType(ContentType):
    """Wiki pages live under their workspace: ``/intranet/espacos/{space}/paginas/{page}``.

    The content store's slug must be unique per type, so it is ``{workspace id}-{page}``; the
    workspace's slug and the page's own slug are kept in ``data``.
    """

    def path_for(self, item: Any) -> str:
        data = item.data or {}
        return f"/intranet/espacos/{data.get('space', '')}/paginas/{data.get('page', item.slug)}"


PAGE = WorkspacePageType(
    name="workspaces.page",
    label=N_("Workspace page"),
    url_pattern="/intranet/espacos/{slug}",
    fields=(
        FieldSpec("space", N_("Workspace"), required=True, max_length=80, pattern=SLUG_PATTERN),
        FieldSpec("page", N_("Page address"), required=True, max_length=120, pattern=SLUG_PATTERN),
    ),
    schema_type="WebPage",
    listed_in_sitemap=False,
)


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

    def settings_for(self, settings: Any) -> dict[str, Any]:
        """The effective settings of one app (plugin objects are shared by every app of the process)."""
        return {**self.default_settings(), **settings.for_plugin(self.name)}

    def cli(self):  # type: ignore[no-untyped-def]
        from .cli import app

        return app

    def content_types(self) -> list[ContentType]:
        return [PAGE]

    def route_handlers(self) -> list[Any]:
        from .controllers import WorkspacesController

        return [WorkspacesController]

    def nav_items(self) -> list[NavItem]:
        return [NavItem(N_("Workspaces"), "/intranet/espacos/", area="intranet", order=20)]

    def visibility_hooks(self) -> dict[str, Any]:
        """Other parts of the suite (search) ask which workspaces a user may read."""
        from .services import workspace_ids_for

        return {"workspace_ids": workspace_ids_for}
