"""ASGI middleware putting the signed-in user (or None) on every request."""

from __future__ import annotations

from http.cookies import SimpleCookie

from litestar.datastructures import Cookie
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ..db import Database
from .sessions import COOKIE_NAME, resolve_session


def session_cookie(value: str, max_age: int, secure: bool) -> Cookie:
    return Cookie(
        key=COOKIE_NAME,
        value=value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=secure,
        samesite="lax",
    )


def clear_session_cookie(secure: bool) -> Cookie:
    return Cookie(key=COOKIE_NAME, value="", max_age=0, path="/", httponly=True, secure=secure, samesite="lax")


def _read_cookie(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # malformed cookie header: treat as absent
                return None
            if COOKIE_NAME in jar:
                return jar[COOKIE_NAME].value or None
    return None


class AuthMiddleware:
    """Resolves the session cookie; anonymous requests cost no database query."""

    def __init__(
        self,
        app: ASGIApp,
        database: Database,
        max_age: int,
        secure: bool,
        skip_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.database = database
        self.max_age = max_age
        self.secure = secure
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefixes):
            scope["user"] = None  # type: ignore[index]
            await self.app(scope, receive, send)
            return
        token = _read_cookie(scope)
        set_cookie: Cookie | None = None
        scope["user"] = None  # type: ignore[index]
        if token:
            async with self.database.sessionmaker() as session:
                resolved = await resolve_session(session, token, self.max_age)
            if resolved is None:
                set_cookie = clear_session_cookie(self.secure)
            else:
                scope["user"] = resolved.user  # type: ignore[index]
                scope.setdefault("state", {})["session_token_hash"] = resolved.token_hash  # type: ignore[typeddict-item]
                if resolved.rotate_to:
                    set_cookie = session_cookie(resolved.rotate_to, self.max_age, self.secure)

        if set_cookie is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # A handler that set the session cookie itself (login/logout) wins.
                if not any(
                    k.lower() == b"set-cookie" and v.startswith(COOKIE_NAME.encode() + b"=") for k, v in headers
                ):
                    headers.append((b"set-cookie", set_cookie.to_header(header="").strip().encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)
