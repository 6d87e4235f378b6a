"""Security headers on every response (pages, static files, errors, 404s), and the CSRF middleware."""

from __future__ import annotations

from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import ASGIApp, HTTPSendMessage, Message, Scope

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

_BASE_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(self)"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def security_headers_hook(https: bool):  # type: ignore[no-untyped-def]
    headers = [*_BASE_HEADERS, _HSTS] if https else list(_BASE_HEADERS)
    names = {name for name, _ in headers}

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            existing = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
            message["headers"] = existing + headers

    return before_send


_TOKEN_MARK = "__suite_csrf_cookie_value__"  # noqa: S105 - a marker, cut out at start-up


class SuiteCSRFMiddleware(CSRFMiddleware):
    """Litestar's CSRF middleware, with the ``Set-Cookie`` header of a first visit built once.

    The checks are Litestar's own; only the cookie header is made by joining the token into a
    header prepared at start-up (building a ``Cookie`` per response cost a third of a small
    request).  The app keeps the config on ``app.state.csrf_config`` (see :func:`csrf_config`).
    """

    def __init__(self, app: ASGIApp, config: CSRFConfig) -> None:
        super().__init__(app, config)
        cookie = Cookie(
            key=config.cookie_name,
            value=_TOKEN_MARK,
            path=config.cookie_path,
            secure=config.cookie_secure,
            httponly=config.cookie_httponly,
            samesite=config.cookie_samesite,
            domain=config.cookie_domain,
        )
        prefix, _, suffix = cookie.to_header(header="").partition(_TOKEN_MARK)
        self._cookie_prefix = prefix.encode("latin-1")
        self._cookie_suffix = suffix.encode("latin-1")

    def _set_cookie_if_needed(self, message: HTTPSendMessage, token: str) -> None:
        headers = message.setdefault("headers", [])
        if not isinstance(headers, list):
            headers = message["headers"] = list(headers)
        headers.append((b"set-cookie", self._cookie_prefix + token.encode("latin-1") + self._cookie_suffix))


def csrf_config(app: Any) -> CSRFConfig | None:
    """The app's CSRF settings (the middleware is the suite's, so Litestar's ``app.csrf_config`` is unset)."""
    return getattr(app.state, "csrf_config", None)
