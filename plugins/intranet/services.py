"""Corporate news for employees, read receipts, notifications and their e-mail digest.

Used by the pages, the home slot, the event listeners and ``suite intranet`` alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from concelho.suite.content.models import ContentItem
from concelho.suite.content.service import published_clause
from concelho.suite.i18n import N_, translations
from concelho.suite.mail import queue_mail
from concelho.suite.models import GroupMember, GroupRole, Role, User, UserRole
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Notification, ReadReceipt
from .plugin import NEWS

log = logging.getLogger("suite.intranet")

#: How each kind of notification reads (the digest and the pages translate these).
KIND_SENTENCES = {
    "mention": N_("%(actor)s mentioned you in “%(text)s”"),
    "reply": N_("%(actor)s replied in “%(text)s”"),
    "document": N_("%(actor)s added the document “%(text)s”"),
}
KIND_LABELS = {"mention": N_("Mention"), "reply": N_("Reply"), "document": N_("New document")}
#: Audiences of corporate news that employees read on the intranet.
READABLE = ("internal", "public")


def now_utc() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def is_must_read(item: Any) -> bool:
    return bool((item.data or {}).get("must_read"))


# -- corporate news -------------------------------------------------------------------------------
def _news_clauses(language: str) -> tuple[Any, ...]:
    """Published corporate news in ``language``, plus items of other languages that have no version in it."""
    in_language = select(ContentItem.translation_group).where(
        ContentItem.type == NEWS.name, ContentItem.language == language, ContentItem.translation_group != "",
        published_clause(),
    )  # fmt: skip
    return (
        ContentItem.type == NEWS.name,
        ContentItem.audience.in_(READABLE),
        published_clause(),
        or_(ContentItem.language == language, ContentItem.translation_group.not_in(in_language)),
    )


@dataclass
class NewsPage:
    items: list[ContentItem]
    page: int
    pages: int
    total: int


async def news_page(session: AsyncSession, language: str, page: int = 1, per_page: int = 10) -> NewsPage:
    query = select(ContentItem).where(*_news_clauses(language))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = await session.execute(
        query.order_by(ContentItem.published_at.desc(), ContentItem.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return NewsPage(list(rows.scalars()), page, pages, total)


async def live_news(session: AsyncSession, slug: str) -> ContentItem | None:
    return (
        await session.execute(
            select(ContentItem).where(
                ContentItem.type == NEWS.name,
                ContentItem.slug == slug,
                ContentItem.audience.in_(READABLE),
                published_clause(),
            )
        )
    ).scalar_one_or_none()


async def must_read_items(session: AsyncSession, language: str, limit: int = 200) -> list[ContentItem]:
    """Live must-read items, newest first (the flag lives in ``data``: read among the newest ``limit``)."""
    rows = await session.execute(
        select(ContentItem)
        .where(*_news_clauses(language))
        .order_by(ContentItem.published_at.desc(), ContentItem.id.desc())
        .limit(limit)
    )
    return [item for item in rows.scalars() if is_must_read(item)]


async def read_ids(session: AsyncSession, user_id: int, content_ids: Iterable[int]) -> set[int]:
    ids = list(content_ids)
    if not ids:
        return set()
    rows = await session.execute(
        select(ReadReceipt.content_id).where(ReadReceipt.user_id == user_id, ReadReceipt.content_id.in_(ids))
    )
    return {row[0] for row in rows}


async def unread_must_read(session: AsyncSession, user_id: int, language: str) -> list[ContentItem]:
    items = await must_read_items(session, language)
    done = await read_ids(session, user_id, [i.id for i in items])
    return [i for i in items if i.id not in done]


async def receipt_of(session: AsyncSession, content_id: int, user_id: int) -> ReadReceipt | None:
    return (
        await session.execute(
            select(ReadReceipt).where(ReadReceipt.content_id == content_id, ReadReceipt.user_id == user_id)
        )
    ).scalar_one_or_none()


async def mark_news_read(session: AsyncSession, content_id: int, user_id: int) -> ReadReceipt:
    """Record that the user read an item (once; the first reading counts).  Commits."""
    existing = await receipt_of(session, content_id, user_id)
    if existing is not None:
        return existing
    receipt = ReadReceipt(content_id=content_id, user_id=user_id)
    session.add(receipt)
    try:
        await session.commit()
    except IntegrityError:  # the same user in two tabs at once
        await session.rollback()
        again = await receipt_of(session, content_id, user_id)
        assert again is not None
        return again
    return receipt


async def intranet_users(session: AsyncSession) -> list[User]:
    """Active users who may use the intranet (``intranet.access`` through their roles or groups, or superusers)."""
    role_ids = [
        role.id
        for role in (await session.execute(select(Role))).scalars()
        if "intranet.access" in (role.permissions or [])
    ]
    direct = select(UserRole.user_id).where(UserRole.role_id.in_(role_ids))
    via_groups = (
        select(GroupMember.user_id)
        .join(GroupRole, GroupRole.group_id == GroupMember.group_id)
        .where(GroupRole.role_id.in_(role_ids))
    )
    rows = await session.execute(
        select(User)
        .where(User.is_active.is_(True), or_(User.is_superuser.is_(True), User.id.in_(direct), User.id.in_(via_groups)))
        .order_by(func.lower(User.name), User.username)
    )
    return list(rows.scalars())


@dataclass
class ReadingReport:
    item: ContentItem
    read: list[tuple[User, datetime]]
    unread: list[User]

    @property
    def total(self) -> int:
        return len(self.read) + len(self.unread)


async def reading_report(session: AsyncSession, item: ContentItem) -> ReadingReport:
    """Who of the intranet's active users has read ``item`` (and when), and who has not."""
    people = await intranet_users(session)
    receipts = {
        r.user_id: aware(r.read_at)
        for r in (await session.execute(select(ReadReceipt).where(ReadReceipt.content_id == item.id))).scalars()
    }
    read = sorted(((u, receipts[u.id]) for u in people if u.id in receipts), key=lambda pair: pair[1])
    unread = [u for u in people if u.id not in receipts]
    return ReadingReport(item, read, unread)  # type: ignore[arg-type]


