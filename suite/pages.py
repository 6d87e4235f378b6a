"""Core pages: portal home, intranet home, administration, health probes."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import Select, bindparam, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from .auth.guards import PUBLIC, intranet_required, permission_required
from .content.models import HIGHLIGHT_CONDITION, HIGHLIGHT_TAGS, ContentItem, PageFeedback
from .content.portal import LIVE_PUBLIC, live_params, portal_reads
from .content.service import published_clause
from .i18n import N_
from .models import AuditEntry, Department, Role, User
from .render import is_fragment_request, render, request_language
from .state import client_ip
from .users import Actor, UserError, department_tree, set_roles, user_roles

NO_SUCH_USER = N_("No such user")


class PortalController(Controller):
    path = "/"
    opt = PUBLIC

    @get("/", name="core:home")
    async def home(self, request: Request) -> Response:
        async def produce() -> Response:
            return await render(request, "core/home.html", {"highlights": await highlights(request)})

        return await request.app.state.suite.page_cache.serve(request, produce)

    @get("/accessibility", name="core:accessibility")
    async def accessibility(self, request: Request) -> Response:
        return await request.app.state.suite.page_cache.serve(
            request, lambda: render(request, "core/accessibility.html")
        )

    @post("/feedback", name="core:feedback")
    async def feedback(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        """ "Was this page useful?" — stored per page path."""
        form = await request.form()
        path = str(form.get("path", "/"))[:300]
        if not path.startswith("/") or path.startswith("//"):
            path = "/"
        useful = str(form.get("useful", "")) == "yes"
        db.add(PageFeedback(path=path, useful=useful, comment=str(form.get("comment", ""))[:1000]))
        await db.commit()
        if is_fragment_request(request):
            return await render(request, "core/_feedback_thanks.html")
        sep = "&" if "?" in path else "?"
        return Redirect(f"{path}{sep}feedback=thanks#page-feedback", status_code=303)

    @get("/robots.txt", name="core:robots", media_type="text/plain")
    async def robots(self, request: Request) -> str:
        root = request.app.state.suite.settings.base_url.rstrip("/")
        return (
            f"User-agent: *\nDisallow: /intranet/\nDisallow: /admin/\nDisallow: /login\nSitemap: {root}/sitemap.xml\n"
        )

    @get("/sitemap.xml", name="core:sitemap")
    async def sitemap(self, request: Request) -> Response:
        state = request.app.state.suite
        root = state.settings.base_url.rstrip("/")
        types = {n: t for n, t in state.registry.content_types().items() if t.listed_in_sitemap}
        urls: list[tuple[str, str | None]] = [(root + "/", None), (root + "/accessibility", None)]
        urls.extend((root + t.section_url, None) for t in types.values() if t.section_url)
        if types:
            rows = await portal_reads(request).all(
                select(
                    ContentItem.type, ContentItem.slug, ContentItem.language, ContentItem.data, ContentItem.updated_at
                ).where(ContentItem.type.in_(list(types)), ContentItem.audience == "public", published_clause())
            )
            for row in rows:
                urls.append((root + types[row.type].url_for(row), row.updated_at.date().isoformat()))
        seen: set[str] = set()
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
        ]
        for loc, lastmod in urls:
            if loc in seen:
                continue
            seen.add(loc)
            entry = f"<url><loc>{xml_escape(loc)}</loc>"
            if lastmod:
                entry += f"<lastmod>{lastmod}</lastmod>"
            parts.append(entry + "</url>")
        parts.append("</urlset>")
        return Response("\n".join(parts), media_type="application/xml")


_HIGHLIGHT_TAG_SET = frozenset(HIGHLIGHT_TAGS)
_HIGHLIGHT_COLUMNS = ("id", "type", "slug", "language", "title", "summary", "tags", "data", "published_at")


@cache
def _highlights_query(types: tuple[str, ...]) -> Select[Any]:
    """The highlights of one set of content types (fixed per app: no list to expand at every execution)."""
    return (
        # Only what the home card and the item's URL need (``data``: types whose path depends on it).
        select(*(ContentItem.__table__.c[name] for name in _HIGHLIGHT_COLUMNS))
        .where(
            or_(*(ContentItem.type == name for name in types)),
            ContentItem.language == bindparam("language"),
            LIVE_PUBLIC,
            # The partial index's own condition (a cheap test on the JSON text, word for word, so the
            # index answers); the exact tag match is checked below.
            text(f"({HIGHLIGHT_CONDITION})"),
        )
        .order_by(ContentItem.published_at.desc())
        .limit(50)
    )


async def highlights(request: Request, limit: int = 4) -> list[tuple[Any, str]]:
    """Live public items (rows) tagged ``destaque`` (or ``highlight``), newest first, with their URLs."""
    types = request.app.state.suite.registry.content_types()
    if not types:
        return []
    query = _highlights_query(tuple(types))
    rows = await portal_reads(request).all(query, live_params(language=request_language(request)))
    picked = [item for item in rows if _HIGHLIGHT_TAG_SET & {t.lower() for t in item.tags or []}][:limit]
    return [(item, types[item.type].url_for(item)) for item in picked]


class IntranetController(Controller):
    path = "/intranet"
    guards = [intranet_required]

    @get("/", name="core:intranet")
    async def home(self, request: Request) -> Response:
        return await render(request, "core/intranet_home.html")


class AdminController(Controller):
    path = "/admin"
    guards = [permission_required("core.admin")]

    @get("/", name="core:admin")
    async def index(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        users = (await db.execute(select(User).order_by(User.username))).scalars().all()
        return await render(request, "core/admin_users.html", {"users": users})

    @get("/users/{user_id:int}", name="core:admin_user")
    async def user_detail(
        self, request: Request, db: NamedDependency[AsyncSession], user_id: FromPath[int]
    ) -> Response:
        return await self._user_page(request, db, user_id)

    async def _user_page(
        self,
        request: Request,
        db: NamedDependency[AsyncSession],
        user_id: FromPath[int],
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        user = await db.get(User, user_id)
        if user is None:
            raise NotFoundException(NO_SUCH_USER)
        roles = (await db.execute(select(Role).order_by(Role.name))).scalars().all()
        return await render(
            request,
            "core/admin_user.html",
            {"person": user, "roles": roles, "assigned": set(await user_roles(db, user_id)), "error": error},
            status_code=status,
        )

    @post("/users/{user_id:int}/roles", name="core:admin_user_roles")
    async def update_roles(
        self, request: Request, db: NamedDependency[AsyncSession], user_id: FromPath[int]
    ) -> Response:
        user = await db.get(User, user_id)
        if user is None:
            raise NotFoundException(NO_SUCH_USER)
        form = await request.form()
        me = request.scope["user"]
        try:
            await set_roles(
                db,
                user.username,
                list(form.getall("roles", [])),
                Actor(me.id, me.username, client_ip(request)),
            )
        except UserError as exc:
            await db.rollback()
            return await self._user_page(request, db, user_id, str(exc), 400)
        await db.commit()
        return Redirect(f"/admin/users/{user_id}", status_code=303)

    @get("/audit", name="core:audit", guards=[permission_required("core.audit")])
    async def audit(self, request: Request, db: NamedDependency[AsyncSession], page: FromQuery[int] = 1) -> Response:
        page = max(1, page)
        entries = (
            (await db.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(50).offset((page - 1) * 50)))
            .scalars()
            .all()
        )
        total = (await db.execute(select(func.count()).select_from(AuditEntry))).scalar_one()
        return await render(request, "core/admin_audit.html", {"entries": entries, "page": page, "total": total})

    @get("/departments", name="core:departments")
    async def departments(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        return await render(request, "core/admin_departments.html", {"tree": await department_tree(db)})


class HealthController(Controller):
    path = "/"
    opt = PUBLIC

    @get("/healthz", name="core:healthz", media_type="application/json")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", name="core:readyz", media_type="application/json")
    async def readyz(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        state = request.app.state.suite
        checks: dict[str, str] = {}
        try:
            await db.execute(text("SELECT 1"))
            await db.execute(select(func.count()).select_from(Department))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await asyncio.to_thread(state.storage.check)
            checks["storage"] = "ok"
        except OSError as exc:
            checks["storage"] = f"error: {exc.strerror or type(exc).__name__}"
        try:
            await asyncio.to_thread(state.search.health)
            checks["search"] = "ok"
        except Exception as exc:
            checks["search"] = f"error: {exc}"
        ok = all(v == "ok" for v in checks.values())
        return Response({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
