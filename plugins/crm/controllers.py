"""Public pages (Fale Connosco, online service requests, case tracking) and the staff case desk."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from concelho.suite.auth.guards import PUBLIC, permission_required
from concelho.suite.content.media import MediaError, content_disposition
from concelho.suite.i18n import N_
from concelho.suite.maps import MapOptions, map_options
from concelho.suite.models import Department, User
from concelho.suite.render import render, request_language
from concelho.suite.state import client_ip
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from . import citizens, services
from .models import Attachment, Case

TRUE = {"1", "on", "true", "yes", "sim"}
FIELDS = ("topic", "description", "name", "email", "phone", "nif", "location_text", "latitude", "longitude")
HONEYPOT = "website"


def crm_settings(request: Request) -> dict[str, Any]:
    state = request.app.state.suite
    return state.plugin_settings("crm")


def location_map(request: Request) -> MapOptions | None:
    """The map of the public forms' location fields (the core map settings), None when turned off."""
    if not crm_settings(request)["location_map"]:
        return None
    return map_options(request.app.state.suite.settings)


def _uploads(form: Any, name: str = "files") -> list[UploadFile]:
    return [f for f in form.getall(name, []) if isinstance(f, UploadFile) and f.filename]


async def _rate_limited(request: Request) -> bool:
    """Count this submission against the client's IP; True when over the limit."""
    state = request.app.state.suite
    cfg = crm_settings(request)
    store = state.registry.get("crm").limit_store(state)
    key = hashlib.sha256(client_ip(request).encode()).hexdigest()
    raw = await store.get(key)
    count = int(raw) if raw else 0
    if count >= cfg["rate_limit"]:
        return True
    remaining = await store.expires_in(key) if count else None
    await store.set(key, str(count + 1), expires_in=remaining or cfg["rate_window_seconds"])
    return False


def tracking_url(case: Case, token: str) -> str:
    return f"/fale-connosco/acompanhar/{quote(case.reference)}?t={quote(token)}"


async def _submit(
    request: Request,
    db: AsyncSession,
    data: services.CaseInput,
    form: Any,
    topic: services.Topic | None,
    topics: list[services.Topic] | None,
    extra_errors: dict[str, str] | None = None,
    extra_uploads: list[tuple[str, UploadFile]] | None = None,
) -> tuple[dict[str, str], Response | None]:
    """Validate, create the case with its attachments, queue the confirmation; errors or the redirect."""
    cfg = crm_settings(request)
    errors = {**data.validate(topics), **(extra_errors or {})}
    uploads = _uploads(form)
    if len(uploads) > cfg["max_attachments"]:
        errors["files"] = N_("Too many files.")
    if errors:
        return errors, None
    case, token = await services.create_case(db, data, prefix=cfg["reference_prefix"], topic=topic)
    storage = request.app.state.suite.storage
    for field, upload in [("files", u) for u in uploads] + [(k, u) for k, u in (extra_uploads or [])]:
        try:
            await services.store_attachment(db, storage, case, upload, cfg["attachment_max_bytes"])
        except MediaError as exc:
            await db.rollback()
            return {field: str(exc)}, None
    link = str(request.base_url).rstrip("/") + tracking_url(case, token)
    await services.notify_citizen(
        db,
        case,
        f"Pedido {case.reference} recebido",
        f"Recebemos a sua mensagem com a referência {case.reference}.\n\n"
        f"Pode acompanhar o pedido, responder e juntar documentos em:\n{link}\n\n"
        "Guarde esta mensagem: o endereço é pessoal e não deve ser partilhado.",
    )
    await db.commit()
    return {}, Redirect(tracking_url(case, token) + "&recebido=1", status_code=303)


def _case_input(form: Any, **extra: Any) -> services.CaseInput:
    values = {k: str(form.get(k, "") or "").strip() for k in FIELDS}
    return services.CaseInput(**values, consent=str(form.get("consent", "")).lower() in TRUE, **extra)


