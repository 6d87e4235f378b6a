"""The suite's per-app state: settings, database, plugins, templates, events, storage, search."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinja2 import Environment
from litestar import Request
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from .auth.throttle import LoginThrottle
from .cache import PageCache
from .db import Database
from .events import EventBus
from .plugins import PluginRegistry
from .render import request_language
from .settings import Settings
from .storage import LocalStorage
from .stores import DatabaseStore

if TYPE_CHECKING:
    from concelho.search.backends import SearchBackend

log = logging.getLogger("suite")


@dataclass
class SuiteState:
    settings: Settings
    database: Database
    registry: PluginRegistry
    #: Async environment for plugins' fragment renderers (``render_async``).
    templates: Environment
    #: Sync twin used for pages and error pages (faster; slots are filled after rendering).
    sync_templates: Environment
    events: EventBus
    storage: LocalStorage
    search: SearchBackend
    throttle: LoginThrottle
    page_cache: PageCache
    #: Translated menu entries by (area, language) (see ``render.nav_links``).
    nav_cache: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    #: The portal menu's HTML by (language, visible entries, on the home page) (see ``render.portal_nav``).
    nav_html: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    #: Page slots each template (or HTMX block) asked for when last rendered: rendered before it next time.
    slots_seen: dict[tuple[int, Any], tuple[str, ...]] = field(default_factory=dict)
    #: Per slot: its renderers, each with whether it is a ``cached_slot`` (looked up once: a missing
    #: attribute on a bound method costs an AttributeError each time).
    slot_renderers: dict[str, tuple[tuple[Any, bool], ...]] = field(default_factory=dict)
    #: Each plugin's effective settings in this app (see :meth:`plugin_settings`).
    _plugin_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: What each plugin keeps for this app (see :meth:`plugin_cache`).
    _plugin_caches: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        settings: Settings,
        registry: PluginRegistry,
        templates: Environment,
        sync_templates: Environment,
    ) -> SuiteState:
        from concelho.search.backends import backend_for

        database = Database(settings.database_url)
        events = EventBus()
        page_cache = PageCache(database, enabled=settings.page_cache)
        for event_name in ("content.saved", "content.deleted", "alerts.changed", "cache.invalidate"):
            events.on(event_name, page_cache.invalidate_local)
        for name, funcs in registry.listeners().items():
            for func in funcs:
                events.on(name, func)
        throttle = LoginThrottle(
            DatabaseStore(database, "throttle.account"),
            DatabaseStore(database, "throttle.ip"),
            settings.login_max_failures_account,
            settings.login_max_failures_ip,
            settings.login_window_seconds,
        )
        return cls(
            settings=settings,
            database=database,
            registry=registry,
            templates=templates,
            sync_templates=sync_templates,
            events=events,
            storage=LocalStorage(settings.storage_dir),
            search=backend_for(settings),
            throttle=throttle,
            page_cache=page_cache,
        )

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """Plugin ``name``'s effective settings in this app (its ``settings_for``), worked out once:
        the settings are fixed for the app's life.  Treat the dict as read-only."""
        values = self._plugin_settings.get(name)
        if values is None:
            plugin = self.registry.get(name)
            if plugin is None:
                raise KeyError(f"no plugin named {name!r} in this app")
            values = self._plugin_settings[name] = plugin.settings_for(self.settings)
        return values

    def plugin_cache(self, name: str) -> dict[str, Any]:
        """Where plugin ``name`` keeps what it builds for this app (a store, rows it re-reads when the
        content generation moves); it goes with the app.  A plugin object is shared by every app of
        the process, so what it kept itself by ``id(state)`` could reach a later app that got the id
        of a dead one (tests build many apps)."""
        cache = self._plugin_caches.get(name)
        if cache is None:
            cache = self._plugin_caches[name] = {}
        return cache

    async def render_slot(self, name: str, request: Request) -> Markup:
        """HTML that plugins contribute to a page slot; a failing renderer is logged and skipped."""
        renderers = self.slot_renderers.get(name)
        if renderers is None:
            renderers = self.slot_renderers[name] = tuple(
                (renderer, bool(getattr(renderer, "_suite_cached_slot", False)))
                for renderer in self.registry.hooks().get(name, ())
            )
        if not renderers:
            return _EMPTY
        parts: list[str] = []
        for renderer, cached in renderers:
            try:
                if cached:
                    parts.append(await self._cached_fragment(name, renderer, request))
                    continue
                html = renderer(request)
                if type(html) is not Markup and type(html) is not str and inspect.isawaitable(html):
                    html = await html
                parts.append(str(html))
            except Exception:
                log.exception("slot %s renderer %r failed", name, renderer)
        return Markup("".join(parts))  # noqa: S704 - renderers return escaped HTML

    async def _cached_fragment(self, name: str, renderer: Any, request: Request) -> str:
        """A ``cached_slot`` renderer's HTML for this request's language, rendered once per content generation."""
        cache = self.page_cache
        key = (name, id(renderer), request_language(request))
        generation = await cache.generation()  # re-reads the database at most once per poll interval
        now = time.monotonic()
        hit = cache.fragments.get(key)
        if hit is not None and hit[0] == generation and now - hit[1] < 60:
            return hit[2]
        html = renderer(request)
        if inspect.isawaitable(html):
            html = await html
        cache.fragments[key] = (generation, time.monotonic(), str(html))
        return str(html)


_EMPTY = Markup("")


async def provide_db(request: Request) -> AsyncIterator[AsyncSession]:
    """Request-scoped session; handlers and services commit explicitly.

    It is also kept on the request so page slots rendered for this request reuse it
    (one pooled connection per request, never two).
    """
    async with request.app.state.suite.database.sessionmaker() as session:
        request.scope.setdefault("state", {})["db"] = session
        try:
            yield session
        finally:
            request.scope["state"].pop("db", None)


@asynccontextmanager
async def request_db(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session when the handler has one, else a short-lived session of its own."""
    session = request.scope.get("state", {}).get("db")
    if session is not None:
        yield session
        return
    async with request.app.state.suite.database.sessionmaker() as own:
        yield own


def client_ip(request: Request[Any, Any, Any]) -> str:
    client = request.client
    return client.host if client else "unknown"
