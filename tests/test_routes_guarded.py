"""Every route is either guarded or explicitly public, and guarded pages turn anonymous visitors away."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from concelho.suite.plugins import Plugin
from litestar import Litestar, get
from litestar.handlers import BaseRouteHandler

from .conftest import settings_for

PATH_PARAM = re.compile(r"\{[^}:]+(?::[^}]+)?\}")


def handlers(app: Litestar) -> Iterator[tuple[str, BaseRouteHandler]]:
    for route in app.routes:
        for handler in route.route_handlers:
            yield route.path, handler


def describe(path: str, handler: BaseRouteHandler) -> str:
    methods = ",".join(sorted(getattr(handler, "http_methods", ()) or ())) or type(handler).__name__
    return f"{methods} {path} ({handler.name or handler.handler_name})"


def unguarded(app: Litestar) -> list[str]:
    return [
        describe(path, handler)
        for path, handler in handlers(app)
        if not handler.resolve_guards() and handler.opt.get("public") is not True
    ]


def protected_get_paths(app: Litestar) -> list[str]:
    paths = set()
    for path, handler in handlers(app):
        if "GET" in getattr(handler, "http_methods", ()) and handler.opt.get("public") is not True:
            paths.add(PATH_PARAM.sub("1", path))
    return sorted(paths)


def test_every_handler_is_guarded_or_public(app):
    walked = list(handlers(app))
    assert len(walked) > 10
    assert any(path.startswith("/static/core/") for path, _ in walked)  # static routers are walked too
    assert any(path.startswith("/static/alerts/") for path, _ in walked)
    assert unguarded(app) == []


def test_the_walk_catches_a_forgotten_guard(tmp_path):
    from concelho.suite.app import create_app

    @get("/leaky/secret", name="leaky:secret")
    async def secret() -> str:
        return "secret"

    class Leaky(Plugin):
        name = "leaky"
        models_module = None

        def route_handlers(self) -> list[Any]:
            return [secret]

    settings = settings_for(tmp_path / "var", f"sqlite:///{tmp_path / 'x.db'}")
    app = create_app(settings, available={"leaky": Leaky()})
    assert sorted(unguarded(app)) == [
        "GET /leaky/secret (leaky:secret)",
        "OPTIONS /leaky/secret (options_handler)",
    ]
    assert protected_get_paths(app) == sorted({*protected_get_paths(create_app(settings, {})), "/leaky/secret"})


def test_public_marker_is_exactly_true(app):
    for path, handler in handlers(app):
        if "public" in handler.opt:
            assert handler.opt["public"] is True, describe(path, handler)


def test_anonymous_visitors_are_sent_to_login(app, client):
    paths = protected_get_paths(app)
    assert "/intranet" in paths and "/admin" in paths and "/intranet/alerts" in paths
    assert "/admin/users/1" in paths
    failures = []
    for path in paths:
        response = client.get(path, follow_redirects=False)
        if response.status_code == 303:
            location = response.headers["location"]
            if not location.startswith("/login?next="):
                failures.append(f"{path}: redirected to {location}")
        elif response.status_code not in (401, 403):
            failures.append(f"{path}: {response.status_code}")
    assert failures == []


def test_anonymous_json_clients_get_401(app, client):
    failures = []
    for path in protected_get_paths(app):
        response = client.get(path, headers={"accept": "application/json"}, follow_redirects=False)
        if response.status_code not in (401, 403):
            failures.append(f"{path}: {response.status_code}")
    assert failures == []


def test_login_redirect_keeps_the_target(client):
    response = client.get("/admin/audit?page=2", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin/audit%3Fpage%3D2"
