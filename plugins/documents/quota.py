"""Space used by a workspace's documents against its quota (a stored file counts once, however often it is used)."""

from __future__ import annotations

from concelho.plugins.workspaces.models import Workspace
from concelho.suite.i18n import N_
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .errors import QuotaError
from .models import Document, Version


async def usage(session: AsyncSession, workspace_id: int) -> int:
    """Bytes the workspace uses: every distinct file of every version (trash included, until purged)."""
    distinct = (
        select(Version.storage_key, Version.size)
        .join(Document, Document.id == Version.document_id)
        .where(Document.workspace_id == workspace_id)
        .distinct()
        .subquery()
    )
    return int((await session.execute(select(func.coalesce(func.sum(distinct.c.size), 0)))).scalar_one())


async def _key_in_workspace(session: AsyncSession, workspace_id: int, key: str) -> bool:
    row = await session.execute(
        select(Version.id)
        .join(Document, Document.id == Version.document_id)
        .where(Document.workspace_id == workspace_id, Version.storage_key == key)
        .limit(1)
    )
    return row.first() is not None


class Budget:
    """What is left of a workspace's quota during one transaction (one usage query, then kept up to date)."""

    def __init__(self, workspace: Workspace, used: int, keys: set[str] | None = None) -> None:
        self.workspace = workspace
        self.used = used
        self.keys: set[str] = set(keys or ())
        #: With every key of the workspace loaded (bulk imports), no query is needed per file.
        self.complete = keys is not None

    @classmethod
    async def load(cls, session: AsyncSession, workspace: Workspace, *, all_keys: bool = False) -> Budget:
        keys = None
        if all_keys:
            rows = await session.execute(
                select(Version.storage_key)
                .join(Document, Document.id == Version.document_id)
                .where(Document.workspace_id == workspace.id)
                .distinct()
            )
            keys = {key for (key,) in rows}
        return cls(workspace, await usage(session, workspace.id), keys)

    async def charge(self, session: AsyncSession, key: str, size: int) -> None:
        """Count a new file; raises :class:`QuotaError` when it does not fit (the same content counts once)."""
        if key in self.keys:
            return
        if not self.complete and await _key_in_workspace(session, self.workspace.id, key):
            return
        if self.used + size > self.workspace.quota_bytes:
            raise QuotaError(N_("Not enough space left in this workspace (quota reached)."))
        self.used += size
        self.keys.add(key)


async def check_quota(session: AsyncSession, workspace: Workspace, key: str, size: int) -> None:
    await (await Budget.load(session, workspace)).charge(session, key, size)


async def remaining(session: AsyncSession, workspace: Workspace) -> int:
    return max(0, workspace.quota_bytes - await usage(session, workspace.id))
