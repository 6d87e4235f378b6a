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
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from enum import Enum
from typing import Any

from litestar import Request, Response
from litestar.utils.scope.state import ScopeState
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .db import Database
from .i18n import LANG_COOKIE, negotiate
from .models import KeyValue
from .render import is_fragment_request, request_language
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


@dataclass
class CachedPage:
    body: str
    etag: str
    last_modified: datetime
    status_code: int
    media_type: str
    generation: int
    stored_at: float


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
            async with self.database.sessionmaker() as session:
                raw = (
                    await session.execute(
                        select(KeyValue.value).where(KeyValue.namespace == "cache", KeyValue.key == "generation")
                    )
                ).scalar_one_or_none()
            generation = int(raw or b"0")
            if generation != self._generation:
                self._entries.clear()
                self.fragments.clear()
                self._generation = generation
            self._polled_at = now
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
        key = (request.url.path, request.url.query or "", lang)
        token = ScopeState.from_scope(request.scope).csrf_token
        token = token if isinstance(token, str) else ""
        entry = self._entries.get(key)
        fresh = entry is not None and time.monotonic() - entry.stored_at < self.max_age_seconds
        if entry is not None and fresh and entry.generation == generation:
            self._entries.move_to_end(key)
            self.hits += 1
            if _not_modified(dict(request.headers), entry):
                return Response(content=b"", status_code=304, headers=self._headers(entry))
            body = entry.body.replace(PLACEHOLDER, token) if token else entry.body
            return Response(
                content=body,
                status_code=entry.status_code,
                media_type=entry.media_type,
                headers=self._headers(entry),
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
        response.headers.update(self._headers(entry))
        return response

    @staticmethod
    def _headers(entry: CachedPage) -> dict[str, str]:
        return {
            "ETag": entry.etag,
            "Last-Modified": format_datetime(entry.last_modified, usegmt=True),
            "Cache-Control": "private, no-cache",
            "Vary": "HX-Request, Accept-Language, Cookie",
        }


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

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not self.cache.enabled or not self.cache._entries:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("hx-request") == "true":
            await self.app(scope, receive, send)
            return
        cookies = _parse_cookies(headers.get("cookie", ""))
        if "suite_session" in cookies:
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        query_lang = _query_value(query, "lang")
        if query_lang in LANGUAGES and query_lang != cookies.get(LANG_COOKIE):
            await self.app(scope, receive, send)  # the handler sets the language cookie
            return
        lang = negotiate(query_lang, cookies.get(LANG_COOKIE), headers.get("accept-language"), self.default_language)
        entry = self.cache._entries.get((scope["path"], query, lang))
        if entry is None:
            await self.app(scope, receive, send)
            return
        generation = await self.cache.generation()
        if entry.generation != generation or time.monotonic() - entry.stored_at >= self.cache.max_age_seconds:
            await self.app(scope, receive, send)
            return
        self.cache.hits += 1
        token = cookies.get(self.csrf_cookie)
        response_headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in PageCache._headers(entry).items()]
        if not token:
            from litestar.datastructures import Cookie
            from litestar.middleware.csrf import generate_csrf_token

            token = generate_csrf_token(self.csrf_secret)
            cookie = Cookie(key=self.csrf_cookie, value=token, path="/", secure=self.secure, samesite="lax")
            response_headers.append((b"set-cookie", cookie.to_header(header="").encode("latin-1")))
        if _not_modified(headers, entry):
            await send({"type": "http.response.start", "status": 304, "headers": response_headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = entry.body.replace(PLACEHOLDER, token).encode()
        response_headers.append((b"content-type", f"{entry.media_type}; charset=utf-8".encode()))
        response_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": entry.status_code, "headers": response_headers})
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


def _not_modified(headers: dict[str, str], entry: CachedPage) -> bool:
    if_none_match = headers.get("if-none-match")
    if if_none_match:
        return entry.etag in [tag.strip() for tag in if_none_match.split(",")] or if_none_match.strip() == "*"
    since = headers.get("if-modified-since")
    if since:
        try:
            return entry.last_modified <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False
