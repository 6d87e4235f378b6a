"""Bulk imports of departments and users: validate every row first, then commit all or nothing.

Re-running an import is idempotent: departments match by ``code``, users by
``employee_number`` when given, else by ``username``.

Two sources feed the same machinery: CSV files and LDIF exports of Active Directory (see
:mod:`concelho.suite.ldif`).  Each is turned into line-numbered rows (for LDIF, the line of the
entry's ``dn:``), then :func:`import_department_rows` / :func:`import_user_rows` validate every row,
report every problem with its line, and write all or nothing.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .audit import record
from .auth.sessions import destroy_user_sessions
from .ldif import LdifEntry, LdifError, dn_key, parse_ldif, split_dn
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
#: What an LDIF export provides: the rest (kind, roles; a department's e-mail, phone, order) is kept.
LDIF_DEPARTMENT_FIELDS = ("code", "name", "parent_code")
LDIF_USER_FIELDS = ("username", "email", "name", "employee_number", "department", "job_title", "phone")
FORMATS = ("csv", "ldif")
LDIF_SUFFIXES = (".ldif", ".ldf")
#: Column lengths of core_department / core_user (checked so PostgreSQL never refuses a row at commit).
MAX_LENGTHS = {"name": 200, "email": 200, "phone": 40, "job_title": 200, "employee_number": 40}
#: userAccountControl flag of a disabled Active Directory account.
ACCOUNTDISABLE = 0x2


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
    #: Disabled directory accounts that match no user (LDIF), by username; not in ``as_dict()``.
    skipped: int = 0
    skipped_details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
            "dry_run": self.dry_run,
        }


def _read_bytes(path: Path, what: str) -> bytes:
    """The file's bytes; ``what`` names the expected kind of file ("a CSV file")."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImportError_(["file not found"]) from None
    except IsADirectoryError:
        raise ImportError_([f"is a folder, not {what}"]) from None
    except OSError as exc:
        raise ImportError_([f"cannot read the file: {exc.strerror or exc}"]) from None


def detect_format(path: Path, fmt: str | None = None) -> str:
    """``csv`` or ``ldif``: as asked, else by the file's extension (``.ldif``, ``.ldf``), else CSV."""
    if fmt:
        fmt = fmt.strip().lower()
        if fmt not in FORMATS:
            raise ImportError_([f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})"])
        return fmt
    return "ldif" if path.suffix.lower() in LDIF_SUFFIXES else "csv"


def read_ldif(path: Path) -> list[LdifEntry]:
    """The entries of an LDIF file; every problem (with its line) in one :class:`ImportError_`."""
    raw = _read_bytes(path, "an LDIF file")
    try:
        return parse_ldif(raw)
    except LdifError as exc:
        raise ImportError_(exc.errors) from None


