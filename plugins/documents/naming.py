"""How documents and folders are named and addressed: clean names, page URLs, search ids, sizes, time stamps."""

from __future__ import annotations

from datetime import UTC, datetime

from concelho.plugins.workspaces.models import Workspace
from concelho.suite.content.media import safe_filename
from concelho.suite.i18n import N_

from .errors import DocumentError
from .models import Document, Folder

DOC_TYPE = "documents.document"
MAX_NAME = 200


def now() -> datetime:
    return datetime.now(UTC)


def human_size(n: int | None) -> str:
    """``512 B``, ``1.5 KB``, ``25.0 MB``…"""
    value = float(n or 0)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def doc_id(document_id: int) -> str:
    return f"{DOC_TYPE}:{document_id}"


def base_url(workspace: Workspace) -> str:
    return f"/intranet/espacos/{workspace.slug}/documentos/"


def document_url(workspace: Workspace, document: Document) -> str:
    return f"{base_url(workspace)}d/{document.id}/"


def folder_url(workspace: Workspace, folder: Folder | None) -> str:
    return base_url(workspace) if folder is None else f"{base_url(workspace)}pasta/{folder.id}/"


def clean_folder_name(name: str) -> str:
    """A folder name made harmless like a file name (slashes become dashes; dots are kept)."""
    name = (name or "").replace("/", "-").replace("\\", "-").strip()
    if not name.strip(". "):
        raise DocumentError(N_("Give the folder a name."))
    # ``safe_filename`` keeps what is before the last dot: the added dot keeps the whole name.
    return safe_filename(name + ".", "").strip()[:MAX_NAME]


def clean_document_name(name: str, content_type: str) -> str:
    """A harmless file name with the extension of the real (sniffed) type."""
    return safe_filename(name, content_type).strip()[:255]
