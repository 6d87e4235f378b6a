"""Directory rules shared by the pages and the portal slot: who is listed, search, profile editing, public cards.

Name, e-mail, job title, department and the switchboard phone come from the account (``core_user``,
kept up to date by ``suite users import``); the profile adds location, office phone, mobile, photo
and the person's choice of what the public portal may show.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from concelho.suite.audit import record
from concelho.suite.cache import bump_cache_generation
from concelho.suite.content.models import Media
from concelho.suite.i18n import N_
from concelho.suite.models import Department, User
from concelho.suite.users import department_tree
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Profile

#: Fields a person may make public, in the order cards show them.
PUBLIC_FIELDS = ("name", "job_title", "department", "email", "office_phone", "mobile", "location", "photo")
FIELD_LABELS = {
    "name": N_("Name"),
    "job_title": N_("Job title"),
    "department": N_("Department"),
    "email": N_("E-mail"),
    "office_phone": N_("Office phone"),
    "mobile": N_("Mobile phone"),
    "location": N_("Location"),
    "photo": N_("Photo"),
}
PHONE_RE = re.compile(r"^[0-9+() .-]*$")
PHONE_PUNCTUATION = re.compile(r"[\s+().-]")
MAX_RESULTS = 100


def fold(text: str) -> str:
    """Lowercase without accents and with single spaces: "João  CONCEIÇÃO" → "joao conceicao"."""
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def digits(text: str) -> str:
    return re.sub(r"\D", "", text or "")


@dataclass
class Person:
    """One listed person: the account, its directory profile (if any) and its department (if any)."""

    user: User
    profile: Profile | None
    department: Department | None
    photo: Media | None = None

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def name(self) -> str:
        return self.user.name or self.user.username

    @property
    def office_phone(self) -> str:
        """The profile's office phone, else the phone of the account (from the directory import)."""
        return (self.profile.office_phone if self.profile else "") or self.user.phone or ""

    @property
    def mobile(self) -> str:
        return self.profile.mobile if self.profile else ""

    @property
    def location(self) -> str:
        return self.profile.location if self.profile else ""

    @property
    def public_fields(self) -> list[str]:
        return list(self.profile.public_fields or []) if self.profile else []

    @property
    def show_on_portal(self) -> bool:
        return bool(self.profile and self.profile.show_on_portal)

    @property
    def photo_url(self) -> str:
        """Address of the photo when the media library serves it publicly (else ``""``)."""
        media = self.photo
        if media is None or media.kind != "image" or media.audience != "public":
            return ""
        variant = "thumb" if "thumb" in (media.renditions or {}) else "original"
        return f"/media/{media.id}/{variant}"

    def value(self, name: str) -> str:
        if name == "name":
            return self.name
        if name == "job_title":
            return self.user.job_title or ""
        if name == "department":
            return self.department.name if self.department else ""
        if name == "email":
            return self.user.email
        if name == "photo":
            return self.photo_url
        return str(getattr(self, name))

    @property
    def haystack(self) -> str:
        dep = self.department
        parts = [self.name, self.username, self.user.job_title or "", dep.name if dep else "", dep.code if dep else "",
                 self.location, self.user.email]  # fmt: skip
        return fold(" ".join(parts))

    @property
    def phones(self) -> list[str]:
        return [p for p in (self.office_phone, self.mobile, self.user.phone or "") if p]

    def matches(self, query: str) -> bool:
        """Every word of ``query`` is in the name, username, job title, department, location or e-mail
        (without case or accents); a query made of a phone number's digits matches the phones."""
        folded = fold(query)
        number = PHONE_PUNCTUATION.sub("", folded)
        if len(number) >= 3 and number.isdigit() and any(number in digits(p) for p in self.phones):
            return True
        haystack = self.haystack
        return all(word in haystack for word in folded.split())


async def _people(db: AsyncSession, *conditions: Any) -> list[Person]:
    rows = (
        await db.execute(
            select(User, Profile, Department)
            .outerjoin(Profile, Profile.user_id == User.id)
            .outerjoin(Department, Department.id == User.department_id)
            .where(*conditions)
            .order_by(User.name, User.username)
        )
    ).all()
    people = [Person(user, profile, dep) for user, profile, dep in rows]
    photo_ids = {p.profile.photo_id for p in people if p.profile and p.profile.photo_id}
    if photo_ids:
        media = {m.id: m for m in (await db.execute(select(Media).where(Media.id.in_(photo_ids)))).scalars()}
        for person in people:
            if person.profile and person.profile.photo_id:
                person.photo = media.get(person.profile.photo_id)
    return people


