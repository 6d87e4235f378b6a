"""Workspace rules: who may read, write and manage.  Other plugins call these (never the tables)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from concelho.suite.audit import record
from concelho.suite.auth.permissions import CurrentUser
from concelho.suite.content.models import ContentItem
from concelho.suite.i18n import N_
from concelho.suite.models import User
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ROLES, VISIBILITIES, Activity, Announcement, Comment, JoinRequest, Membership, Workspace

LISBON = ZoneInfo("Europe/Lisbon")

#: What each role may do inside a workspace.
ROLE_ACTIONS = {
    "owner": {"read", "comment", "upload", "write", "manage"},
    "editor": {"read", "comment", "upload", "write"},
    "member": {"read", "comment", "upload"},
    "viewer": {"read"},
}


#: Addresses under /intranet/espacos/ that pages use, so no workspace may take them as its slug.
RESERVED_SLUGS = frozenset({"novo"})


class WorkspaceError(ValueError):
    """Refused; the message is fit to show."""


def slugify(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:80]


@dataclass(frozen=True)
class Access:
    """A user's standing in one workspace (role None: not a member)."""

    workspace: Workspace
    role: str | None
    is_admin: bool = False

    def can(self, action: str) -> bool:
        if self.is_admin:
            return True
        if self.role is not None:
            return action in ROLE_ACTIONS[self.role]
        # Open workspaces: every employee may read and ask to join.
        return self.workspace.visibility == "open" and action in {"read", "join"}


async def get_workspace(session: AsyncSession, slug_or_name: str) -> Workspace:
    ws = (
        await session.execute(
            select(Workspace).where(
                (Workspace.slug == slug_or_name) | (func.lower(Workspace.name) == slug_or_name.lower())
            )
        )
    ).scalar_one_or_none()
    if ws is None:
        raise WorkspaceError(f"no workspace named {slug_or_name!r}")
    return ws


async def access(session: AsyncSession, workspace: Workspace, user_id: int, is_admin: bool = False) -> Access:
    role = (
        await session.execute(
            select(Membership.role).where(Membership.workspace_id == workspace.id, Membership.user_id == user_id)
        )
    ).scalar_one_or_none()
    return Access(workspace, role, is_admin)


async def workspace_ids_for(session: AsyncSession, user_id: int) -> set[int]:
    """Workspaces whose private content the user may see now (current memberships)."""
    rows = await session.execute(
        select(Membership.workspace_id)
        .join(Workspace, Workspace.id == Membership.workspace_id)
        .where(Membership.user_id == user_id)
    )
    return {row[0] for row in rows}


async def readable_workspace_ids(session: AsyncSession, user_id: int) -> set[int]:
    """Member workspaces plus every open workspace (employees may read open ones)."""
    open_ids = {row[0] for row in await session.execute(select(Workspace.id).where(Workspace.visibility == "open"))}
    return open_ids | await workspace_ids_for(session, user_id)


async def log_activity(session: AsyncSession, workspace_id: int, actor_id: int | None, verb: str, target: str = "",
                       url: str = "") -> None:  # fmt: skip
    session.add(Activity(workspace_id=workspace_id, actor_id=actor_id, verb=verb, target=target[:300], url=url[:300]))


async def create_workspace(
    session: AsyncSession, *, name: str, owner: User | None, visibility: str = "private", description: str = "",
    actor: str = "cli",
) -> Workspace:  # fmt: skip
    name = name.strip()
    if not name:
        raise WorkspaceError("the workspace needs a name")
    if visibility not in VISIBILITIES:
        raise WorkspaceError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    slug = slugify(name)
    if not slug:
        raise WorkspaceError("the name must contain letters or digits")
    if slug in RESERVED_SLUGS:
        raise WorkspaceError(f"the name {name!r} is reserved; choose another")
    if (await session.execute(select(Workspace.id).where(Workspace.slug == slug))).first():
        raise WorkspaceError(f"a workspace named {name!r} already exists")
    ws = Workspace(slug=slug, name=name, description=description.strip(), visibility=visibility,
                   created_by=owner.id if owner else None)  # fmt: skip
    session.add(ws)
    await session.flush()
    if owner is not None:
        session.add(Membership(workspace_id=ws.id, user_id=owner.id, role="owner"))
        await log_activity(session, ws.id, owner.id, "created", ws.name)
    await record(
        session, "workspaces.created", actor=actor, target=f"workspaces.workspace:{ws.id}", visibility=visibility
    )
    return ws


