"""Open311 GeoReport v2 at ``/open311/v2/``: discovery, services, service definitions, requests (GET and POST)
and tokens, in JSON and XML. Requests become ordinary CRM cases; see docs/OPEN311.md."""

from __future__ import annotations

import logging
from typing import Any

from concelho.suite.auth.guards import PUBLIC
from concelho.suite.i18n import N_, translations
from concelho.suite.render import request_language
from concelho.suite.request_scope import request_path
from concelho.suite.stores import DatabaseStore
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from . import apikeys, services
from .controllers import crm_settings, tracking_url
from .open311_catalogue import Open311Service, catalogue
from .open311_format import Open311Error, error_response, format_of, respond, split_format
from .open311_requests import (
    case_for_request,
    case_for_token,
    file_request,
    find_requests,
    read_post,
    read_query,
    request_rows,
)

log = logging.getLogger("suite.crm.open311")

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: When this endpoint's discovery document last changed.
CHANGESET = "2026-11-28T00:00:00Z"
#: The one route that takes unsafe requests: authenticated by the API key in its body, never by cookies, so
#: CSRF protection has nothing to protect (the suite's CSRF middleware skips handlers with this ``opt``).
CSRF_EXEMPT = {"csrf_exempt": True}
#: Read-only answers hold nothing private: any web page may read them (no cookies are involved).
READ_HEADERS = {"Access-Control-Allow-Origin": "*"}
NOTICE = N_("Request %(reference)s received.")
NOTICE_DAYS = N_("Request %(reference)s received. Expected answer within %(days)s days.")
NOTICE_WORKING_DAYS = N_("Request %(reference)s received. Processing time: %(days)s working days.")


def _format(request: Request) -> str:
    return format_of(request_path(request))


def open311_error(request: Request, exc: Exception) -> Response:
    """Every failure under /open311 answers in the spec's error list, in the format the address asked for."""
    if isinstance(exc, Open311Error):
        error = exc
    elif isinstance(exc, HTTPException) and exc.status_code < 500:
        error = Open311Error(exc.status_code, str(exc.detail))
    else:
        log.exception("Open311 %s %s failed", request.method, request_path(request), exc_info=exc)
        error = Open311Error(500, "Internal error: the request was not processed.")
    return error_response(_format(request), error)


def _jurisdiction(request: Request, value: Any) -> None:
    """``jurisdiction_id`` is optional; when given it must be this council's (any, if none is configured)."""
    expected = crm_settings(request)["open311_jurisdiction"]
    if value and expected and str(value).strip() != expected:
        raise Open311Error(404, f"jurisdiction_id {str(value)[:80]!r} is not served here (this is {expected!r}).")


async def _services(request: Request, db: AsyncSession) -> list[Open311Service]:
    state = request.app.state.suite
    return await catalogue(db, state.registry, crm_settings(request), request_language(request))


async def _service(request: Request, db: AsyncSession, code: str) -> Open311Service:
    if not code:
        raise Open311Error(400, "service_code is required.")
    service = next((s for s in await _services(request, db) if s.code == code), None)
    if service is None:
        raise Open311Error(404, f"service_code {code[:60]!r} not found (see services.json).")
    return service


async def _over_limit(request: Request, key_id: int) -> bool:
    """Count one POST against the key; True when it is over ``open311_rate_limit`` per window."""
    cfg = crm_settings(request)
    store = DatabaseStore(request.app.state.suite.database, "crm.open311.key")
    name = f"key:{key_id}"
    raw = await store.get(name)
    count = int(raw) if raw else 0
    if count >= cfg["open311_rate_limit"]:
        return True
    remaining = await store.expires_in(name) if count else None
    await store.set(name, str(count + 1), expires_in=remaining or cfg["rate_window_seconds"])
    return False


def _notice(request: Request, service: Open311Service, reference: str) -> str:
    gettext = translations(request_language(request)).gettext
    if service.topic is not None and service.topic.sla_days:
        return gettext(NOTICE_DAYS) % {"reference": reference, "days": service.topic.sla_days}
    if service.processing_days:
        return gettext(NOTICE_WORKING_DAYS) % {"reference": reference, "days": service.processing_days}
    return gettext(NOTICE) % {"reference": reference}


