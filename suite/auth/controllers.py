"""Sign in and sign out."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..audit import record
from ..i18n import N_
from ..models import User
from ..render import render
from ..state import client_ip
from .guards import PUBLIC
from .middleware import clear_session_cookie, session_cookie
from .passwords import hash_password, needs_rehash, verify_password
from .sessions import COOKIE_NAME, create_session, destroy_session

GENERIC_FAILURE = N_("Wrong username or password.")
MISSING_CREDENTIALS = N_("Enter your username and password.")
THROTTLED = N_("Too many failed attempts. Try again in %(minutes)s minute(s).")


def safe_next(target: str | None) -> str:
    """Only local paths are followed after login (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/intranet"
    return target


class AuthController(Controller):
    path = "/"
    opt = PUBLIC

    @get("/login", name="core:login")
    async def login_form(self, request: Request, next: FromQuery[str | None] = None) -> Response:
        return await render(
            request,
            "core/login.html",
            {"next": safe_next(next), "username": "", "error": None, "error_args": {}},
        )

    @post("/login", name="core:login_submit")
    async def login(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        state = request.app.state.suite
        form = await request.form()
        username = str(form.get("username", "")).strip()[:200]
        password = str(form.get("password", ""))
        target = safe_next(str(form.get("next", "")))
        ip = client_ip(request)

        def again(error: str, status: int, **error_args: object) -> Response:
            """Re-show the form; ``error`` is a message id the template translates with ``error_args``."""
            return render(
                request,
                "core/login.html",
                {"next": target, "username": username, "error": error, "error_args": error_args},
                status_code=status,
            )

        if not username or not password:
            return await again(MISSING_CREDENTIALS, 400)
        wait = await state.throttle.blocked_for(username, ip)
        if wait:
            await record(db, "login.throttled", actor=username, ip=ip)
            await db.commit()
            minutes = max(1, round(wait / 60))
            return await again(THROTTLED, 429, minutes=minutes)

        user = (
            await db.execute(
                select(User).where(
                    (func.lower(User.username) == username.lower()) | (func.lower(User.email) == username.lower())
                )
            )
        ).scalar_one_or_none()
        ok = verify_password(user.password_hash if user else None, password)
        if not ok or user is None or not user.is_active:
            await state.throttle.failed(username, ip)
            await record(db, "login.failed", actor=username, ip=ip, reason="bad credentials")
            await db.commit()
            return await again(GENERIC_FAILURE, 400)

        await state.throttle.succeeded(username)
        await destroy_session(db, request.cookies.get(COOKIE_NAME))  # never keep a pre-login id
        token = await create_session(
            db, user, state.settings.session_max_age, ip=ip, user_agent=request.headers.get("user-agent")
        )
        user.last_login_at = datetime.now(UTC)
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        await record(db, "login", actor_id=user.id, actor=user.username, ip=ip)
        await db.commit()
        response = Redirect(target, status_code=303)
        response.set_cookie(session_cookie(token, state.settings.session_max_age, state.settings.secure_cookies))
        return response

    @post("/logout", name="core:logout")
    async def logout(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        state = request.app.state.suite
        user = request.scope.get("user")
        await destroy_session(db, request.cookies.get(COOKIE_NAME))
        if user is not None:
            await record(db, "logout", actor_id=user.id, actor=user.username, ip=client_ip(request))
        await db.commit()
        response = Redirect("/", status_code=303)
        response.set_cookie(clear_session_cookie(state.settings.secure_cookies))
        return response
