"""The documents plugin object.

Events (through ``app.state.suite.events``, after the commit; every payload has ``workspace_id``,
``workspace_slug``, ``actor_id``, ``title`` and ``url``): ``documents.created`` (an upload or a copy;
``document_id``, ``version``), ``documents.version_added``, ``documents.version_restored``,
``documents.renamed``, ``documents.moved``, ``documents.trashed``, ``documents.restored``,
``documents.purged``, ``documents.shared`` (``document_id`` or ``folder_id``; ``shared_workspace_id``
and ``user_ids`` for a document), ``documents.folder_created``, ``documents.folder_renamed``,
``documents.folder_moved``, ``documents.folder_trashed``, ``documents.folder_restored``,
``documents.folder_purged``.

Settings (``[plugins.documents]``): ``max_file_bytes`` (one file, default 512 MiB),
``max_request_bytes`` (one upload request, default 2 GiB), ``extract_max_bytes`` (larger files are
kept without their text, default 20 MiB).
"""

from __future__ import annotations

from typing import Any

from concelho.suite.i18n import N_
from concelho.suite.plugins import NavItem, Plugin
from concelho.suite.request_scope import request_path
from markupsafe import Markup

MIB = 1024 * 1024
#: Staged uploads older than this were left by a crashed process (uploads in flight are refreshed each chunk).
STALE_STAGING_SECONDS = 6 * 3600


def documents_storage(settings: Any) -> Any:
    """The documents' storage: a ``documents/`` area of the suite's storage, with its own reference counts."""
    from concelho.suite.storage import LocalStorage

    return LocalStorage(settings.storage_dir / "documents")


def sweep_staging(storage: Any, older_than: float = STALE_STAGING_SECONDS) -> int:
    """Delete staged (temporary) files older than ``older_than`` seconds; returns how many."""
    import time

    removed = 0
    if not storage.tmp_dir.is_dir():
        return 0
    limit = time.time() - older_than
    for path in storage.tmp_dir.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


class DocumentsPlugin(Plugin):
    name = "documents"
    label = "Documents"
    version = "0.1.0"
    requires = ("workspaces",)

    def default_settings(self) -> dict[str, Any]:
        return {"max_file_bytes": 512 * MIB, "max_request_bytes": 2048 * MIB, "extract_max_bytes": 20 * MIB}

    def limits(self, settings: Any) -> dict[str, int]:
        """The effective limits of one app (plugin objects are shared by every app of a process)."""
        values = {**self.default_settings(), **settings.for_plugin(self.name)}
        return {key: int(values[key]) for key in ("max_file_bytes", "max_request_bytes", "extract_max_bytes")}

    def storage_for(self, state: Any) -> Any:
        """The documents' storage of one app (see :func:`documents_storage`; a light object)."""
        return documents_storage(state.settings)

    def on_startup(self, app: Any) -> None:
        """Remove staged files a crashed process left behind (an upload in flight is never that old)."""
        sweep_staging(documents_storage(app.state.suite.settings))

    def route_handlers(self) -> list[Any]:
        from .controllers import DocumentsController, SharedWithMeController

        return [DocumentsController, SharedWithMeController]

    def cli(self):  # type: ignore[no-untyped-def]
        from .cli import app

        return app

    def nav_items(self) -> list[NavItem]:
        return [NavItem(N_("Shared with me"), "/intranet/documentos/partilhados", area="intranet", order=21)]

    def template_hooks(self) -> dict[str, Any]:
        return {"workspace_sidebar": self.render_sidebar, "head": self.render_head}

    def search_providers(self) -> list[Any]:
        from .search_provider import DocumentProvider

        return [DocumentProvider()]

    def render_head(self, request: Any) -> str:
        if not request_path(request).startswith(("/intranet/espacos/", "/intranet/documentos/")):
            return ""
        return Markup(
            '<link rel="stylesheet" href="/static/documents/documents.css">'
            '<script src="/static/documents/documents.js" defer></script>'
        )

    def render_sidebar(self, request: Any) -> str:
        """A section of the workspace home's side column linking to the workspace's documents."""
        slug = (getattr(request, "path_params", None) or {}).get("slug")
        if not slug:
            return ""
        from concelho.suite.i18n import template_gettext
        from concelho.suite.render import request_language

        from .controllers import sidebar_link

        gettext, _ = template_gettext(request_language(request))
        return Markup(
            '<section class="workspace-documents" aria-labelledby="documents-title">'
            '<h2 id="documents-title">{}</h2><p><a href="{}">{}</a></p></section>'
        ).format(gettext("Documents"), sidebar_link(slug), gettext("Open the documents of this workspace"))