def read_csv(path: Path, required: tuple[str, ...], known: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows as (line number, values); the header must name the required columns."""
    raw = _read_bytes(path, "a CSV file")
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
    fmt: str | None = None,
) -> ImportResult:
    """Departments from CSV (``code,name[,parent_code,…]``) or from the OU entries of an LDIF export."""
    if detect_format(path, fmt) == "ldif":
        rows, errors = await ldif_department_rows(session, read_ldif(path))
        fields: tuple[str, ...] = LDIF_DEPARTMENT_FIELDS
    else:
        rows, errors, fields = read_csv(path, ("code", "name"), DEPARTMENT_COLUMNS), [], DEPARTMENT_COLUMNS
    return await import_department_rows(
        session, rows, source=str(path), fields=fields, errors=errors, dry_run=dry_run, actor=actor,
        progress=progress,
    )  # fmt: skip


async def import_department_rows(
    session: AsyncSession,
    rows: list[tuple[int, dict[str, Any]]],
    *,
    source: str,
    fields: tuple[str, ...] = DEPARTMENT_COLUMNS,
    errors: list[str] | None = None,
    dry_run: bool = False,
    actor: Actor | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Validate every row, then create or update departments, all or nothing.

    ``fields`` are the columns the source provides; the others of an existing department are kept.
    ``errors`` are problems the reader already found (reported together with the validation's).
    """
    errors = list(errors or [])
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
        errors.extend(_too_long(line, row, ("name", "email", "phone")))
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
        values: dict[str, Any] = {
            "name": r["name"],
            "email": r.get("email") or None,
            "phone": r.get("phone") or None,
            "sort_order": int(r.get("sort_order") or 0),
            "parent_id": ids.get(r.get("parent_code", "")) if r.get("parent_code") else None,
        }
        wanted = {"email", "phone", "sort_order"} & set(fields) | {"name"}
        if "parent_code" in fields:
            wanted.add("parent_id")
        values = {k: v for k, v in values.items() if k in wanted}
        if dep is None:
            if "parent_id" in values:
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
    await record(session, "departments.imported", actor=(actor or Actor()).name, target=source, **result.as_dict())
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


def _too_long(line: int, row: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    out = []
    for key in keys:
        value = row.get(key) or ""
        if isinstance(value, str) and len(value) > MAX_LENGTHS[key]:
            label = "e-mail" if key == "email" else key
            out.append(f"line {line}: {label} is longer than {MAX_LENGTHS[key]} characters")
    return out


async def import_users(
    session: AsyncSession,
    path: Path,
    *,
    dry_run: bool = False,
    deactivate_missing: bool = False,
    actor: Actor | None = None,
    progress: Callable[[int], None] | None = None,
    fmt: str | None = None,
) -> ImportResult:
    """Create or update users from CSV or LDIF; new users get no password until one is set."""
    if detect_format(path, fmt) == "ldif":
        rows, errors = await ldif_user_rows(session, read_ldif(path))
        fields: tuple[str, ...] = LDIF_USER_FIELDS
    else:
        rows, errors, fields = read_csv(path, ("username", "email"), USER_COLUMNS), [], USER_COLUMNS
    return await import_user_rows(
        session, rows, source=str(path), fields=fields, errors=errors, dry_run=dry_run,
        deactivate_missing=deactivate_missing, actor=actor, progress=progress,
    )  # fmt: skip


async def import_user_rows(
    session: AsyncSession,
    rows: list[tuple[int, dict[str, Any]]],
    *,
    source: str,
    fields: tuple[str, ...] = USER_COLUMNS,
    errors: list[str] | None = None,
    dry_run: bool = False,
    deactivate_missing: bool = False,
    actor: Actor | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Validate every row, then create or update users, all or nothing.

    ``fields`` are the columns the source provides: without ``kind`` and ``roles`` (LDIF) existing
    users keep theirs and new ones are employees.  A row with ``"active": False`` (a disabled
    directory account) only disables the user it matches (never a superuser) and is skipped when
    it matches nobody; its other values are not validated.
    """
    errors = list(errors or [])
    departments = {d.code: d.id for d in (await session.execute(select(Department))).scalars()}
    roles = {r.name: r.id for r in (await session.execute(select(Role))).scalars()}
    users = list((await session.execute(select(User))).scalars())
    by_number = {u.employee_number: u for u in users if u.employee_number}
    by_username = {u.username: u for u in users}
    by_email = {u.email.lower(): u for u in users}
    seen_usernames: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    seen_numbers: dict[str, int] = {}
    manages_roles = "roles" in fields
    compared = {"kind", "is_superuser"} if "kind" in fields else set()
    compared |= {_COLUMN_OF.get(f, f) for f in fields if f not in ("kind", "roles")}
    plan: list[tuple[int, dict[str, Any], User | None, list[str]]] = []
    disabled: list[tuple[str, User | None]] = []
    for line, row in rows:
        username = row["username"].lower()
        number = row.get("employee_number") or None
        if row.get("active") is False:
            target = (by_number.get(number) if number else None) or by_username.get(username)
            disabled.append((username, target))
            continue
        email = row["email"]
        kind = row.get("kind") or "employee"
        role_names = [r.strip() for r in (row.get("roles") or "employee").replace(",", ";").split(";") if r.strip()]
        if not USERNAME_RE.match(username):
            errors.append(f"line {line}: invalid username {row['username']!r}")
        if not email:
            errors.append(f"line {line}: e-mail is empty")
        elif not EMAIL_RE.match(email):
            errors.append(f"line {line}: invalid e-mail {email!r}")
        errors.extend(_too_long(line, row, ("email", "name", "employee_number", "job_title", "phone")))
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
            changed = {k: v for k, v in values.items() if k in compared and getattr(target, k) != v}
            current_roles = set(
                (await session.execute(select(Role.name).join(UserRole).where(UserRole.user_id == target.id))).scalars()
            )
            roles_change = manages_roles and current_roles != set(role_names)
            reactivate = not target.is_active
            if changed or reactivate or roles_change:
                if changed or reactivate:
                    await session.execute(update(User).where(User.id == target.id).values(**changed, is_active=True))
                if roles_change:
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
    kept = {t.id for _, _, t, _ in plan if t is not None}
    handled: set[int] = set()
    for username, target in disabled:
        if target is None or target.id in kept:  # unknown here, or the account of an enabled entry too
            result.skipped += 1
            result.skipped_details.append(username)
        elif target.id in handled or not target.is_active or target.is_superuser:
            result.unchanged += 1
        else:
            await session.execute(update(User).where(User.id == target.id).values(is_active=False))
            await destroy_user_sessions(session, target.id)
            result.deactivated += 1
            result.details.append(target.username)
        if target is not None:
            handled.add(target.id)
    if deactivate_missing:
        keep = {v["username"] for _, v, _, _ in plan} | {t.username for _, _, t, _ in plan if t is not None}
        for user in users:
            if user.username not in keep and user.id not in handled and user.is_active and not user.is_superuser:
                await session.execute(update(User).where(User.id == user.id).values(is_active=False))
                await destroy_user_sessions(session, user.id)
                result.deactivated += 1
                result.details.append(user.username)
    total = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    await record(
        session,
        "users.imported",
        actor=(actor or Actor()).name,
        target=source,
        total=total,
        **result.as_dict(),
    )
    if dry_run:
        await session.rollback()
    else:
        await session.commit()
    return result


_COLUMN_OF = {"department": "department_id"}


# ------------------------------------------------------------------------------------------------
# LDIF (Active Directory) entries → rows
# ------------------------------------------------------------------------------------------------
PERSON_CLASSES = {"user", "person", "organizationalperson", "inetorgperson"}


def fold(text: str) -> str:
    """Lowercase without accents, for matching names typed by people ("Divisao" finds "Divisão")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _is_unit(entry: LdifEntry, rdns: list[tuple[str, str]]) -> bool:
    classes = entry.object_classes
    if classes:
        return "organizationalunit" in classes
    return bool(rdns) and rdns[0][0] == "ou"


def _is_account(entry: LdifEntry) -> bool:
    """An account to import: a user (never a computer, whose objectClass includes user too)."""
    classes = entry.object_classes
    if "computer" in classes:
        return False
    if "user" in classes:
        return True  # an AD account: it must have a sAMAccountName (checked by the caller)
    if classes & PERSON_CLASSES:
        return bool(entry.first("samaccountname", "uid"))  # a contact has no account name: not ours
    return not classes and bool(entry.first("samaccountname", "uid"))


def _binary_errors(entry: LdifEntry, names: tuple[str, ...]) -> list[str]:
    return [
        f"line {entry.line}: {name} is not UTF-8 text"
        for name in names
        if entry.binary.get(name.lower()) and not entry.first(name)
    ]


async def ldif_department_rows(
    session: AsyncSession, entries: list[LdifEntry]
) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Departments from organisational units: code ← ``ou``, name ← ``description`` (else ``ou``),
    parent ← the OU above in the DN (when it is in the file or already a department; else a root)."""
    errors: list[str] = []
    units: list[tuple[LdifEntry, list[tuple[str, str]]]] = []
    for entry in entries:
        try:
            rdns = split_dn(entry.dn)
        except ValueError:
            if "organizationalunit" in entry.object_classes:
                errors.append(f"line {entry.line}: malformed dn {entry.dn!r}")
            continue
        if _is_unit(entry, rdns):
            units.append((entry, rdns))
    if not units and not errors:
        raise ImportError_(["the file has no organisational units (entries with objectClass organizationalUnit)"])
    codes_by_dn: dict[tuple[tuple[str, str], ...], str] = {}
    for entry, rdns in units:
        code = entry.first("ou") or (rdns[0][1] if rdns and rdns[0][0] == "ou" else "")
        codes_by_dn[dn_key(rdns)] = code
    known = set((await session.execute(select(Department.code))).scalars())
    rows: list[tuple[int, dict[str, Any]]] = []
    for entry, rdns in units:
        errors.extend(_binary_errors(entry, ("ou", "description")))
        code = codes_by_dn[dn_key(rdns)]
        parent_code = codes_by_dn.get(dn_key(rdns[1:]), "") if len(rdns) > 1 else ""
        if not parent_code and len(rdns) > 1 and rdns[1][0] == "ou" and rdns[1][1] in known:
            parent_code = rdns[1][1]
        name = entry.first("description") or code
        rows.append((entry.line, {"code": code, "name": name, "parent_code": parent_code}))
    return rows, errors


async def ldif_user_rows(
    session: AsyncSession, entries: list[LdifEntry]
) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Users from account entries: sAMAccountName → username, mail → email, displayName/cn → name,
    employeeID/employeeNumber → employee_number, department → department (by code, else by name),
    title → job_title, telephoneNumber → phone; userAccountControl's disabled bit → ``active: False``."""
    errors: list[str] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    departments = list((await session.execute(select(Department.code, Department.name))).all())
    by_folded_code: dict[str, list[str]] = {}
    by_folded_name: dict[str, list[str]] = {}
    for code, name in departments:
        by_folded_code.setdefault(fold(code), []).append(code)
        by_folded_name.setdefault(fold(name), []).append(code)
    codes = {code for code, _ in departments}
    accounts = [e for e in entries if _is_account(e)]
    if not accounts:
        raise ImportError_(["the file has no user accounts (entries with objectClass user and a sAMAccountName)"])
    for entry in accounts:
        line = entry.line
        problems: list[str] = []  # dropped for a disabled account: it is only ever disabled, never created
        mapped = ("sAMAccountName", "uid", "mail", "displayName", "cn", "employeeID", "employeeNumber",
                  "department", "title", "telephoneNumber", "userAccountControl")  # fmt: skip
        problems.extend(_binary_errors(entry, mapped))
        username = entry.first("samaccountname", "uid")
        if not username:
            errors.append(f"line {line}: no sAMAccountName")
            continue
        row: dict[str, Any] = {
            "username": username,
            "email": entry.first("mail"),
            "name": entry.first("displayname", "cn"),
            "employee_number": entry.first("employeeid", "employeenumber"),
            "department": "",
            "job_title": entry.first("title"),
            "phone": entry.first("telephonenumber"),
        }
        flags = entry.first("useraccountcontrol")
        if flags:
            try:
                if int(flags) & ACCOUNTDISABLE:
                    row["active"] = False
            except ValueError:
                errors.append(f"line {line}: userAccountControl {flags!r} is not a number")
        department = entry.first("department")
        if department:
            if department in codes:
                row["department"] = department
            else:
                matches = by_folded_code.get(fold(department)) or by_folded_name.get(fold(department)) or []
                if len(set(matches)) > 1:
                    problems.append(
                        f"line {line}: department {department!r} matches several departments "
                        f"({', '.join(sorted(set(matches)))}); give its code"
                    )
                row["department"] = matches[0] if len(set(matches)) == 1 else department
        if row.get("active") is not False:
            errors.extend(problems)
        rows.append((line, row))
    return rows, errors