class ContactController(Controller):
    path = "/fale-connosco"
    opt = PUBLIC

    async def _form(self, request: Request, form: dict[str, Any], errors: dict[str, str], status: int = 200) -> Any:
        topics = services.parse_topics(crm_settings(request)["topics"])
        return await render(
            request,
            "crm/contact.html",
            {
                "topics": topics,
                "form": form,
                "errors": errors,
                "max_files": crm_settings(request)["max_attachments"],
                "location_map": location_map(request),
            },
            status_code=status,
        )

    @get("/", name="crm:contact")
    async def contact(self, request: Request) -> Response:
        return await self._form(request, {}, {})

    @post("/", name="crm:contact-send")
    async def send(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        form = await request.form()
        kept = {k: str(form.get(k, "") or "") for k in FIELDS} | {"consent": str(form.get("consent", ""))}
        if str(form.get(HONEYPOT, "")).strip():
            return await render(request, "crm/spam.html", {})
        if await _rate_limited(request):
            errors = {"form": N_("Too many messages from your connection. Please try again later.")}
            return await self._form(request, kept, errors, 429)
        topics = services.parse_topics(crm_settings(request)["topics"])
        data = _case_input(form)
        topic = next((t for t in topics if t.label == data.topic), None)
        errors, response = await _submit(request, db, data, form, topic, topics)
        if response is not None:
            return response
        return await self._form(request, kept, errors, 400)

    async def _tracked(self, db: AsyncSession, reference: str, token: str) -> Case:
        case = await services.case_by_reference(db, reference)
        if case is None or not services.token_matches(case, token):
            raise NotFoundException()
        return case

    async def _tracking_page(
        self, request: Request, db: AsyncSession, case: Case, token: str, errors: dict[str, str], status: int = 200
    ) -> Response:
        return await render(
            request,
            "crm/track.html",
            {
                "case": case,
                "token": token,
                "events": await services.events_of(db, case, public_only=True),
                "attachments": await services.attachments_of(db, case),
                "status_labels": services.STATUS_LABELS,
                "received": request.query_params.get("recebido") == "1",
                "tracking_url": tracking_url(case, token),
                "errors": errors,
                "merged_into": await db.get(Case, case.merged_into_id) if case.merged_into_id else None,
            },
            status_code=status,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    @get("/acompanhar/{reference:str}", name="crm:track")
    async def track(self, request: Request, db: NamedDependency[AsyncSession], reference: FromPath[str]) -> Response:
        token = request.query_params.get("t", "")
        case = await self._tracked(db, reference, token)
        return await self._tracking_page(request, db, case, token, {})

    @post("/acompanhar/{reference:str}", name="crm:track-reply")
    async def reply(self, request: Request, db: NamedDependency[AsyncSession], reference: FromPath[str]) -> Response:
        form = await request.form()
        token = str(form.get("t", ""))
        case = await self._tracked(db, reference, token)
        if await _rate_limited(request):
            errors = {"body": N_("Too many messages from your connection. Please try again later.")}
            return await self._tracking_page(request, db, case, token, errors, 429)
        body = str(form.get("body", "")).strip()
        uploads = _uploads(form)
        cfg = crm_settings(request)
        if not body and not uploads:
            return await self._tracking_page(
                request, db, case, token, {"body": N_("Write a reply or add a file.")}, 400
            )
        if len(body) > 5000 or len(uploads) > cfg["max_attachments"]:
            errors = {"body": N_("The message must have at most 5000 characters.")}
            return await self._tracking_page(request, db, case, token, errors, 400)
        for upload in uploads:
            try:
                attachment = await services.store_attachment(
                    db, request.app.state.suite.storage, case, upload, cfg["attachment_max_bytes"]
                )
            except MediaError as exc:
                await db.rollback()
                case = await self._tracked(db, reference, token)
                return await self._tracking_page(request, db, case, token, {"body": str(exc)}, 400)
            await services.add_event(db, case, "attachment", attachment.filename, "citizen")
        if body:
            await services.add_event(db, case, "citizen_reply", body, "citizen")
        if case.status in ("waiting_citizen", "answered"):
            case.status = "in_progress" if case.status == "waiting_citizen" else "reopened"
        await db.commit()
        return Redirect(tracking_url(case, token), status_code=303)

    @get("/acompanhar/{reference:str}/anexos/{attachment_id:int}", name="crm:track-file")
    async def file(
        self,
        request: Request,
        db: NamedDependency[AsyncSession],
        reference: FromPath[str],
        attachment_id: FromPath[int],
    ) -> Response:
        case = await self._tracked(db, reference, request.query_params.get("t", ""))
        return await _send_attachment(request, db, case, attachment_id)


async def _send_attachment(request: Request, db: AsyncSession, case: Case, attachment_id: int) -> Response:
    attachment = await db.get(Attachment, attachment_id)
    storage = request.app.state.suite.storage
    if attachment is None or attachment.case_id != case.id or not storage.exists(attachment.storage_key):
        raise NotFoundException()
    return Stream(
        storage.open(attachment.storage_key),
        media_type=attachment.content_type,
        headers={
            "Content-Disposition": content_disposition(attachment.filename),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def online_service(request: Request, db: AsyncSession, code: str) -> Any:
    """The live service with ``code`` that can be requested online, or 404."""
    if request.app.state.suite.registry.get("services") is None:
        raise NotFoundException()
    from concelho.suite.content.portal import live_items_preferring

    for item in await live_items_preferring(db, "services.service", request_language(request)):
        if item.data.get("service_code") == code and item.data.get("online") is True:
            return item
    raise NotFoundException()


class ServiceRequestController(Controller):
    path = "/pedidos"
    opt = PUBLIC

    async def _form(
        self, request: Request, service: Any, form: dict[str, Any], errors: dict[str, str], status: int = 200
    ) -> Response:
        return await render(
            request,
            "crm/request.html",
            {
                "service": service,
                "fields": services.request_fields(service.data),
                "form": form,
                "errors": errors,
                "max_files": crm_settings(request)["max_attachments"],
                "location_map": location_map(request),
            },
            status_code=status,
        )

    @get("/{code:str}", name="crm:request")
    async def request_form(self, request: Request, db: NamedDependency[AsyncSession], code: FromPath[str]) -> Response:
        return await self._form(request, await online_service(request, db, code), {}, {})

    @post("/{code:str}", name="crm:request-send")
    async def send(self, request: Request, db: NamedDependency[AsyncSession], code: FromPath[str]) -> Response:
        service = await online_service(request, db, code)
        form = await request.form()
        kept = {k: str(form.get(k, "") or "") for k in FIELDS} | {"consent": str(form.get("consent", ""))}
        if str(form.get(HONEYPOT, "")).strip():
            return await render(request, "crm/spam.html", {})
        if await _rate_limited(request):
            errors = {"form": N_("Too many messages from your connection. Please try again later.")}
            return await self._form(request, service, kept, errors, 429)
        fields = services.request_fields(service.data)
        for spec in fields:
            kept[spec.key] = (
                [str(v) for v in form.getall(spec.key, [])]
                if spec.kind == "multichoice"
                else ("" if spec.kind == "file" else str(form.get(spec.key, "") or ""))
            )
        files = {
            spec.key: upload
            for spec in fields
            if spec.kind == "file" and isinstance(upload := form.get(spec.key), UploadFile) and upload.filename
        }
        values, field_errors = services.validate_request_fields(fields, form, files)
        data = _case_input(form, service_code=code, extra=values)
        data.topic = service.title
        errors, response = await _submit(request, db, data, form, None, None, field_errors, list(files.items()))
        if response is not None:
            return response
        return await self._form(request, service, kept, errors, 400)


class CasesController(Controller):
    path = "/intranet/crm"
    guards = [permission_required("crm.view")]

    async def _case(self, request: Request, db: AsyncSession, case_id: int) -> Case:
        case = await db.get(Case, case_id)
        if case is None or not services.can_see(request.scope["user"], case):
            raise NotFoundException()
        return case

    @get("/casos", name="crm:cases")
    async def cases(self, request: Request, db: NamedDependency[AsyncSession], estado: FromQuery[str] = "") -> Response:
        status = estado if estado in services.STATUS_LABELS else ""
        rows = await services.visible_cases(db, request.scope["user"], status)
        departments = {d.id: d.name for d in (await db.execute(select(Department))).scalars()}
        return await render(
            request,
            "crm/cases.html",
            {
                "cases": rows,
                "status": status,
                "status_labels": services.STATUS_LABELS,
                "overdue": {c.id for c in rows if services.is_overdue(c)},
                "departments": departments,
            },
        )

    async def _detail(
        self, request: Request, db: AsyncSession, case: Case, errors: dict[str, str] | None = None, status: int = 200
    ) -> Response:
        user = request.scope["user"]
        departments = list((await db.execute(select(Department).order_by(Department.name))).scalars())
        assignee = await db.get(User, case.assignee_id) if case.assignee_id else None
        return await render(
            request,
            "crm/case.html",
            {
                "case": case,
                "citizen": await services.citizen_of(db, case),
                "events": await services.events_of(db, case, public_only=False),
                "attachments": await services.attachments_of(db, case),
                "status_labels": services.STATUS_LABELS,
                "next_statuses": services.TRANSITIONS.get(case.status, ()),
                "overdue": services.is_overdue(case),
                "departments": departments,
                "department_names": {d.id: d.name for d in departments},
                "assignee": assignee,
                "can_manage": user.has("crm.manage"),
                "merged_into": await db.get(Case, case.merged_into_id) if case.merged_into_id else None,
                "errors": errors or {},
            },
            status_code=status,
        )

    @get("/casos/{case_id:int}", name="crm:case")
    async def case(self, request: Request, db: NamedDependency[AsyncSession], case_id: FromPath[int]) -> Response:
        case = await self._case(request, db, case_id)
        if case.citizen_id is not None:  # the page shows the citizen's details: a logged view of the record
            await citizens.log_view(db, request.scope["user"], case.citizen_id, "case", client_ip(request))
            await db.commit()
        return await self._detail(request, db, case)

    @post("/casos/{case_id:int}/estado", name="crm:case-status")
    async def status(self, request: Request, db: NamedDependency[AsyncSession], case_id: FromPath[int]) -> Response:
        case = await self._case(request, db, case_id)
        form = await request.form()
        try:
            await services.change_status(db, case, str(form.get("status", "")), request.scope["user"].display_name)
        except services.CrmError as exc:
            return await self._detail(request, db, case, {"status": str(exc)}, 400)
        await db.commit()
        return Redirect(f"/intranet/crm/casos/{case.id}", status_code=303)

    @post("/casos/{case_id:int}/atribuir", name="crm:case-assign")
    async def assign(self, request: Request, db: NamedDependency[AsyncSession], case_id: FromPath[int]) -> Response:
        """Agents take a case; managers also route it to a department or assign it to any user by username."""
        user = request.scope["user"]
        case = await self._case(request, db, case_id)
        form = await request.form()
        username = str(form.get("assignee", "")).strip()
        if username and username != user.username and not user.has("crm.manage"):
            return await self._detail(request, db, case, {"assign": N_("Only managers assign cases to others.")}, 403)
        if user.has("crm.manage") and str(form.get("department_id", "")).isdigit():
            department = await db.get(Department, int(str(form.get("department_id"))))
            if department is not None:
                case.department_id = department.id
        if username:
            target = (await db.execute(select(User).where(User.username == username))).scalar_one_or_none()
            if target is None:
                return await self._detail(
                    request, db, case, {"assign": N_("There is no user with that username.")}, 400
                )
            case.assignee_id = target.id
            if case.status in ("new", "reopened"):
                await services.change_status(db, case, "assigned", user.display_name)
        await db.commit()
        return Redirect(f"/intranet/crm/casos/{case.id}", status_code=303)

    @post("/casos/{case_id:int}/fundir", name="crm:case-merge", guards=[permission_required("crm.manage")])
    async def merge(self, request: Request, db: NamedDependency[AsyncSession], case_id: FromPath[int]) -> Response:
        """Managers merge this duplicate into the case with the given reference (see citizens.merge_case)."""
        case = await self._case(request, db, case_id)
        form = await request.form()
        survivor = await services.case_by_reference(db, str(form.get("reference", "")).strip().upper())
        if survivor is None:
            return await self._detail(request, db, case, {"merge": N_("There is no case with that reference.")}, 400)
        if str(form.get("confirm", "")).lower() not in TRUE:
            errors = {"merge": N_("Tick the box to confirm that both cases are about the same matter.")}
            return await self._detail(request, db, case, errors, 400)
        try:
            await citizens.merge_case(db, case, survivor, request.scope["user"], client_ip(request))
        except services.CrmError as exc:  # raised before anything is written
            return await self._detail(request, db, case, {"merge": str(exc)}, 409)
        await db.commit()
        return Redirect(f"/intranet/crm/casos/{survivor.id}", status_code=303)

    @post("/casos/{case_id:int}/mensagem", name="crm:case-message")
    async def message(self, request: Request, db: NamedDependency[AsyncSession], case_id: FromPath[int]) -> Response:
        case = await self._case(request, db, case_id)
        form = await request.form()
        body = str(form.get("body", "")).strip()
        kind = "public_reply" if str(form.get("kind", "")) == "public_reply" else "internal_note"
        if not body or len(body) > 5000:
            return await self._detail(
                request, db, case, {"body": N_("Write the message (at most 5000 characters).")}, 400
            )
        author = request.scope["user"].display_name
        await services.add_event(db, case, kind, body, author)
        if kind == "public_reply":
            if case.status in services.TRANSITIONS and "answered" in services.TRANSITIONS[case.status]:
                await services.change_status(db, case, "answered", author)
            await services.notify_citizen(
                db,
                case,
                f"Resposta ao pedido {case.reference}",
                f"{body}\n\nPode responder ou juntar documentos através do endereço de acompanhamento que recebeu "
                f"quando apresentou o pedido {case.reference}.",
            )
        await db.commit()
        return Redirect(f"/intranet/crm/casos/{case.id}", status_code=303)

    @get("/anexos/{attachment_id:int}", name="crm:file")
    async def file(self, request: Request, db: NamedDependency[AsyncSession], attachment_id: FromPath[int]) -> Response:
        attachment = await db.get(Attachment, attachment_id)
        if attachment is None:
            raise NotFoundException()
        case = await self._case(request, db, attachment.case_id)
        return await _send_attachment(request, db, case, attachment_id)
