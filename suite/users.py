"""User, role and department services shared by the web admin, the CLI and imports."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .audit import record
from .auth.passwords import check_policy, hash_password
from .auth.permissions import DEFAULT_ROLES
from .auth.sessions import destroy_user_sessions
from .i18n import N_
from .models import Department, Group, GroupMember, GroupRole, Role, User, UserRole

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
USER_KINDS = (N_("employee"), N_("staff"), N_("admin"))  # shown translated on the admin pages


class UserError(ValueError):
    """A user operation was refused; the message is fit to show as is."""


@dataclass
class Actor:
    """Who performs an action, for the audit log."""

    id: int | None = None
    name: str = "cli"
    ip: str | None = None


CLI_ACTOR = Actor()


def validate_username(username: str) -> str:
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise UserError(
            f"invalid username {username!r}: use 2-80 lowercase letters, digits, dots, dashes or underscores"
        )
    return username


def validate_email(email: str) -> str:
    email = email.strip()
    if not EMAIL_RE.match(email):
        raise UserError(f"invalid e-mail address {email!r}")
    return email


async def get_user(session: AsyncSession, username: str) -> User:
    user = (
        await session.execute(select(User).where(func.lower(User.username) == username.strip().lower()))
    ).scalar_one_or_none()
    if user is None:
        raise UserError(f"no user named {username!r}")
    return user


async def get_role(session: AsyncSession, name: str) -> Role:
    role = (await session.execute(select(Role).where(Role.name == name))).scalar_one_or_none()
    if role is None:
        names = (await session.execute(select(Role.name).order_by(Role.name))).scalars().all()
        raise UserError(f"no role named {name!r} (roles: {', '.join(names) or 'none'})")
    return role


async def ensure_default_roles(session: AsyncSession, all_permissions: list[str]) -> None:
    """Create the built-in roles; ``admin`` holds every permission declared by enabled plugins."""
    for name, (label, perms) in DEFAULT_ROLES.items():
        role = (await session.execute(select(Role).where(Role.name == name))).scalar_one_or_none()
        wanted = sorted(set(perms) | (set(all_permissions) if name == "admin" else set()))
        if role is None:
            session.add(Role(name=name, label=label, permissions=wanted))
        elif name == "admin" and set(role.permissions) != set(wanted):
            role.permissions = wanted


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    email: str,
    password: str,
    name: str = "",
    kind: str = "employee",
    roles: list[str] | None = None,
    actor: Actor = CLI_ACTOR,
) -> User:
    username = validate_username(username)
    email = validate_email(email)
    if kind not in USER_KINDS:
        raise UserError(f"invalid kind {kind!r}: one of {', '.join(USER_KINDS)}")
    try:
        check_policy(password)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    clash = (
        await session.execute(
            select(User.username).where(
                (func.lower(User.username) == username) | (func.lower(User.email) == email.lower())
            )
        )
    ).first()
    if clash:
        raise UserError(f"a user with username {username!r} or e-mail {email!r} already exists")
    role_names = list(roles or (["admin", "employee"] if kind == "admin" else ["employee"]))
    role_rows = [await get_role(session, r) for r in role_names]
    user = User(
        username=username,
        email=email,
        name=name.strip(),
        password_hash=hash_password(password),
        kind=kind,
        is_superuser=kind == "admin",
    )
    session.add(user)
    await session.flush()
    for role in role_rows:
        session.add(UserRole(user_id=user.id, role_id=role.id))
    await record(
        session,
        "user.created",
        actor_id=actor.id,
        actor=actor.name,
        target=username,
        ip=actor.ip,
        roles=role_names,
    )
    return user


async def set_password(session: AsyncSession, username: str, password: str, actor: Actor = CLI_ACTOR) -> None:
    user = await get_user(session, username)
    try:
        check_policy(password)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    user.password_hash = hash_password(password)
    await destroy_user_sessions(session, user.id)
    await record(session, "user.password_set", actor_id=actor.id, actor=actor.name, target=user.username, ip=actor.ip)


async def set_active(session: AsyncSession, username: str, active: bool, actor: Actor = CLI_ACTOR) -> User:
    user = await get_user(session, username)
    user.is_active = active
    if not active:
        await destroy_user_sessions(session, user.id)
    await record(
        session,
        "user.enabled" if active else "user.disabled",
        actor_id=actor.id,
        actor=actor.name,
        target=user.username,
        ip=actor.ip,
    )
    return user


async def set_roles(session: AsyncSession, username: str, role_names: list[str], actor: Actor = CLI_ACTOR) -> User:
    """Replace the user's roles; bumps ``auth_version`` so their sessions are rotated."""
    user = await get_user(session, username)
    roles = [await get_role(session, r) for r in sorted(set(role_names))]
    current = (
        (await session.execute(select(Role.name).join(UserRole).where(UserRole.user_id == user.id))).scalars().all()
    )
    for link in (await session.execute(select(UserRole).where(UserRole.user_id == user.id))).scalars():
        await session.delete(link)
    await session.flush()
    for role in roles:
        session.add(UserRole(user_id=user.id, role_id=role.id))
    user.auth_version += 1
    await record(
        session,
        "user.roles_changed",
        actor_id=actor.id,
        actor=actor.name,
        target=user.username,
        ip=actor.ip,
        before=sorted(current),
        after=[r.name for r in roles],
    )
    return user


