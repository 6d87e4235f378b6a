"""Security headers on every response (pages, static files, errors, 404s), and the CSRF middleware."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from litestar._parsers import parse_cookie_string
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.csrf import CSRF_SECRET_BYTES, CSRFMiddleware
from litestar.types import ASGIApp, HTTPSendMessage, Message, Receive, Scope, Send
from litestar.types.empty import Empty
from litestar.utils.scope.state import ScopeState

from .request_scope import scope_header

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
    """Litestar's CSRF middleware, with less work around safe requests.

    Unsafe requests (POST, PUT…) go through Litestar's own checks unchanged.  A safe request
    (GET, HEAD, OPTIONS) needs only the token: the CSRF cookie's value, or a new token for a first
    visit, signed with an HMAC whose key schedule is computed once (the same token Litestar's
    ``generate_csrf_token`` makes); no request object is built and no body is read.  The
    ``Set-Cookie`` header of a first visit is made by joining the token into a header prepared at
    start-up.  The app keeps the config on ``app.state.csrf_config`` (see :func:`csrf_config`).
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
        # Keyed once: each token's HMAC starts from a copy (the one-shot ``hmac.digest`` keys a new
        # HMAC every time: 2.4 µs a token against 1.5 µs).
        self._mac = hmac.new(config.secret.encode(), digestmod=hashlib.sha256)

    def new_token(self) -> str:
        """A new token: 32 random bytes in hex and their HMAC-SHA256 under the CSRF secret."""
        token = os.urandom(CSRF_SECRET_BYTES).hex()  # what ``secrets.token_hex`` returns
        mac = self._mac.copy()
        mac.update(token.encode())
        return token + mac.hexdigest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.config
        if (
            scope["type"] != "http"
            or scope["method"] not in config.safe_methods
            or should_bypass_middleware(
                scope=scope,
                scopes=self.scopes,
                exclude_opt_key=config.exclude_from_csrf_key,
                exclude_path_pattern=self.exclude,
            )
        ):
            await super().__call__(scope, receive, send)
            return
        state = ScopeState.from_scope(scope)
        cookies = state.cookies
        if cookies is Empty:  # parsed as Litestar's ``request.cookies`` does, and kept for it
            header = scope_header(scope, b"cookie")
            cookies = state.cookies = parse_cookie_string(header) if header else {}
        csrf_cookie = cookies.get(config.cookie_name)
        token = state.csrf_token = csrf_cookie or self.new_token()
        await self.app(scope, receive, self.create_send_wrapper(send=send, csrf_cookie=csrf_cookie, token=token))

    def _set_cookie_if_needed(self, message: HTTPSendMessage, token: str) -> None:
        headers = message.setdefault("headers", [])
        if not isinstance(headers, list):
            headers = message["headers"] = list(headers)
        headers.append((b"set-cookie", self._cookie_prefix + token.encode("latin-1") + self._cookie_suffix))


def csrf_config(app: Any) -> CSRFConfig | None:
    """The app's CSRF settings (the middleware is the suite's, so Litestar's ``app.csrf_config`` is unset)."""
    return getattr(app.state, "csrf_config", None)