class Open311Controller(Controller):
    """Public and read-only, except POST requests (API key). Personal data is taken, never given back."""

    path = "/open311"
    opt = PUBLIC
    #: Both keys: a handler is picked by the exception's class, so HTTPException needs its own entry here or the
    #: app's (HTML/JSON) handler for HTTPException would win over this controller's handler for Exception.
    exception_handlers = {HTTPException: open311_error, Exception: open311_error}

    @get(
        ["/discovery.json", "/discovery.xml", "/v2/discovery.json", "/v2/discovery.xml"],
        name="crm:open311-discovery",
    )
    async def discovery(self, request: Request) -> Response:
        settings = request.app.state.suite.settings
        base = settings.base_url.rstrip("/")
        payload = {
            "changeset": CHANGESET,
            "contact": f"{settings.site_name}: {base}/fale-connosco",
            "key_service": f"API keys are issued by the council on request: {base}/fale-connosco",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": f"{base}/open311/v2",
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }
        return respond(_format(request), "discovery", payload, headers=READ_HEADERS)

    @get(["/v2/services.json", "/v2/services.xml"], name="crm:open311-services")
    async def services_list(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        _jurisdiction(request, request.query_params.get("jurisdiction_id"))
        rows = [s.entry() for s in await _services(request, db)]
        return respond(_format(request), "services", rows, "service", headers=READ_HEADERS)

    @get("/v2/services/{name:str}", name="crm:open311-service")
    async def service_definition(
        self, request: Request, db: NamedDependency[AsyncSession], name: FromPath[str]
    ) -> Response:
        code, fmt = split_format(name)
        _jurisdiction(request, request.query_params.get("jurisdiction_id"))
        service = await _service(request, db, code)
        return respond(fmt, "service_definition", service.definition(), headers=READ_HEADERS)

    @get(["/v2/requests.json", "/v2/requests.xml"], name="crm:open311-requests")
    async def requests_list(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        params = request.query_params
        _jurisdiction(request, params.get("jurisdiction_id"))
        query = read_query(params)
        topics = services.parse_topics(crm_settings(request)["topics"])
        rows = await request_rows(db, await find_requests(db, query, topics))
        return respond(_format(request), "service_requests", rows, "request", headers=READ_HEADERS)

    @post(["/v2/requests.json", "/v2/requests.xml"], name="crm:open311-create", opt=CSRF_EXEMPT)
    async def create(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        """POST a request (form-encoded or multipart): api_key, service_code, a location, attribute[CODE]…"""
        form = await request.form()
        _jurisdiction(request, form.get("jurisdiction_id") or request.query_params.get("jurisdiction_id"))
        raw_key = form.get("api_key") or request.query_params.get("api_key") or ""
        key = await apikeys.verify_key(db, raw_key if isinstance(raw_key, str) else "")
        if key is None:
            raise Open311Error(403, "Invalid api_key received: missing, unknown or revoked.")
        if await _over_limit(request, key.id):  # type: ignore[arg-type]
            raise Open311Error(429, "Too many requests with this api_key: try again later.")
        code = form.get("service_code")
        service = await _service(request, db, code.strip() if isinstance(code, str) else "")
        data = read_post(form, service)
        cfg = crm_settings(request)
        case, tracking_token = await file_request(db, service, data, key, cfg["reference_prefix"])
        if data.email:
            link = str(request.base_url).rstrip("/") + tracking_url(case, tracking_token)
            await services.notify_citizen(
                db,
                case,
                f"Pedido {case.reference} recebido",
                f"Recebemos o seu pedido «{service.name}» com a referência {case.reference}.\n\n"
                f"Pode acompanhar o pedido, responder e juntar documentos em:\n{link}\n\n"
                "Guarde esta mensagem: o endereço é pessoal e não deve ser partilhado.",
            )
        await db.commit()
        row = {
            "service_request_id": case.reference,
            "token": case.api_token,
            "service_notice": _notice(request, service, case.reference),
            "account_id": data.account_id or None,
        }
        return respond(_format(request), "service_requests", [row], "request", status=201)

    @get("/v2/requests/{name:str}", name="crm:open311-request")
    async def request_detail(
        self, request: Request, db: NamedDependency[AsyncSession], name: FromPath[str]
    ) -> Response:
        reference, fmt = split_format(name)
        _jurisdiction(request, request.query_params.get("jurisdiction_id"))
        case = await case_for_request(db, reference)
        if case is None:
            raise Open311Error(404, f"service_request_id {reference[:60]!r} not found.")
        return respond(fmt, "service_requests", await request_rows(db, [case]), "request", headers=READ_HEADERS)

    @get("/v2/tokens/{name:str}", name="crm:open311-token")
    async def token(self, request: Request, db: NamedDependency[AsyncSession], name: FromPath[str]) -> Response:
        token, fmt = split_format(name)
        _jurisdiction(request, request.query_params.get("jurisdiction_id"))
        case = await case_for_token(db, token)
        if case is None:
            raise Open311Error(404, "token not found.")
        row = {"service_request_id": case.reference, "token": token}
        return respond(fmt, "service_requests", [row], "request", headers=READ_HEADERS)
