"""Who may see a search document, and the caller's :class:`Visibility` built from *current* memberships.

The rules (the same in every backend, the database fallback and best bets):

* ``public`` documents: everyone;
* ``internal`` documents: any employee (``Visibility.authenticated``), or members of one of the
  document's ``department_ids``;
* ``workspace`` documents: members of one of the document's ``workspace_ids`` only;
* ``Visibility.everything`` (administrators' tools, never the portal) sees all.

Workspace memberships come from plugins, asked at query time: ``Plugin.visibility_hooks()``
(``{"workspace_ids": async (session, user_id) -> set[int]}``, collected by
``PluginRegistry.workspace_ids_for``; the workspaces plugin answers) and any search provider with an
``async workspace_ids(session, user_id)`` method.  Departments come from the user's row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .contract import SearchDocument, Visibility


def can_see(
    visibility: Visibility,
    audience: str,
    workspace_ids: Iterable[int] = (),
    department_ids: Iterable[int] = (),
) -> bool:
    if visibility.everything or audience == "public":
        return True
    if audience == "internal":
        return visibility.authenticated or bool(visibility.department_ids & set(department_ids))
    if audience == "workspace":
        return bool(visibility.workspace_ids & set(workspace_ids))
    return False


def can_see_document(visibility: Visibility, doc: SearchDocument) -> bool:
    return can_see(visibility, doc.audience, doc.workspace_ids, doc.department_ids)


async def workspace_ids_for(session: AsyncSession, registry: Any, user_id: int) -> frozenset[int]:
    """Workspaces ``user_id`` may read now: the plugins' ``visibility_hooks()["workspace_ids"]`` (through
    ``PluginRegistry.workspace_ids_for``), plus any search provider with an ``async workspace_ids`` method."""
    from .providers import plugin_providers

    found: set[int] = set()
    registry_hook = getattr(registry, "workspace_ids_for", None)
    if registry_hook is not None:
        found.update(int(i) for i in await registry_hook(session, user_id))
    for provider in plugin_providers(registry):
        hook = getattr(provider, "workspace_ids", None)
        if hook is not None:
            found.update(int(i) for i in await hook(session, user_id))
    return frozenset(found)


async def visibility_for(session: AsyncSession, registry: Any, user: Any | None) -> Visibility:
    """What ``user`` (a signed-in ``CurrentUser`` or ``None``) may see *now*.

    Employees (``intranet.access``) see internal documents; the department is re-read from the
    user's row and workspaces asked of the membership hooks, so a move takes effect at once.
    """
    if user is None:
        return Visibility.anonymous()
    from concelho.suite.models import User

    row = (await session.execute(select(User.department_id, User.is_active).where(User.id == user.id))).first()
    if row is None or not row.is_active:
        return Visibility.anonymous()
    departments = frozenset({row.department_id}) if row.department_id is not None else frozenset()
    return Visibility(
        authenticated=user.has("intranet.access"),
        workspace_ids=await workspace_ids_for(session, registry, user.id),
        department_ids=departments,
    )
