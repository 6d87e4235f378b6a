"""Document rules, one module per responsibility; this module gathers them for ``from . import services as svc``.

Controllers, the CLI, the importer and the search provider call these; nothing here knows about HTTP.  Every
function that changes a document adds the search outbox row in the caller's transaction; files are put into the
storage before the rows that point at them and removed only after the rows that pointed at them are gone
(:func:`trash.collect_garbage`, after the commit).

* :mod:`.errors`: :class:`DocumentError`, :class:`QuotaError`;
* :mod:`.naming`: clean names, page URLs, search ids, sizes;
* :mod:`.rights`: who may do what (read, edit, organise, upload, share, purge);
* :mod:`.tree`: finding folders and documents, their ancestors and descendants;
* :mod:`.quota`: space used against the workspace's quota;
* :mod:`.versions`: keeping received files as documents and versions; :mod:`.bulk`: many at once (imports);
* :mod:`.organise`: new folders, renaming, moving and copying;
* :mod:`.trash`: trash, restore, purge and removing unused stored files;
* :mod:`.sharing`: shares with workspaces and people, and the workspaces search shows a document to;
* :mod:`.activity`: the search outbox and the workspace's activity feed.
"""

from __future__ import annotations

from .activity import activity
from .bulk import BulkItem, Index, add_files
from .errors import DocumentError, QuotaError
from .models import Folder
from .naming import (
    DOC_TYPE,
    MAX_NAME,
    base_url,
    clean_document_name,
    clean_folder_name,
    doc_id,
    document_url,
    folder_url,
    human_size,
    now,
)  # fmt: skip
from .organise import (
    copy_document,
    copy_folder,
    create_folder,
    move_document,
    move_folder,
    rename_document,
    rename_folder,
)  # fmt: skip
from .quota import Budget, check_quota, remaining, usage
from .rights import NO_RIGHTS, Rights, Viewer, document_rights, folder_rights, share_level
from .sharing import add_share, document_workspace_ids, remove_share, shared_with, shares_of
from .trash import (
    collect_garbage,
    purge_document,
    purge_folder,
    restore_document,
    restore_folder,
    trash,
    trash_document,
    trash_folder,
)  # fmt: skip
from .tree import (
    MAX_DEPTH,
    ancestors,
    descendants,
    find_document,
    find_folder,
    get_document,
    get_folder,
    list_folder,
)  # fmt: skip
from .versions import Added, Blobs, NewFile, add_file, add_version, get_version, restore_version, versions

__all__ = [
    "DOC_TYPE", "MAX_DEPTH", "MAX_NAME", "NO_RIGHTS", "Added", "Blobs", "Budget", "BulkItem", "DocumentError",
    "Folder", "Index", "NewFile", "QuotaError", "Rights", "Viewer", "activity", "add_file", "add_files",
    "add_share", "add_version", "ancestors", "base_url", "check_quota", "clean_document_name", "clean_folder_name",
    "collect_garbage", "copy_document", "copy_folder", "create_folder", "descendants", "doc_id", "document_rights",
    "document_url", "document_workspace_ids", "find_document", "find_folder", "folder_rights", "folder_url",
    "get_document", "get_folder", "get_version", "human_size", "list_folder", "move_document", "move_folder", "now",
    "purge_document", "purge_folder", "remaining", "remove_share", "rename_document", "rename_folder",
    "restore_document", "restore_folder", "restore_version", "share_level", "shared_with", "shares_of", "trash",
    "trash_document", "trash_folder", "usage", "versions",
]  # fmt: skip
