"""Route guards.  Every route is either guarded or explicitly marked public (a test checks)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from ..i18n import N_

#: ``opt`` for handlers anyone may call: ``@get("/", opt=PUBLIC)``
PUBLIC: dict[str, Any] = {"public": True}


SIGN_IN = N_("Sign in to continue")
NO_PERMISSION = N_("You do not have permission to do this")


def login_required(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if connection.scope.get("user") is None:
        raise NotAuthorizedException(SIGN_IN)


def permission_required(*permissions: str):  # type: ignore[no-untyped-def]
    """Guard requiring every one of ``permissions`` (signed-out users get 401, others 403)."""

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if user is None:
            raise NotAuthorizedException(SIGN_IN)
        missing = [p for p in permissions if not user.has(p)]
        if missing:
            raise PermissionDeniedException(NO_PERMISSION)

    guard.__name__ = f"permission_required({', '.join(permissions)})"
    guard.permissions = permissions  # type: ignore[attr-defined]
    return guard


intranet_required = permission_required("intranet.access")
