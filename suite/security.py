"""Security headers on every response (pages, static files, errors, 404s): a ``before_send`` hook."""

from __future__ import annotations

from litestar.types import Message, Scope

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