async def listed_people(db: AsyncSession) -> list[Person]:
    """Every active account, by name."""
    return await _people(db, User.is_active.is_(True))


async def person(db: AsyncSession, username: str) -> Person | None:
    """The active person of ``username`` (None when unknown or disabled)."""
    found = await _people(db, User.username == username.strip().lower(), User.is_active.is_(True))
    return found[0] if found else None


@dataclass
class SearchResult:
    query: str
    people: list[Person]
    total: int


async def search(db: AsyncSession, query: str, limit: int = MAX_RESULTS) -> SearchResult:
    """People matching ``query`` (every active person when it is blank), name matches first."""
    query = " ".join((query or "").split())[:200]
    everyone = await listed_people(db)
    if not query:
        return SearchResult(query, everyone[:limit], len(everyone))
    found = [p for p in everyone if p.matches(query)]
    folded = fold(query)
    found.sort(key=lambda p: (not fold(p.name).startswith(folded), fold(p.name)))
    return SearchResult(query, found[:limit], len(found))


@dataclass
class Unit:
    """A department of the tree with its depth and its people."""

    depth: int
    department: Department | None
    people: list[Person] = field(default_factory=list)


async def tree_with_people(db: AsyncSession) -> list[Unit]:
    """Departments in tree order with their active people; people without a department come last."""
    everyone = await listed_people(db)
    by_department: dict[int | None, list[Person]] = {}
    for p in everyone:
        by_department.setdefault(p.user.department_id, []).append(p)
    units = [Unit(depth, dep, by_department.pop(dep.id, [])) for depth, dep in await department_tree(db)]
    rest = [p for people in by_department.values() for p in people]
    if rest:
        units.append(Unit(0, None, sorted(rest, key=lambda p: fold(p.name))))
    return units


# ------------------------------------------------------------------------------------------------
# Editing
# ------------------------------------------------------------------------------------------------
def can_edit(viewer: Any, target_user_id: int) -> bool:
    """Employees edit their own profile; administrators (``core.admin``) anyone's."""
    return viewer is not None and (viewer.id == target_user_id or viewer.has("core.admin"))


@dataclass
class ProfileForm:
    location: str = ""
    office_phone: str = ""
    mobile: str = ""
    public_fields: list[str] = field(default_factory=list)
    show_on_portal: bool = False
    photo_id: str = ""

    @classmethod
    def of(cls, person: Person) -> ProfileForm:
        profile = person.profile
        if profile is None:
            return cls()
        return cls(profile.location, profile.office_phone, profile.mobile, list(profile.public_fields or []),
                   profile.show_on_portal, str(profile.photo_id or ""))  # fmt: skip

    @classmethod
    def parse(cls, form: Any, current: ProfileForm, *, is_admin: bool) -> ProfileForm:
        """The submitted form; what only administrators decide keeps its current value for others."""
        chosen = [f for f in form.getall("public_fields", []) if isinstance(f, str)]
        return cls(
            location=" ".join(str(form.get("location") or "").split()),
            office_phone=str(form.get("office_phone") or "").strip(),
            mobile=str(form.get("mobile") or "").strip(),
            public_fields=[f for f in PUBLIC_FIELDS if f in chosen] + [f for f in chosen if f not in PUBLIC_FIELDS],
            show_on_portal=bool(form.get("show_on_portal")) if is_admin else current.show_on_portal,
            photo_id=str(form.get("photo_id") or "").strip() if is_admin else current.photo_id,
        )


