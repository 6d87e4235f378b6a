"""Request headers and query values read straight from the ASGI scope.

Litestar's ``request.headers`` builds a multidict of every header the first time it is asked,
``request.query_params`` a new multidict on every access and ``request.url`` a parsed URL; the few
things a portal page reads (``HX-Request``, ``Accept-Language``, ``Cookie``, ``?lang=``, its path)
are cheaper to find in the raw scope.
ASGI servers send header names in lower case.
"""

from __future__ import annotations

from typing import Any

from litestar import Request


def scope_header(scope: Any, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), as Litestar's ``headers.get`` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def scope_headers(scope: Any, *names: bytes) -> dict[bytes, str]:
    """The first value of each of ``names`` that the request has, in one scan."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in names and key not in found:
            found[key] = value.decode("latin-1")
    return found


def query_value(request: Request, name: str) -> str | None:
    """``request.query_params.get(name)``, without building the multidict when there is no query string."""
    if not request.scope.get("query_string"):
        return None
    return request.query_params.get(name)


def request_path(request: Request) -> str:
    """``request.url.path``, without building the URL."""
    scope = request.scope
    return scope.get("root_path", "") + scope["path"]


def request_query(request: Request) -> str:
    """``request.url.query`` (the raw query string), without building the URL; bytes that are not
    UTF-8 are kept as surrogates instead of failing."""
    return request.scope.get("query_string", b"").decode("utf-8", "surrogateescape")
