"""Core pages: portal home, intranet home, administration, health probes."""

from __future__ import annotations

import asyncio

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from .auth.guards import PUBLIC, intranet_required, permission_required
from .models import AuditEntry, Department, Role, User
from .render import render
from .state import client_ip
from .users import Actor, UserError, department_tree, set_roles, user_roles


class PortalController(Controller):
    path = "/"
    opt = PUBLIC

    @get("/", name="core:home")
    async def home(self, request: Request) -> Response:
        return await render(request, "core/home.html")

    @get("/accessibility", name="core:accessibility")
    async def accessibility(self, request: Request) -> Response:
        return await render(request, "core/accessibility.html")


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
            raise NotFoundException("No such user")
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
            raise NotFoundException("No such user")
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
    async def audit(self, request: Request, db: NamedDependency[AsyncSession], page: int = 1) -> Response:
        page = max(1, page)
        entries = (
            (
                await db.execute(
                    select(AuditEntry).order_by(AuditEntry.id.desc()).limit(50).offset((page - 1) * 50)
                )
            )
            .scalars()
            .all()
        )
        total = (await db.execute(select(func.count()).select_from(AuditEntry))).scalar_one()
        return await render(
            request, "core/admin_audit.html", {"entries": entries, "page": page, "total": total}
        )

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
        return Response(
            {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
        )