async def validate(db: AsyncSession, form: ProfileForm) -> dict[str, str]:
    """Field name → message (empty when the form is fine)."""
    errors: dict[str, str] = {}
    if len(form.location) > 200:
        errors["location"] = N_("Use at most 200 characters.")
    for name in ("office_phone", "mobile"):
        value = getattr(form, name)
        if len(value) > 40:
            errors[name] = N_("Use at most 40 characters.")
        elif not PHONE_RE.match(value):
            errors[name] = N_("Use digits, spaces and + ( ) . - only.")
    unknown = [f for f in form.public_fields if f not in PUBLIC_FIELDS]
    if unknown:
        errors["public_fields"] = N_("Choose among the fields listed.")
    elif form.show_on_portal and "name" not in form.public_fields:
        errors["public_fields"] = N_("The name must be public for the person to appear on the portal.")
    if form.photo_id:
        media = await db.get(Media, int(form.photo_id)) if form.photo_id.isdigit() else None
        if media is None or media.kind != "image":
            errors["photo_id"] = N_("Give the number of an image of the media library.")
    return errors


async def save_profile(db: AsyncSession, person: Person, form: ProfileForm, actor: Any, ip: str | None) -> Profile:
    """Store the (validated) form; the caller commits.  Marks cached portal pages stale."""
    profile = person.profile
    if profile is None:
        profile = Profile(user_id=person.user.id)  # type: ignore[arg-type]
        db.add(profile)
    before = {"public_fields": list(profile.public_fields or []), "show_on_portal": profile.show_on_portal}
    profile.location = form.location
    profile.office_phone = form.office_phone
    profile.mobile = form.mobile
    profile.public_fields = list(form.public_fields)
    profile.show_on_portal = form.show_on_portal
    profile.photo_id = int(form.photo_id) if form.photo_id else None
    profile.updated_at = datetime.now(UTC)
    person.profile = profile
    await bump_cache_generation(db)
    await record(
        db, "directory.profile_updated", actor_id=actor.id, actor=actor.username, target=person.username, ip=ip,
        before=before, after={"public_fields": profile.public_fields, "show_on_portal": profile.show_on_portal},
    )  # fmt: skip
    return profile


# ------------------------------------------------------------------------------------------------
# The public org chart
# ------------------------------------------------------------------------------------------------
def public_card(person: Person) -> dict[str, str] | None:
    """Only the fields the person made public, or None when they are not on the portal.

    Nothing else of the person ever leaves this function, so a template cannot show a private
    value by mistake.  A card needs the name to be public.
    """
    fields = person.public_fields
    if not (person.user.is_active and person.show_on_portal and "name" in fields):
        return None
    card: dict[str, str] = {}
    for name in PUBLIC_FIELDS:
        if name in fields:
            value = person.value(name)
            if value:
                card[name] = value
    return card


@dataclass
class PortalGroup:
    """People of one department on the portal (``department`` is "" for those who keep it private)."""

    department: str
    cards: list[dict[str, str]]


async def portal_groups(db: AsyncSession) -> list[PortalGroup]:
    """Opted-in people by department, in the order of the department tree."""
    people = await _people(db, User.is_active.is_(True), Profile.show_on_portal.is_(True))
    order = {dep.id: index for index, (_, dep) in enumerate(await department_tree(db))}
    groups: dict[str, PortalGroup] = {}
    ranks: dict[str, int] = {}
    for p in people:
        card = public_card(p)
        if card is None:
            continue
        title = card.get("department", "")
        group = groups.setdefault(title, PortalGroup(title, []))
        rank = order.get(p.user.department_id, len(order)) if title else len(order) + 1
        ranks[title] = min(ranks.get(title, rank), rank)
        group.cards.append(card)
    return sorted(groups.values(), key=lambda g: (ranks[g.department], g.department))


DEMO_PUBLIC_FIELDS = ["name", "job_title", "department", "email", "office_phone"]


async def demo_profiles(db: AsyncSession) -> int:
    """``suite demo load``: heads of department appear on the portal with their work contacts."""
    heads = (
        await db.execute(
            select(User)
            .outerjoin(Profile, Profile.user_id == User.id)
            .where(Profile.user_id.is_(None), User.is_active.is_(True), User.job_title.is_not(None))
        )
    ).scalars()
    created = 0
    for user in heads:
        if fold(user.job_title or "").startswith(("chefe", "diretor", "director")):
            db.add(Profile(user_id=user.id, public_fields=list(DEMO_PUBLIC_FIELDS), show_on_portal=True))  # type: ignore[arg-type]
            created += 1
    if created:
        await bump_cache_generation(db)
    return created