# -- notifications ----------------------------------------------------------------------------------
def safe_url(url: str) -> str:
    """Only local addresses are kept (a notification never sends anyone off-site)."""
    url = (url or "").strip()
    return url[:300] if url.startswith("/") and not url.startswith("//") and "\\" not in url else ""


async def notify(session: AsyncSession, user_ids: Iterable[int], kind: str, *, actor: str = "", text: str = "",
                 url: str = "") -> int:  # fmt: skip
    """Add one notification per (active, distinct) user; the caller commits.  Returns how many."""
    ids = sorted({int(i) for i in user_ids if i})
    if not ids:
        return 0
    active = {
        row[0] for row in await session.execute(select(User.id).where(User.id.in_(ids), User.is_active.is_(True)))
    }
    for user_id in ids:
        if user_id in active:
            session.add(Notification(user_id=user_id, kind=kind[:20], actor=actor[:200], text=text[:300],
                                     url=safe_url(url)))  # fmt: skip
    return len(active)


async def unread_count(session: AsyncSession, user_id: int) -> int:
    return (
        await session.execute(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
    ).scalar_one()


async def notifications(session: AsyncSession, user_id: int, *, unread_only: bool = False, limit: int = 50,
                        offset: int = 0) -> list[Notification]:  # fmt: skip
    query = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    rows = await session.execute(
        query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.scalars())


async def count_notifications(session: AsyncSession, user_id: int) -> int:
    return (
        await session.execute(select(func.count()).select_from(Notification).where(Notification.user_id == user_id))
    ).scalar_one()


async def mark_read(session: AsyncSession, user_id: int, notification_id: int) -> Notification | None:
    """Mark one of the user's notifications read (None when it is not theirs); the caller commits."""
    item = await session.get(Notification, notification_id)
    if item is None or item.user_id != user_id:
        return None
    if item.read_at is None:
        item.read_at = now_utc()
    return item


async def mark_all_read(session: AsyncSession, user_id: int) -> int:
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now_utc())
    )
    return int(result.rowcount or 0)


def sentence(note: Notification, gettext: Callable[[str], str]) -> str:
    template = KIND_SENTENCES.get(note.kind)
    if template is None:
        return note.text
    return gettext(template) % {"actor": note.actor or "?", "text": note.text}