async def user_roles(session: AsyncSession, user_id: int) -> list[str]:
    return list(
        (
            await session.execute(
                select(Role.name).join(UserRole).where(UserRole.user_id == user_id).order_by(Role.name)
            )
        ).scalars()
    )


async def department_tree(session: AsyncSession) -> list[tuple[int, Department]]:
    """Departments in tree order as (depth, department)."""
    rows = (await session.execute(select(Department).order_by(Department.sort_order, Department.name))).scalars().all()
    children: dict[int | None, list[Department]] = {}
    for dep in rows:
        children.setdefault(dep.parent_id, []).append(dep)
    out: list[tuple[int, Department]] = []

    def walk(parent: int | None, depth: int) -> None:
        for dep in children.get(parent, []):
            out.append((depth, dep))
            walk(dep.id, depth + 1)

    walk(None, 0)
    return out


async def get_group(session: AsyncSession, name: str) -> Group:
    group = (await session.execute(select(Group).where(Group.name == name))).scalar_one_or_none()
    if group is None:
        raise UserError(f"no group named {name!r}")
    return group


async def create_group(session: AsyncSession, name: str, label: str = "", actor: Actor = CLI_ACTOR) -> Group:
    name = validate_username(name)
    if (await session.execute(select(Group.id).where(Group.name == name))).first():
        raise UserError(f"a group named {name!r} already exists")
    group = Group(name=name, label=label)
    session.add(group)
    await session.flush()
    await record(session, "group.created", actor_id=actor.id, actor=actor.name, target=name, ip=actor.ip)
    return group


async def _bump_members(session: AsyncSession, group_id: int) -> None:
    member_ids = select(GroupMember.user_id).where(GroupMember.group_id == group_id)
    await session.execute(update(User).where(User.id.in_(member_ids)).values(auth_version=User.auth_version + 1))


async def set_group_membership(
    session: AsyncSession, group_name: str, username: str, member: bool, actor: Actor = CLI_ACTOR
) -> None:
    """Add or remove a member; the user's sessions rotate because their permissions may change."""
    group = await get_group(session, group_name)
    user = await get_user(session, username)
    link = await session.get(GroupMember, (group.id, user.id))
    if member and link is None:
        session.add(GroupMember(group_id=group.id, user_id=user.id))
    elif not member and link is not None:
        await session.delete(link)
    else:
        return
    user.auth_version += 1
    await record(
        session, "group.member_added" if member else "group.member_removed", actor_id=actor.id, actor=actor.name,
        target=f"{group.name}:{user.username}", ip=actor.ip,
    )  # fmt: skip


async def set_group_roles(
    session: AsyncSession, group_name: str, role_names: list[str], actor: Actor = CLI_ACTOR
) -> None:
    """Replace a group's roles; every member's sessions rotate."""
    group = await get_group(session, group_name)
    roles = [await get_role(session, r) for r in sorted(set(role_names))]
    await session.execute(delete(GroupRole).where(GroupRole.group_id == group.id))
    for role in roles:
        session.add(GroupRole(group_id=group.id, role_id=role.id))
    await _bump_members(session, group.id)
    await record(session, "group.roles_changed", actor_id=actor.id, actor=actor.name, target=group.name, ip=actor.ip,
                 after=[r.name for r in roles])  # fmt: skip