async def set_member(
    session: AsyncSession, workspace: Workspace, user: User, role: str, actor: str = "cli"
) -> Membership:
    if role not in ROLES:
        raise WorkspaceError(f"role must be one of {', '.join(ROLES)}")
    if not user.is_active:
        raise WorkspaceError(f"user {user.username!r} is disabled")
    membership = (
        await session.execute(
            select(Membership).where(Membership.workspace_id == workspace.id, Membership.user_id == user.id)
        )
    ).scalar_one_or_none()
    if membership is None:
        membership = Membership(workspace_id=workspace.id, user_id=user.id, role=role)
        session.add(membership)
        await log_activity(session, workspace.id, user.id, "joined", user.name or user.username)
    else:
        if membership.role == "owner" and role != "owner":
            await _keep_an_owner(session, workspace, user.id)
        membership.role = role
    await session.execute(
        delete(JoinRequest).where(JoinRequest.workspace_id == workspace.id, JoinRequest.user_id == user.id)
    )
    await record(session, "workspaces.member_set", actor=actor, target=f"{workspace.slug}:{user.username}", role=role)
    return membership


async def _keep_an_owner(session: AsyncSession, workspace: Workspace, leaving_user_id: int) -> None:
    owners = (
        await session.execute(
            select(func.count())
            .select_from(Membership)
            .where(
                Membership.workspace_id == workspace.id,
                Membership.role == "owner",
                Membership.user_id != leaving_user_id,
            )
        )
    ).scalar_one()
    if owners == 0:
        raise WorkspaceError("a workspace must keep at least one owner")


async def remove_member(session: AsyncSession, workspace: Workspace, user: User, actor: str = "cli") -> None:
    """Removing (or leaving) keeps everything the member wrote; access ends at once."""
    membership = (
        await session.execute(
            select(Membership).where(Membership.workspace_id == workspace.id, Membership.user_id == user.id)
        )
    ).scalar_one_or_none()
    if membership is None:
        raise WorkspaceError(f"{user.username!r} is not a member of {workspace.name!r}")
    if membership.role == "owner":
        await _keep_an_owner(session, workspace, user.id)
    await session.delete(membership)
    await log_activity(session, workspace.id, user.id, "left", user.name or user.username)
    await record(session, "workspaces.member_removed", actor=actor, target=f"{workspace.slug}:{user.username}")


# -- web forms and queries ------------------------------------------------------------------------
#: Mentions: ``@username`` (usernames are lowercase letters, digits, dots, dashes, underscores).
MENTION_RE = re.compile(r"(?<![\w@.])@([a-z0-9][a-z0-9._-]{1,79})", re.IGNORECASE)
ROLE_LABELS = {"owner": N_("Owner"), "editor": N_("Editor"), "member": N_("Member"), "viewer": N_("Viewer")}
#: How activity verbs read on the pages (other plugins may log their own verbs: "uploaded" for documents).
VERB_LABELS = {
    "created": N_("created the workspace"),
    "joined": N_("joined"),
    "left": N_("left"),
    "asked to join": N_("asked to join"),
    "announced": N_("posted an announcement"),
    "commented": N_("commented on"),
    "created a page": N_("created the page"),
    "edited a page": N_("edited the page"),
    "uploaded": N_("uploaded"),
    "trashed": N_("moved to the trash"),
}


def can_create(user: CurrentUser, settings: dict[str, object]) -> bool:
    """Admins and holders of ``workspaces.create``, or any employee when the plugin setting allows it."""
    if user.has("workspaces.create") or user.has("workspaces.admin") or user.has("core.admin"):
        return True
    return bool(settings.get("employees_can_create")) and user.has("intranet.access")


async def validate_new_workspace(session: AsyncSession, name: str, visibility: str, description: str) -> dict[str, str]:
    """Errors by form field (message ids, translated where shown)."""
    errors: dict[str, str] = {}
    name = name.strip()
    slug = slugify(name)
    if not name:
        errors["name"] = N_("Write a name.")
    elif len(name) > 200:
        errors["name"] = N_("The name must have at most 200 characters.")
    elif not slug:
        errors["name"] = N_("The name must contain letters or digits.")
    elif slug in RESERVED_SLUGS:
        errors["name"] = N_("This name is reserved; choose another.")
    elif (await session.execute(select(Workspace.id).where(Workspace.slug == slug))).first():
        errors["name"] = N_("A workspace with this name already exists.")
    if visibility not in VISIBILITIES:
        errors["visibility"] = N_("Choose open or private.")
    if len(description.strip()) > 2000:
        errors["description"] = N_("The description must have at most 2000 characters.")
    return errors


