"""Permissions: plugins declare ``<plugin>.<action>`` strings; roles bundle them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import GroupMember, GroupRole, Role, UserRole

CORE_PERMISSIONS: dict[str, str] = {
    "core.admin": "Administer users, roles and settings",
    "core.audit": "Read the audit log",
    "intranet.access": "Use the intranet",
    "content.edit": "Write and edit content, submit it for review",
    "content.publish": "Publish, schedule, unpublish and archive content",
}

#: Roles created by ``suite init``; plugins' permissions are added to ``admin`` implicitly.
DEFAULT_ROLES: dict[str, tuple[str, list[str]]] = {
    "employee": ("Employee", ["intranet.access"]),
    "editor": ("Editor", ["intranet.access", "content.edit"]),
    "publisher": ("Publisher", ["intranet.access", "content.edit", "content.publish"]),
    "admin": (
        "Administrator",
        ["core.admin", "core.audit", "intranet.access", "content.edit", "content.publish"],
    ),
}


@dataclass(frozen=True)
class CurrentUser:
    """The signed-in user as seen by guards, templates and services."""

    id: int
    username: str
    name: str
    email: str
    is_superuser: bool
    department_id: int | None
    permissions: frozenset[str] = field(default_factory=frozenset)

    @property
    def display_name(self) -> str:
        return self.name or self.username

    def has(self, permission: str) -> bool:
        return self.is_superuser or permission in self.permissions


async def permissions_for(session: AsyncSession, user_id: int) -> frozenset[str]:
    """Union of the permissions of the user's own roles and of their groups' roles."""
    direct = select(UserRole.role_id).where(UserRole.user_id == user_id)
    via_groups = (
        select(GroupRole.role_id)
        .join(GroupMember, GroupMember.group_id == GroupRole.group_id)
        .where(GroupMember.user_id == user_id)
    )
    role_ids = union(direct, via_groups).subquery()
    rows = (await session.execute(select(Role.permissions).where(Role.id.in_(select(role_ids))))).scalars()
    return frozenset(perm for perms in rows for perm in perms)
