"""Bulk imports of departments and users: validate every row first, then commit all or nothing.

Re-running an import is idempotent: departments match by ``code``, users by
``employee_number`` when given, else by ``username``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .audit import record
from .auth.sessions import destroy_user_sessions
from .models import Department, Role, User, UserRole
from .users import EMAIL_RE, USER_KINDS, USERNAME_RE, Actor

DEPARTMENT_COLUMNS = ("code", "name", "parent_code", "email", "phone", "sort_order")
USER_COLUMNS = (
    "username",
    "email",
    "name",
    "employee_number",
    "department",
    "job_title",
    "phone",
    "kind",
    "roles",
)


class ImportError_(ValueError):
    """The file cannot be imported; ``errors`` lists every problem with its line number."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} error(s): " + "; ".join(errors[:5]) + (" …" if len(errors) > 5 else ""))


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    dry_run: bool = False
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
            "dry_run": self.dry_run,
        }


def read_csv(path: Path, required: tuple[str, ...], known: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows as (line number, values); the header must name the required columns."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ImportError_(["file not found"]) from None
    except IsADirectoryError:
        raise ImportError_(["is a folder, not a CSV file"]) from None
    except OSError as exc:
        raise ImportError_([f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportError_(["not UTF-8 text"]) from None
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise ImportError_([f"line 1: {exc}"]) from None
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in known]
    problems = []
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"line 1: unknown column(s) {', '.join(unknown)} (known: {', '.join(known)})")
    if problems:
        raise ImportError_(problems)
    reader.fieldnames = header
    rows = []
    try:
        for row in reader:
            values = {k: (v or "").strip() for k, v in row.items() if k is not None}
            if any(values.values()):
                rows.append((reader.line_num, values))
    except csv.Error as exc:
        raise ImportError_([f"line {reader.line_num}: {exc}"]) from None
    return rows


async def import_departments(
    session: AsyncSession,
    path: Path,
    *,
    dry_run: bool = False,
    actor: Actor | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    rows = read_csv(path, ("code", "name"), DEPARTMENT_COLUMNS)
    errors: list[str] = []
    existing = {d.code: d for d in (await session.execute(select(Department))).scalars()}
    seen: dict[str, int] = {}
    parents: dict[str, str] = {code: "" for code in existing}
    for dep in existing.values():
        if dep.parent_id:
            parent = next((d.code for d in existing.values() if d.id == dep.parent_id), "")
            parents[dep.code] = parent
    for line, row in rows:
        code, name = row["code"], row["name"]
        if not code:
            errors.append(f"line {line}: code is empty")
        elif len(code) > 40:
            errors.append(f"line {line}: code {code!r} is longer than 40 characters")
        elif code in seen:
            errors.append(f"line {line}: code {code!r} repeats line {seen[code]}")
        if not name:
            errors.append(f"line {line}: name is empty")
        if row.get("email") and not EMAIL_RE.match(row["email"]):
            errors.append(f"line {line}: invalid e-mail {row['email']!r}")
        if row.get("sort_order") and not row["sort_order"].lstrip("-").isdigit():
            errors.append(f"line {line}: sort_order must be a whole number")
        seen.setdefault(code, line)
        parents[code] = row.get("parent_code", "")
    for line, row in rows:
        parent = row.get("parent_code", "")
        if parent and parent not in parents:
            errors.append(f"line {line}: parent_code {parent!r} is neither in the file nor in the database")
        elif parent == row["code"] and parent:
            errors.append(f"line {line}: a department cannot be its own parent")
    for line, row in rows:  # cycles
        code, hops = row["code"], 0
        cursor = parents.get(code, "")
        while cursor and hops < len(parents) + 1:
            if cursor == code:
                errors.append(f"line {line}: parent_code makes a cycle through {code!r}")
                break
            cursor, hops = parents.get(cursor, ""), hops + 1
    if errors:
        raise ImportError_(sorted(set(errors), key=_line_key))

    result = ImportResult(dry_run=dry_run)
    new_rows = [r for _, r in rows if r["code"] not in existing]
    if new_rows:
        await session.execute(
            insert(Department),
            [
                {
                    "code": r["code"],
                    "name": r["name"],
                    "email": r.get("email") or None,
                    "phone": r.get("phone") or None,
                    "sort_order": int(r.get("sort_order") or 0),
                }
                for r in new_rows
            ],
        )
    result.created = len(new_rows)
    ids = {d.code: d.id for d in (await session.execute(select(Department))).scalars()}
    for index, (_, r) in enumerate(rows, 1):
        dep = existing.get(r["code"])
        values = {
            "name": r["name"],
            "email": r.get("email") or None,
            "phone": r.get("phone") or None,
            "sort_order": int(r.get("sort_order") or 0),
            "parent_id": ids.get(r.get("parent_code", "")) if r.get("parent_code") else None,
        }
        if dep is None:
            await session.execute(
                update(Department).where(Department.code == r["code"]).values(parent_id=values["parent_id"])
            )
        elif any(getattr(dep, k) != v for k, v in values.items()):
            await session.execute(update(Department).where(Department.id == dep.id).values(**values))
            result.updated += 1
        else:
            result.unchanged += 1
        if progress:
            progress(index)
    await record(session, "departments.imported", actor=(actor or Actor()).name, target=str(path), **result.as_dict())
    if dry_run:
        await session.rollback()
    else:
        await session.commit()
    return result


def _line_key(message: str) -> tuple[int, str]:
    try:
        return int(message.split(":")[0].split()[1]), message
    except (IndexError, ValueError):
        return 0, message


async def import_users(
    session: AsyncSession,
    path: Path,
    *,
    dry_run: bool = False,
    deactivate_missing: bool = False,
    actor: Actor | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Create or update users from CSV; new users get no password until one is set."""
    rows = read_csv(path, ("username", "email"), USER_COLUMNS)
    errors: list[str] = []
    departments = {d.code: d.id for d in (await session.execute(select(Department))).scalars()}
    roles = {r.name: r.id for r in (await session.execute(select(Role))).scalars()}
    users = list((await session.execute(select(User))).scalars())
    by_number = {u.employee_number: u for u in users if u.employee_number}
    by_username = {u.username: u for u in users}
    by_email = {u.email.lower(): u for u in users}
    seen_usernames: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    seen_numbers: dict[str, int] = {}
    plan: list[tuple[int, dict[str, Any], User | None, list[str]]] = []
    for line, row in rows:
        username = row["username"].lower()
        email = row["email"]
        number = row.get("employee_number") or None
        kind = row.get("kind") or "employee"
        role_names = [r.strip() for r in (row.get("roles") or "employee").replace(",", ";").split(";") if r.strip()]
        if not USERNAME_RE.match(username):
            errors.append(f"line {line}: invalid username {row['username']!r}")
        if not EMAIL_RE.match(email):
            errors.append(f"line {line}: invalid e-mail {email!r}")
        if kind not in USER_KINDS:
            errors.append(f"line {line}: kind must be one of {', '.join(USER_KINDS)}, got {kind!r}")
        for role in role_names:
            if role not in roles:
                errors.append(f"line {line}: unknown role {role!r}")
        dep_code = row.get("department", "")
        if dep_code and dep_code not in departments:
            errors.append(f"line {line}: unknown department {dep_code!r}")
        for seen, key, label in (
            (seen_usernames, username, "username"),
            (seen_emails, email.lower(), "e-mail"),
            (seen_numbers, number, "employee_number"),
        ):
            if key and key in seen:
                errors.append(f"line {line}: {label} {key!r} repeats line {seen[key]}")
            elif key:
                seen[key] = line
        target = by_number.get(number) if number else None
        target = target or by_username.get(username)
        other = by_email.get(email.lower())
        if other is not None and other is not target:
            errors.append(f"line {line}: e-mail {email!r} belongs to another user ({other.username})")
        if target is not None and username != target.username and username in by_username:
            errors.append(f"line {line}: username {username!r} belongs to another user")
        values = {
            "username": username,
            "email": email,
            "name": row.get("name", ""),
            "employee_number": number,
            "department_id": departments.get(dep_code) if dep_code else None,
            "job_title": row.get("job_title") or None,
            "phone": row.get("phone") or None,
            "kind": kind,
            "is_superuser": kind == "admin",
        }
        plan.append((line, values, target, role_names))
    if errors:
        raise ImportError_(sorted(set(errors), key=_line_key))

    result = ImportResult(dry_run=dry_run)
    new = [(v, r) for _, v, t, r in plan if t is None]
    if new:
        await session.execute(insert(User), [{**v, "password_hash": "", "is_active": True} for v, _ in new])
    ids = {
        u: i
        for u, i in (
            await session.execute(
                select(User.username, User.id).where(User.username.in_([v["username"] for v, _ in new]))
            )
        ).all()
    }
    links = [{"user_id": ids[v["username"]], "role_id": roles[r]} for v, names in new for r in names]
    if links:
        await session.execute(insert(UserRole), links)
    result.created = len(new)
    for index, (_, values, target, role_names) in enumerate(plan, 1):
        if target is not None:
            changed = {k: v for k, v in values.items() if getattr(target, k) != v}
            current_roles = set(
                (await session.execute(select(Role.name).join(UserRole).where(UserRole.user_id == target.id))).scalars()
            )
            reactivate = not target.is_active
            if changed or reactivate or current_roles != set(role_names):
                if changed or reactivate:
                    await session.execute(update(User).where(User.id == target.id).values(**changed, is_active=True))
                if current_roles != set(role_names):
                    from sqlalchemy import delete

                    await session.execute(delete(UserRole).where(UserRole.user_id == target.id))
                    await session.execute(
                        insert(UserRole), [{"user_id": target.id, "role_id": roles[r]} for r in role_names]
                    )
                    await session.execute(
                        update(User).where(User.id == target.id).values(auth_version=User.auth_version + 1)
                    )
                result.updated += 1
            else:
                result.unchanged += 1
        if progress:
            progress(index)
    if deactivate_missing:
        keep = {v["username"] for _, v, _, _ in plan} | {t.username for _, _, t, _ in plan if t is not None}
        for user in users:
            if user.username not in keep and user.is_active and not user.is_superuser:
                await session.execute(update(User).where(User.id == user.id).values(is_active=False))
                await destroy_user_sessions(session, user.id)
                result.deactivated += 1
                result.details.append(user.username)
    total = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    await record(
        session,
        "users.imported",
        actor=(actor or Actor()).name,
        target=str(path),
        total=total,
        **result.as_dict(),
    )
    if dry_run:
        await session.rollback()
    else:
        await session.commit()
    return result
