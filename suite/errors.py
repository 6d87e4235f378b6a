"""Friendly error pages (HTML) and JSON errors for API paths; never a traceback in production."""

from __future__ import annotations

import logging
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.response import Redirect
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from .i18n import N_
from .render import render_sync
from .request_scope import request_path, request_query

log = logging.getLogger("suite.errors")

TITLES = {
    400: N_("Bad request"),
    401: N_("Sign in required"),
    403: N_("Access denied"),
    404: N_("Page not found"),
    405: N_("Method not allowed"),
    413: N_("File too large"),
    429: N_("Too many requests"),
    500: N_("Something went wrong"),
}
ERROR = N_("Error")
CSRF_FAILED = N_("Your form expired or was sent from another site. Reload the page and try again.")
#: Litestar's default details (HTTP reason phrases); the error page passes ``detail`` through ``_()``.
DEFAULT_DETAILS = (
    N_("Bad Request"),
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("Request Entity Too Large"),
    N_("Too Many Requests"),
)


def _wants_json(request: Request) -> bool:
    path = request_path(request)
    return path.startswith(("/api/", "/open311/")) or (
        "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get("accept", "")
    )


def _error_page(request: Request, status: int, detail: str) -> Response:
    if _wants_json(request):
        return Response({"status_code": status, "detail": detail}, status_code=status, media_type=MediaType.JSON)
    try:
        return render_sync(
            request,
            "core/error.html",
            {"status": status, "title": TITLES.get(status, ERROR), "detail": detail},
            status,
        )
    except Exception:  # the error page itself must never fail
        log.exception("error page failed")
        return Response(f"{status} {TITLES.get(status, ERROR)}", status_code=status, media_type=MediaType.TEXT)


def http_exception_handler(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if isinstance(exc, NotAuthorizedException) and request.method == "GET" and not _wants_json(request):
        query = request_query(request)
        target = request_path(request) + (f"?{query}" if query else "")
        # Bytes of the query that were not UTF-8 go back out percent-encoded as they came.
        return Redirect(f"/login?next={quote(target, errors='surrogateescape')}", status_code=303)
    detail = exc.detail if status < 500 else TITLES[500]
    if status == 403 and detail == "CSRF token verification failed":
        detail = CSRF_FAILED
    headers = getattr(exc, "headers", None) or {}
    response = _error_page(request, status, detail)
    for key, value in headers.items():
        response.headers[key] = value
    return response


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request_path(request), exc_info=exc)
    return _error_page(request, HTTP_500_INTERNAL_SERVER_ERROR, TITLES[500])