# -- event listeners ------------------------------------------------------------------------------
def notification_listeners(database: Any) -> dict[str, Callable[..., Any]]:
    """Listeners turning other plugins' events into notifications (each opens its own session).

    Payloads (keyword arguments of ``events.emit``):

    * ``workspaces.mention`` / ``workspaces.comment``: ``user_ids``, ``actor``, ``title``, ``url``;
    * ``documents.created``: ``workspace_id``, ``title``, ``url``, ``actor_id`` (and optionally ``actor``,
      ``user_ids``): every member of the workspace but the actor is told, unless ``user_ids`` says who.
    """

    def make(kind: str) -> Callable[..., Any]:
        async def listener(user_ids: Iterable[int] = (), actor: str = "", title: str = "", url: str = "",
                           **_: Any) -> None:  # fmt: skip
            async with database.sessionmaker() as session:
                if await notify(session, user_ids, kind, actor=actor, text=title, url=url):
                    await session.commit()

        listener.__name__ = f"notify_{kind}"
        return listener

    async def on_document(workspace_id: int | None = None, title: str = "", url: str = "",
                          actor_id: int | None = None, actor: str = "", user_ids: Iterable[int] | None = None,
                          **_: Any) -> None:  # fmt: skip
        from concelho.plugins.workspaces.services import member_ids

        async with database.sessionmaker() as session:
            if user_ids is None:
                if workspace_id is None:
                    return
                user_ids = await member_ids(session, int(workspace_id))
            recipients = [uid for uid in user_ids if uid != actor_id]
            if not actor and actor_id:
                who = await session.get(User, actor_id)
                actor = (who.name or who.username) if who else ""
            if await notify(session, recipients, "document", actor=actor, text=title, url=url):
                await session.commit()

    return {
        "workspaces.mention": make("mention"),
        "workspaces.comment": make("reply"),
        "documents.created": on_document,
    }


# -- e-mail digest ----------------------------------------------------------------------------------
@dataclass
class Digest:
    username: str
    email: str
    count: int
    subject: str
    body: str


def build_digest(user: User, notes: list[Notification], base_url: str, site_name: str) -> Digest:
    """The digest of ``notes`` for ``user``, in the user's language."""
    trans = translations(user.language if user.language in ("pt", "en") else "pt")
    gettext, ngettext = trans.gettext, trans.ngettext
    root = base_url.rstrip("/")
    subject = ngettext("%(site)s: %(num)d new notification", "%(site)s: %(num)d new notifications", len(notes)) % {
        "site": site_name,
        "num": len(notes),
    }
    lines = [gettext("Hello, %(name)s") % {"name": user.name or user.username}, ""]
    lines.append(gettext("Here is what happened since your last digest:"))
    lines.append("")
    for note in notes:
        lines.append(f"- {sentence(note, gettext)}")
        if note.url:
            lines.append(f"  {root}{note.url}")
    lines += ["", gettext("All your notifications: %(url)s") % {"url": f"{root}/intranet/notificacoes"}]
    return Digest(user.username, user.email, len(notes), subject, "\n".join(lines) + "\n")


async def queue_digests(session: AsyncSession, base_url: str, site_name: str, *, dry_run: bool = False,
                        now: datetime | None = None) -> list[Digest]:  # fmt: skip
    """One e-mail per active user with unread notifications not mailed yet; each notification is mailed once.

    The messages go to the outbox (``core_mail_outbox``): sent when SMTP is configured, else kept there for
    ``suite mail list``.  Commits (or, with ``dry_run``, changes nothing).
    """
    now = now or now_utc()
    rows = await session.execute(
        select(Notification, User)
        .join(User, User.id == Notification.user_id)
        .where(
            Notification.read_at.is_(None),
            Notification.emailed_at.is_(None),
            User.is_active.is_(True),
            and_(User.email.is_not(None), User.email != ""),
        )
        .order_by(User.id, Notification.created_at, Notification.id)
    )
    by_user: dict[int, tuple[User, list[Notification]]] = {}
    for note, user in rows.all():
        by_user.setdefault(user.id, (user, []))[1].append(note)
    digests = []
    for user, notes in by_user.values():
        digest = build_digest(user, notes, base_url, site_name)
        digests.append(digest)
        if not dry_run:
            await queue_mail(session, digest.email, digest.subject, digest.body)
            for note in notes:
                note.emailed_at = now
    if dry_run:
        await session.rollback()
    else:
        await session.commit()
    return digests


DIGEST_MARKER = ("intranet", "digest_sent_at")
DIGEST_EVERY = timedelta(hours=24)


async def daily_digest_job(state: Any) -> int:
    """Background job: when SMTP is configured, queue the digests once a day (they are then sent)."""
    if not state.settings.smtp_url:
        return 0
    from concelho.suite.models import KeyValue

    now = now_utc()
    async with state.database.sessionmaker() as session:
        marker = (
            await session.execute(
                select(KeyValue).where(KeyValue.namespace == DIGEST_MARKER[0], KeyValue.key == DIGEST_MARKER[1])
            )
        ).scalar_one_or_none()
        if marker is not None and datetime.fromisoformat(marker.value.decode()) + DIGEST_EVERY > now:
            return 0
        if marker is None:
            session.add(KeyValue(namespace=DIGEST_MARKER[0], key=DIGEST_MARKER[1], value=now.isoformat().encode()))
        else:
            marker.value = now.isoformat().encode()
        await session.commit()
        digests = await queue_digests(session, state.settings.base_url, state.settings.site_name, now=now)
    return len(digests)
