"""The app factory: settings → plugins → one Litestar app.

Building the app has no side effects (no network, no database I/O): the CLI builds it
just to list routes.  Connections open lazily; background work starts in lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from concelho.search import web as search_web
from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.static_files import create_static_files_router

from . import __version__
from .auth.controllers import AuthController
from .auth.middleware import AuthMiddleware
from .cache import PageCacheMiddleware
from .content.editor import EditorController
from .content.media_pages import MediaLibraryController, PublicMediaController
from .errors import http_exception_handler, internal_error_handler
from .jobs import background_jobs
from .pages import AdminController, HealthController, IntranetController, PortalController
from .paths import STATIC_DIR
from .plugins import Plugin, PluginError, PluginRegistry
from .security import SuiteCSRFMiddleware, security_headers_hook
from .settings import Settings, SettingsError, load_settings
from .state import SuiteState, provide_db
from .templating import build_environment

log = logging.getLogger("suite")

CSRF_COOKIE = "suite_csrf"
CSRF_HEADER = "x-csrftoken"


def plugin_router(plugin: Plugin) -> Router | None:
    handlers = plugin.route_handlers()
    if not handlers:
        return None
    return Router(path="/", route_handlers=handlers, tags=[plugin.name], opt={"plugin": plugin.name})


def create_app(settings: Settings | None = None, available: dict[str, Plugin] | None = None) -> Litestar:
    """Build the ASGI app.  ``available`` replaces entry-point discovery (tests)."""
    settings = settings or load_settings()
    if not settings.secret_key:
        raise SettingsError("no secret key: run `suite init` (or set SUITE_SECRET_KEY)")
    registry = PluginRegistry.from_settings(settings, available)
    registry.load_models()
    registry.permissions()  # validates namespaces early

    templates = build_environment(registry.plugins, settings.templates_dir, settings.debug)
    sync_templates = build_environment(registry.plugins, settings.templates_dir, settings.debug, enable_async=False)
    state = SuiteState.build(settings, registry, templates, sync_templates)

    route_handlers: list[Any] = [
        PortalController,
        AuthController,
        IntranetController,
        AdminController,
        HealthController,
        EditorController,
        MediaLibraryController,
        PublicMediaController,
        create_static_files_router(
            path="/static/core", directories=[STATIC_DIR / "core"], name="core:static", opt={"public": True}
        ),
        *search_web.route_handlers(),
    ]
    for plugin in registry:
        router = plugin_router(plugin)
        if router is not None:
            route_handlers.append(router)
        if plugin.static_dir:
            route_handlers.append(
                create_static_files_router(
                    path=f"/static/{plugin.name}",
                    directories=[plugin.static_dir],
                    name=f"{plugin.name}:static",
                    opt={"public": True},
                )
            )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        for plugin in registry:
            result = plugin.on_startup(app)
            if result is not None:
                await result
        from concelho.search.service import startup as search_startup

        # In the background: an unreachable engine never delays or stops the start-up.
        search_ready = asyncio.create_task(search_startup(state))
        try:
            if settings.background_jobs:
                async with background_jobs(state, interval=settings.jobs_interval_seconds):
                    yield
            else:
                yield
        finally:
            search_ready.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await search_ready
            await state.database.dispose()

    csrf = CSRFConfig(
        secret=settings.secret_key,
        cookie_name=CSRF_COOKIE,
        header_name=CSRF_HEADER,
        cookie_secure=settings.secure_cookies,
        cookie_samesite="lax",
        exclude_from_csrf_key="csrf_exempt",
    )
    app = Litestar(
        route_handlers=route_handlers,
        dependencies={"db": Provide(provide_db)},
        middleware=[
            DefineMiddleware(
                PageCacheMiddleware,
                cache=state.page_cache,
                csrf_secret=settings.secret_key,
                csrf_cookie=CSRF_COOKIE,
                secure=settings.secure_cookies,
                default_language=settings.default_language,
            ),
            DefineMiddleware(
                AuthMiddleware,
                database=state.database,
                max_age=settings.session_max_age,
                secure=settings.secure_cookies,
                skip_prefixes=("/static/", "/healthz"),
            ),
            # Innermost, where Litestar puts its own CSRF middleware when given ``csrf_config``.
            DefineMiddleware(SuiteCSRFMiddleware, config=csrf),
        ],
        exception_handlers={HTTPException: http_exception_handler, Exception: internal_error_handler},
        before_send=[security_headers_hook(settings.secure_cookies)],
        lifespan=[lifespan],
        debug=settings.debug,
        # OpenAPI documents the JSON API only (/api/schema/openapi.json): pages stay out of the schema.
        include_in_schema=False,
        openapi_config=search_web.openapi_config(settings.site_name, __version__),
        request_max_body_size=settings.upload_max_bytes + 1024 * 1024,
    )
    app.state.suite = state
    app.state.csrf_config = csrf
    return app


def create_app_from_env() -> Litestar:
    """Entry used by ``uvicorn --factory`` (settings from the environment)."""
    try:
        return create_app()
    except (SettingsError, PluginError) as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
