"""Rendered-page cache for anonymous portal pages, with ETag / Last-Modified and 304s.

One cache per worker, keyed by path, query and language.  Any change that affects pages
bumps a generation counter in the database (same transaction as the change); workers
poll it at most once per ``poll_seconds`` and drop their entries when it moves, and the
worker that made the change drops them at once (``content.saved`` / ``alerts.changed``).

Entries also expire after ``max_age_seconds`` so changes that come from the clock alone
(a scheduled item going live, an alert reaching its end) show within a minute.

Cached bodies never hold a visitor's CSRF token: it is swapped for a placeholder when
stored and for the current visitor's token when served.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from enum import Enum
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.middleware.csrf import generate_csrf_token
from litestar.utils.scope.state import ScopeState
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .db import Database
from .i18n import LANG_COOKIE, negotiate
from .models import KeyValue
from .render import is_fragment_request, request_language
from .request_scope import request_path, request_query
from .settings import LANGUAGES

PLACEHOLDER = "__suite_csrf_token__"


async def bump_cache_generation(session: AsyncSession) -> None:
    """Mark every cached page stale (call inside the transaction that changes what pages show)."""
    row = (
        await session.execute(select(KeyValue).where(KeyValue.namespace == "cache", KeyValue.key == "generation"))
    ).scalar_one_or_none()
    if row is None:
        session.add(KeyValue(namespace="cache", key="generation", value=b"1"))
    else:
        await session.execute(
            update(KeyValue).where(KeyValue.id == row.id).values(value=str(int(row.value or b"0") + 1).encode())
        )


def cached_slot(renderer: Any) -> Any:
    """Mark a page-slot renderer whose HTML depends only on the language and the published content.

    Its output is kept per language until content changes (the page-cache generation moves) or for at
    most ``max_age_seconds``, so pages that are not themselves cached (a signed-in visitor, the cache
    turned off) still don't repeat the block's queries.
    """
    renderer._suite_cached_slot = True
    return renderer


_PLACEHOLDER_BYTES = PLACEHOLDER.encode()
_TOKEN_SHAPE = re.compile(r"[0-9a-f]{128}")
_VARY = "HX-Request, Accept-Language, Cookie"
_CACHE_CONTROL = "private, no-cache"


def is_csrf_token(value: str) -> bool:
    """Whether ``value`` has the shape of a token the CSRF middleware makes (64 hex digits and their HMAC).

    Only such tokens are swapped in and out of cached bodies: a cookie of any other shape could
    otherwise put markup into a page, or placeholders in place of ordinary words of a stored one.
    """
    return _TOKEN_SHAPE.fullmatch(value) is not None


@dataclass(slots=True)
class CachedPage:
    body: str
    etag: str
    last_modified: datetime
    status_code: int
    media_type: str
    generation: int
    stored_at: float
    #: The encoded body cut at each CSRF placeholder: a hit joins the pieces with the visitor's token.
    pieces: list[bytes] = field(init=False)
    #: Validators and caching headers, as the handler's response has them.
    headers: dict[str, str] = field(init=False)
    #: The same, encoded for ASGI, for a 304; ``full_headers`` adds the content type for a 200.
    raw_headers: list[tuple[bytes, bytes]] = field(init=False)
    full_headers: list[tuple[bytes, bytes]] = field(init=False)

    def __post_init__(self) -> None:
        self.pieces = self.body.encode().split(_PLACEHOLDER_BYTES)
        self.headers = {
            "ETag": self.etag,
            "Last-Modified": format_datetime(self.last_modified, usegmt=True),
            "Cache-Control": _CACHE_CONTROL,
            "Vary": _VARY,
        }
        self.raw_headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in self.headers.items()]
        self.full_headers = [*self.raw_headers, (b"content-type", f"{self.media_type}; charset=utf-8".encode())]

    def body_for(self, token: str) -> bytes:
        """The stored body with ``token`` (a well-formed CSRF token, or "") in place of the placeholders."""
        if len(self.pieces) == 1:
            return self.pieces[0]
        return token.encode().join(self.pieces)


#: The content generation: bumped by every content change, polled by every worker.
_GENERATION = select(KeyValue.value).where(KeyValue.namespace == "cache", KeyValue.key == "generation")


class PageCache:
    def __init__(
        self,
        database: Database,
        max_entries: int = 2000,
        poll_seconds: float = 1.0,
        max_age_seconds: float = 60.0,
        enabled: bool = True,
    ) -> None:
        self.database = database
        self.enabled = enabled
        #: Bounds staleness for changes that come from the clock alone (scheduled items, expiring alerts).
        self.max_age_seconds = max_age_seconds
        self.max_entries = max_entries
        self.poll_seconds = poll_seconds
        self._entries: OrderedDict[tuple[str, str, str], CachedPage] = OrderedDict()
        #: Cached slot HTML: (slot, renderer id, language) -> (generation, stored_at, html).
        self.fragments: dict[tuple[str, int, str], tuple[int, float, str]] = {}
        self._generation = -1
        self._polled_at = 0.0
        self.hits = 0
        self.misses = 0

    async def generation(self) -> int:
        now = time.monotonic()
        if now - self._polled_at >= self.poll_seconds:
            # One poll at a time: the requests that arrive while it runs use the generation they
            # would have used a moment earlier, instead of each opening a connection of its own.
            self._polled_at = now
            try:
                # The read-only runner: inline on a SQLite file (no trip to a driver thread).
                raw = await self.database.reads.scalar(_GENERATION)
            except BaseException:
                self._polled_at = 0.0  # the next request tries again
                raise
            generation = int(raw or b"0")
            if generation != self._generation:
                self._entries.clear()
                self.fragments.clear()
                self._generation = generation
        return self._generation

    def invalidate_local(self, **_: object) -> None:
        """Drop everything now and re-read the generation on the next request."""
        self._entries.clear()
        self.fragments.clear()
        self._polled_at = 0.0

    @staticmethod
    def cacheable(request: Request) -> bool:
        return (
            request.method == "GET"
            and request.scope.get("user") is None
            and not is_fragment_request(request)
            and "suite_session" not in request.cookies
        )

    async def serve(self, request: Request, produce: Callable[[], Awaitable[Response]]) -> Response:
        """Answer from the cache when possible, else ``produce()`` and keep the result."""
        if not self.enabled or not self.cacheable(request):
            return await produce()
        generation = await self.generation()
        lang = request_language(request)
        key = (request_path(request), request_query(request), lang)
        token = ScopeState.from_scope(request.scope).csrf_token
        token = token if isinstance(token, str) else ""
        if token and not is_csrf_token(token):
            return await produce()  # a forged cookie: never stored, never swapped into a stored page
        entry = self._entries.get(key)
        fresh = entry is not None and time.monotonic() - entry.stored_at < self.max_age_seconds
        if entry is not None and fresh and entry.generation == generation:
            self._entries.move_to_end(key)
            self.hits += 1
            headers = request.headers
            if _not_modified(headers.get("if-none-match"), headers.get("if-modified-since"), entry):
                return Response(content=b"", status_code=304, headers=entry.headers)
            return Response(
                content=entry.body_for(token),
                status_code=entry.status_code,
                media_type=entry.media_type,
                headers=entry.headers,
            )
        self.misses += 1
        response = await produce()
        if response.status_code != 200 or not isinstance(response.content, str) or response.cookies:
            return response
        stored = response.content.replace(token, PLACEHOLDER) if token else response.content
        entry = CachedPage(
            body=stored,
            etag='W/"' + hashlib.sha256(stored.encode()).hexdigest()[:32] + '"',
            last_modified=datetime.now(UTC).replace(microsecond=0),
            status_code=response.status_code,
            # MediaType.HTML is a str Enum: str() of it is "MediaType.HTML", not "text/html".
            media_type=response.media_type.value if isinstance(response.media_type, Enum) else str(response.media_type),
            generation=generation,
            stored_at=time.monotonic(),
        )
        self._entries[key] = entry
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        response.headers.update(entry.headers)
        return response


class PageCacheMiddleware:
    """Answers cache hits before the CSRF middleware, dependencies and the handler run.

    Misses go through to the handler, whose ``page_cache.serve()`` renders and stores the
    page.  The visitor's CSRF token is put into the cached body (a new one, with its
    cookie, for a first visit), exactly as the CSRF middleware would.
    """

    def __init__(
        self, app: Any, cache: PageCache, csrf_secret: str, csrf_cookie: str, secure: bool, default_language: str
    ) -> None:
        self.app = app
        self.cache = cache
        self.csrf_secret = csrf_secret
        self.csrf_cookie = csrf_cookie
        self.secure = secure
        self.default_language = default_language
        # The Set-Cookie header the CSRF middleware would send, cut around the token.
        cookie = Cookie(key=csrf_cookie, value=PLACEHOLDER, path="/", secure=secure, samesite="lax")
        prefix, _, suffix = cookie.to_header(header="").partition(PLACEHOLDER)
        self._cookie_prefix = prefix.encode("latin-1")
        self._cookie_suffix = suffix.encode("latin-1")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        cache = self.cache
        if scope["type"] != "http" or scope["method"] != "GET" or not cache.enabled or not cache._entries:
            await self.app(scope, receive, send)
            return
        cookie_header = accept_language = if_none_match = if_modified_since = None
        for name, value in scope["headers"]:
            if name == b"hx-request":
                if value == b"true":
                    await self.app(scope, receive, send)
                    return
            elif name == b"cookie":
                cookie_header = value if cookie_header is None else cookie_header + b"; " + value
            elif name == b"accept-language":
                accept_language = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"if-modified-since":
                if_modified_since = value.decode("latin-1")
        cookies = _parse_cookies(cookie_header.decode("latin-1")) if cookie_header else {}
        if "suite_session" in cookies:
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        query_lang = _query_value(query, "lang") if query else None
        if query_lang in LANGUAGES and query_lang != cookies.get(LANG_COOKIE):
            await self.app(scope, receive, send)  # the handler sets the language cookie
            return
        lang = negotiate(query_lang, cookies.get(LANG_COOKIE), accept_language, self.default_language)
        entry = cache._entries.get((scope["path"], query, lang))
        token = cookies.get(self.csrf_cookie)
        if entry is None or (token and not is_csrf_token(token)):
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        generation = cache._generation if now - cache._polled_at < cache.poll_seconds else await cache.generation()
        if entry.generation != generation or now - entry.stored_at >= cache.max_age_seconds:
            await self.app(scope, receive, send)
            return
        cache.hits += 1
        set_cookie = None
        if not token:
            token = generate_csrf_token(self.csrf_secret)
            set_cookie = (b"set-cookie", self._cookie_prefix + token.encode() + self._cookie_suffix)
        if _not_modified(if_none_match, if_modified_since, entry):
            headers = [*entry.raw_headers, set_cookie] if set_cookie is not None else list(entry.raw_headers)
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = entry.body_for(token)
        headers = [*entry.full_headers, (b"content-length", str(len(body)).encode())]
        if set_cookie is not None:
            headers.append(set_cookie)
        await send({"type": "http.response.start", "status": entry.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _parse_cookies(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in raw.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value.strip('"')
    return out


def _query_value(query: str, name: str) -> str | None:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return value
    return None


def _not_modified(if_none_match: str | None, if_modified_since: str | None, entry: CachedPage) -> bool:
    if if_none_match:
        return entry.etag in [tag.strip() for tag in if_none_match.split(",")] or if_none_match.strip() == "*"
    if if_modified_since:
        try:
            return entry.last_modified <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False
