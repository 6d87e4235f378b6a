"""Intranet pages of the staff directory and the portal slot of the org chart."""

from __future__ import annotations

from typing import Any

from concelho.suite.auth.guards import NO_PERMISSION, intranet_required
from concelho.suite.render import base_context, render
from concelho.suite.request_scope import request_path
from concelho.suite.state import client_ip, request_db
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from . import services
from .services import FIELD_LABELS, PUBLIC_FIELDS, ProfileForm

BASE = "/intranet/pessoas"


class DirectoryController(Controller):
    path = BASE
    guards = [intranet_required]

    @get("/", name="directory:index")
    async def index(self, request: Request, db: NamedDependency[AsyncSession], q: FromQuery[str] = "") -> Response:
        """The people, or those matching ``q`` (HTMX gets only the results while typing)."""
        result = await services.search(db, q)
        return await render(request, "directory/index.html", {"result": result, "base": BASE}, block="results")

    @get("/departamentos", name="directory:departments")
    async def departments(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        units = await services.tree_with_people(db)
        return await render(request, "directory/departments.html", {"units": units, "base": BASE})

    @get("/{username:str}", name="directory:person")
    async def person(self, request: Request, db: NamedDependency[AsyncSession], username: FromPath[str]) -> Response:
        found = await _person_or_404(db, username)
        viewer = request.scope["user"]
        return await render(
            request,
            "directory/person.html",
            {
                "person": found,
                "base": BASE,
                "can_edit": services.can_edit(viewer, found.user.id),
                "labels": FIELD_LABELS,
                "public_fields": [f for f in PUBLIC_FIELDS if f in found.public_fields],
                "saved": request.query_params.get("guardado") == "1",
            },
        )

    @get("/{username:str}/editar", name="directory:edit")
    async def edit(self, request: Request, db: NamedDependency[AsyncSession], username: FromPath[str]) -> Response:
        found = await _editable(request, db, username)
        return await _form(request, found, ProfileForm.of(found), {})

    @post("/{username:str}/editar", name="directory:save")
    async def save(self, request: Request, db: NamedDependency[AsyncSession], username: FromPath[str]) -> Response:
        found = await _editable(request, db, username)
        viewer = request.scope["user"]
        is_admin = viewer.has("core.admin")
        form = ProfileForm.parse(await request.form(), ProfileForm.of(found), is_admin=is_admin)
        errors = await services.validate(db, form)
        if errors:
            return await _form(request, found, form, errors, status=400)
        await services.save_profile(db, found, form, viewer, client_ip(request))
        await db.commit()
        await request.app.state.suite.events.emit("cache.invalidate")
        return Redirect(f"{BASE}/{found.username}?guardado=1", status_code=303)


async def _person_or_404(db: AsyncSession, username: str) -> services.Person:
    found = await services.person(db, username)
    if found is None:
        raise NotFoundException()
    return found


async def _editable(request: Request, db: AsyncSession, username: str) -> services.Person:
    found = await _person_or_404(db, username)
    if not services.can_edit(request.scope["user"], found.user.id):
        raise PermissionDeniedException(NO_PERMISSION)
    return found


async def _form(
    request: Request, found: services.Person, form: ProfileForm, errors: dict[str, str], status: int = 200
) -> Response:
    viewer = request.scope["user"]
    return await render(
        request,
        "directory/edit.html",
        {
            "person": found,
            "form": form,
            "errors": errors,
            "base": BASE,
            "fields": PUBLIC_FIELDS,
            "labels": FIELD_LABELS,
            "is_admin": viewer.has("core.admin"),
            "is_self": viewer.id == found.user.id,
        },
        status_code=status,
    )


async def org_chart_people(request: Request) -> Markup:
    """``org_chart_people``: the opted-in people of the public org chart, with only their public fields."""
    async with request_db(request) as db:
        groups = await services.portal_groups(db)
    if not groups:
        return Markup("")
    tmpl = request.app.state.suite.templates.get_template("directory/_org_chart_people.html")
    html = await tmpl.render_async({**base_context(request), "groups": groups})
    return Markup(html)  # noqa: S704 - rendered by an autoescaping template


def stylesheet(request: Any) -> str:
    path = request_path(request)
    if path.startswith(BASE) or path.startswith("/camara/organograma"):
        return Markup('<link rel="stylesheet" href="/static/directory/directory.css">')
    return ""  # nothing on other pages (a plain empty string: no Markup to build)