async def workspace_by_slug(session: AsyncSession, slug: str) -> Workspace | None:
    return (await session.execute(select(Workspace).where(Workspace.slug == slug))).scalar_one_or_none()


async def my_workspaces(session: AsyncSession, user_id: int) -> list[tuple[Workspace, str]]:
    """The user's workspaces with their role, by name."""
    rows = await session.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.name)
    )
    return [(ws, role) for ws, role in rows.all()]


async def open_workspaces(session: AsyncSession, user_id: int) -> list[tuple[Workspace, bool]]:
    """Open workspaces the user is not a member of, with whether they already asked to join."""
    mine = select(Membership.workspace_id).where(Membership.user_id == user_id)
    asked = {
        row[0] for row in await session.execute(select(JoinRequest.workspace_id).where(JoinRequest.user_id == user_id))
    }
    rows = await session.execute(
        select(Workspace)
        .where(Workspace.visibility == "open", Workspace.archived.is_(False), Workspace.id.not_in(mine))
        .order_by(Workspace.name)
    )
    return [(ws, ws.id in asked) for ws in rows.scalars()]


async def member_counts(session: AsyncSession, workspace_ids: list[int]) -> dict[int, int]:
    if not workspace_ids:
        return {}
    rows = await session.execute(
        select(Membership.workspace_id, func.count())
        .where(Membership.workspace_id.in_(workspace_ids))
        .group_by(Membership.workspace_id)
    )
    return {ws_id: count for ws_id, count in rows.all()}


async def member_ids(session: AsyncSession, workspace_id: int) -> list[int]:
    rows = await session.execute(select(Membership.user_id).where(Membership.workspace_id == workspace_id))
    return [row[0] for row in rows]


async def members(session: AsyncSession, workspace: Workspace) -> list[tuple[User, str]]:
    """Members with their roles: owners first, then by name."""
    order = {role: i for i, role in enumerate(ROLES)}
    rows = await session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace.id)
    )
    out = [(user, role) for user, role in rows.all()]
    out.sort(key=lambda pair: (order.get(pair[1], 9), (pair[0].name or pair[0].username).lower()))
    return out


async def join_requests(session: AsyncSession, workspace: Workspace) -> list[tuple[JoinRequest, User]]:
    rows = await session.execute(
        select(JoinRequest, User)
        .join(User, User.id == JoinRequest.user_id)
        .where(JoinRequest.workspace_id == workspace.id)
        .order_by(JoinRequest.created_at)
    )
    return [(req, user) for req, user in rows.all()]


async def request_to_join(session: AsyncSession, workspace: Workspace, user: User, message: str = "") -> JoinRequest:
    """Ask to join an open workspace; asking again only updates the message."""
    if workspace.visibility != "open":
        raise WorkspaceError("only open workspaces take requests to join")
    if (
        await session.execute(
            select(Membership.id).where(Membership.workspace_id == workspace.id, Membership.user_id == user.id)
        )
    ).first():
        raise WorkspaceError(f"{user.username!r} is already a member of {workspace.name!r}")
    existing = (
        await session.execute(
            select(JoinRequest).where(JoinRequest.workspace_id == workspace.id, JoinRequest.user_id == user.id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        existing.message = message.strip()[:500]
        return existing
    req = JoinRequest(workspace_id=workspace.id, user_id=user.id, message=message.strip()[:500])
    session.add(req)
    await log_activity(session, workspace.id, user.id, "asked to join", user.name or user.username)
    return req


async def answer_request(
    session: AsyncSession, workspace: Workspace, request_id: int, accept: bool, actor: str = "cli"
) -> User:
    """Accept (the requester becomes a member) or decline a request; returns the requester."""
    req = await session.get(JoinRequest, request_id)
    if req is None or req.workspace_id != workspace.id:
        raise WorkspaceError("this request no longer exists")
    user = await session.get(User, req.user_id)
    if user is None:  # pragma: no cover - the foreign key cascades
        raise WorkspaceError("this request no longer exists")
    if accept:
        await set_member(session, workspace, user, "member", actor=actor)  # also deletes the request
    else:
        await session.delete(req)
        await record(session, "workspaces.request_declined", actor=actor, target=f"{workspace.slug}:{user.username}")
    return user


async def recent_activity(session: AsyncSession, workspace_ids: set[int] | list[int], limit: int = 20,
                          verbs: tuple[str, ...] = ()) -> list[dict[str, object]]:  # fmt: skip
    """Newest activity of some workspaces, with the actor's and the workspace's names."""
    if not workspace_ids:
        return []
    query = (
        select(Activity, User.name, User.username, Workspace.name, Workspace.slug)
        .join(Workspace, Workspace.id == Activity.workspace_id)
        .outerjoin(User, User.id == Activity.actor_id)
        .where(Activity.workspace_id.in_(list(workspace_ids)))
        .order_by(Activity.at.desc(), Activity.id.desc())
        .limit(limit)
    )
    if verbs:
        query = query.where(Activity.verb.in_(verbs))
    out = []
    for act, name, username, ws_name, ws_slug in (await session.execute(query)).all():
        out.append({"activity": act, "actor": name or username or "", "workspace": ws_name, "slug": ws_slug})
    return out


# -- announcements and comments -------------------------------------------------------------------
def check_announcement(title: str, body: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not title.strip():
        errors["title"] = N_("Write a title.")
    elif len(title.strip()) > 200:
        errors["title"] = N_("The title must have at most 200 characters.")
    if len(body) > 20000:
        errors["body"] = N_("The text must have at most 20000 characters.")
    return errors


def check_comment(body: str) -> dict[str, str]:
    if not body.strip():
        return {"body": N_("Write a comment.")}
    if len(body) > 5000:
        return {"body": N_("The comment must have at most 5000 characters.")}
    return {}


async def post_announcement(session: AsyncSession, workspace: Workspace, author: User | CurrentUser, title: str,
                            body: str) -> Announcement:  # fmt: skip
    errors = check_announcement(title, body)
    if errors:
        raise WorkspaceError(next(iter(errors.values())))
    ann = Announcement(workspace_id=workspace.id, author_id=author.id, title=title.strip(), body=body.strip())
    session.add(ann)
    await session.flush()
    url = f"/intranet/espacos/{workspace.slug}/avisos/{ann.id}"
    await log_activity(session, workspace.id, author.id, "announced", ann.title, url)
    return ann


async def add_comment(session: AsyncSession, workspace: Workspace, announcement: Announcement,
                      author: User | CurrentUser, body: str) -> Comment:  # fmt: skip
    errors = check_comment(body)
    if errors:
        raise WorkspaceError(next(iter(errors.values())))
    comment = Comment(announcement_id=announcement.id, author_id=author.id, body=body.strip())
    session.add(comment)
    await session.flush()
    url = f"/intranet/espacos/{workspace.slug}/avisos/{announcement.id}#comment-{comment.id}"
    await log_activity(session, workspace.id, author.id, "commented", announcement.title, url)
    return comment


async def announcements(session: AsyncSession, workspace: Workspace, limit: int = 10) -> list[dict[str, object]]:
    """Newest announcements with author names and comment counts."""
    counts = select(Comment.announcement_id, func.count().label("n")).group_by(Comment.announcement_id).subquery()
    rows = await session.execute(
        select(Announcement, User.name, User.username, counts.c.n)
        .outerjoin(User, User.id == Announcement.author_id)
        .outerjoin(counts, counts.c.announcement_id == Announcement.id)
        .where(Announcement.workspace_id == workspace.id)
        .order_by(Announcement.created_at.desc(), Announcement.id.desc())
        .limit(limit)
    )
    return [
        {"announcement": ann, "author": name or username or "", "comments": n or 0}
        for ann, name, username, n in rows.all()
    ]


async def get_announcement(session: AsyncSession, workspace: Workspace, announcement_id: int) -> Announcement | None:
    ann = await session.get(Announcement, announcement_id)
    return ann if ann is not None and ann.workspace_id == workspace.id else None


async def comments(session: AsyncSession, announcement: Announcement) -> list[dict[str, object]]:
    rows = await session.execute(
        select(Comment, User.name, User.username)
        .outerjoin(User, User.id == Comment.author_id)
        .where(Comment.announcement_id == announcement.id)
        .order_by(Comment.created_at, Comment.id)
    )
    return [{"comment": c, "author": name or username or ""} for c, name, username in rows.all()]


async def mentioned_users(session: AsyncSession, workspace: Workspace, text: str, author_id: int) -> list[User]:
    """Active users named as ``@username`` in ``text`` who may read the workspace (never the author).

    In a private workspace only members count, so a mention never tells an outsider about it.
    """
    names = {m.group(1).lower().rstrip("._-") for m in MENTION_RE.finditer(text or "")}
    names.discard("")
    if not names:
        return []
    query = select(User).where(func.lower(User.username).in_(names), User.is_active.is_(True), User.id != author_id)
    if workspace.visibility != "open":
        query = query.join(Membership, Membership.user_id == User.id).where(Membership.workspace_id == workspace.id)
    return list((await session.execute(query.order_by(User.id))).scalars())


async def thread_participants(session: AsyncSession, workspace: Workspace, announcement: Announcement) -> list[int]:
    """Who follows an announcement (its author and earlier commenters) and may still read the workspace."""
    ids = {announcement.author_id} | {
        row[0]
        for row in await session.execute(
            select(Comment.author_id).where(Comment.announcement_id == announcement.id).distinct()
        )
    }
    ids.discard(None)
    if not ids:
        return []
    if workspace.visibility == "open":
        query = select(User.id).where(User.id.in_(ids), User.is_active.is_(True))
    else:
        query = (
            select(User.id)
            .join(Membership, Membership.user_id == User.id)
            .where(User.id.in_(ids), User.is_active.is_(True), Membership.workspace_id == workspace.id)
        )
    return sorted(row[0] for row in await session.execute(query))


# -- wiki pages (content store) -------------------------------------------------------------------
def page_content_slug(workspace: Workspace, page_slug: str) -> str:
    return f"{workspace.id}-{page_slug}"


async def wiki_pages(session: AsyncSession, workspace: Workspace) -> list[ContentItem]:
    from .plugin import PAGE

    rows = await session.execute(
        select(ContentItem)
        .where(ContentItem.type == PAGE.name, ContentItem.workspace_id == workspace.id)
        .order_by(ContentItem.title)
    )
    return list(rows.scalars())


async def get_page(session: AsyncSession, workspace: Workspace, page_slug: str) -> ContentItem | None:
    from .plugin import PAGE

    return (
        await session.execute(
            select(ContentItem).where(
                ContentItem.type == PAGE.name,
                ContentItem.workspace_id == workspace.id,
                ContentItem.slug == page_content_slug(workspace, page_slug),
            )
        )
    ).scalar_one_or_none()


async def save_page(
    session: AsyncSession,
    workspace: Workspace,
    author: User | CurrentUser,
    *,
    title: str,
    body: str,
    page_slug: str = "",
    item: ContentItem | None = None,
    note: str = "",
) -> ContentItem:
    """Create or edit a wiki page through the content store (a revision per save); errors by field."""
    from concelho.suite.content.service import ContentError, ContentInput, save
    from concelho.suite.content.service import slugify as content_slugify

    from .plugin import PAGE

    if item is not None:
        page_slug = (item.data or {}).get("page") or page_slug
    else:
        page_slug = (page_slug or content_slugify(title)).strip().lower()[:120]
        if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", page_slug):
            raise ContentError({"slug": N_("Use lowercase letters, digits and dashes only.")})
        if await get_page(session, workspace, page_slug) is not None:
            raise ContentError({"slug": N_("Another page of this workspace already uses this address.")})
    data = ContentInput(
        title=title.strip(),
        slug=page_content_slug(workspace, page_slug),
        body=body,
        language="pt",
        audience="workspace",
        workspace_id=workspace.id,
        data={"space": workspace.slug, "page": page_slug},
    )
    if item is not None:
        data.language = item.language
    created = item is None
    saved = await save(
        session, PAGE, data, actor_id=author.id, actor=getattr(author, "username", ""), item=item,
        status="published", note=note or ("created" if created else "edited"),
    )  # fmt: skip
    await log_activity(
        session, workspace.id, author.id, "created a page" if created else "edited a page", saved.title,
        PAGE.path_for(saved),
    )  # fmt: skip
    return saved


def format_when(value: datetime | None) -> str:
    """A stored moment as Lisbon local time (SQLite hands back naive UTC values)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LISBON).strftime("%Y-%m-%d %H:%M")
