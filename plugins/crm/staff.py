"""Staff pages of citizens' records: list and search, create and edit, the citizen 360° (details, consents, one
timeline, duplicate candidates and merges) and the counter screen that registers a contact in a few keystrokes.

Every page needs ``crm.view``; merging needs ``crm.manage`` too.  Every page that shows one citizen's record
(360°, edit form, merge confirmation, the counter with a citizen picked) writes a ``crm.citizen_viewed`` audit row.
What an agent sees of the cases in the 360° is explained in :func:`citizens.timeline`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from concelho.suite.auth.guards import permission_required
from concelho.suite.content.media import MediaError, content_disposition
from concelho.suite.i18n import N_
from concelho.suite.models import Department
from concelho.suite.render import render, request_language
from concelho.suite.state import client_ip
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Stream
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import citizens, services
from . import nif as nif_rules
from .controllers import _uploads, crm_settings, tracking_url
from .models import Case, Citizen, Interaction, InteractionFile

BASE = "/intranet/crm"
CITIZEN_FIELDS = ("name", "nif", "email", "phone", "address")
COUNTER_FIELDS = ("channel", "direction", "topic", "service_code", "department_id", "notes", "occurred_at")
QUICK_FIELDS = ("new_name", "new_nif", "new_phone")
TRUE = {"1", "on", "true", "yes", "sim"}
REFERENCE_RE = re.compile(r"[A-Z]{1,8}-\d{4}-\d{6}")


def _int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


def _text(form: Any, name: str) -> str:
    return str(form.get(name, "") or "").strip()


async def log_view(db: AsyncSession, request: Request, citizen: Citizen, screen: str) -> None:
    await citizens.log_view(db, request.scope["user"], citizen.id, screen, client_ip(request))


async def _departments(db: AsyncSession) -> list[Department]:
    return list((await db.execute(select(Department).order_by(Department.name))).scalars())


async def _service_choices(request: Request, db: AsyncSession) -> list[tuple[str, str]]:
    """(code, title) of the services in the catalogue, for the topic/service suggestions."""
    if request.app.state.suite.registry.get("services") is None:
        return []
    from concelho.suite.content.portal import live_items_preferring

    items = await live_items_preferring(db, "services.service", request_language(request))
    return sorted({(str(i.data["service_code"]), i.title) for i in items if i.data.get("service_code")})


def _common(request: Request) -> dict[str, Any]:
    return {
        "base": BASE,
        "local": citizens.local_time,
        "channel_labels": citizens.CHANNEL_LABELS,
        "direction_labels": citizens.DIRECTION_LABELS,
        "consent_purposes": citizens.CONSENT_PURPOSES,
        "status_labels": services.STATUS_LABELS,
        "can_manage": request.scope["user"].has("crm.manage"),
    }


class CitizensController(Controller):
    path = BASE
    guards = [permission_required("crm.view")]

    async def _citizen(self, db: AsyncSession, citizen_id: int) -> Citizen:
        citizen = await db.get(Citizen, citizen_id)
        if citizen is None:
            raise NotFoundException()
        return citizen

    # ----------------------------------------------------------------------------------------
    # List and search
    # ----------------------------------------------------------------------------------------
    @get("/cidadaos", name="crm:citizens")
    async def index(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        """Citizens matching ``q`` (NIF, name, phone or e-mail), paginated; HTMX gets only the results."""
        query = request.query_params.get("q", "")
        page = _int(request.query_params.get("page")) or 1
        result = await citizens.search_citizens(db, query, page)
        return await render(request, "crm/citizens.html", {**_common(request), "result": result}, block="results")

    # ----------------------------------------------------------------------------------------
    # Create and edit
    # ----------------------------------------------------------------------------------------
    async def _form(
        self,
        request: Request,
        form: dict[str, Any],
        errors: dict[str, str],
        *,
        citizen: Citizen | None = None,
        candidates: list[citizens.Candidate] | None = None,
        status: int = 200,
    ) -> Response:
        context = {**_common(request), "form": form, "errors": errors, "citizen": citizen, "candidates": candidates}
        return await render(request, "crm/citizen_form.html", context, status_code=status)

    @get("/cidadaos/novo", name="crm:citizen-new")
    async def new(self, request: Request) -> Response:
        return await self._form(request, {}, {})

    @post("/cidadaos/novo", name="crm:citizen-create")
    async def create(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        """Create a record; possible duplicates are shown and need an explicit "create anyway"."""
        form = await request.form()
        kept = {k: _text(form, k) for k in CITIZEN_FIELDS}
        data = citizens.CitizenInput(**kept)
        errors = data.validate()
        if errors:
            return await self._form(request, kept, errors, status=400)
        if str(form.get("create_anyway", "")).lower() not in TRUE:
            candidates = await citizens.duplicate_candidates(db, data.probe())
            if candidates:
                return await self._form(request, kept, {}, candidates=candidates, status=409)
        citizen = await citizens.create_citizen(db, data, request.scope["user"], client_ip(request))
        await db.commit()
        return Redirect(f"{BASE}/cidadaos/{citizen.id}", status_code=303)

    @get("/cidadaos/{citizen_id:int}/editar", name="crm:citizen-edit")
    async def edit(self, request: Request, db: NamedDependency[AsyncSession], citizen_id: FromPath[int]) -> Response:
        citizen = await self._citizen(db, citizen_id)
        if citizen.merged_into_id is not None or citizen.erased_at is not None:
            return Redirect(f"{BASE}/cidadaos/{citizen.id}", status_code=303)
        await log_view(db, request, citizen, "edit")
        await db.commit()
        return await self._form(request, {k: getattr(citizen, k) for k in CITIZEN_FIELDS}, {}, citizen=citizen)

    @post("/cidadaos/{citizen_id:int}/editar", name="crm:citizen-update")
    async def update(self, request: Request, db: NamedDependency[AsyncSession], citizen_id: FromPath[int]) -> Response:
        citizen = await self._citizen(db, citizen_id)
        form = await request.form()
        kept = {k: _text(form, k) for k in CITIZEN_FIELDS}
        try:
            await citizens.update_citizen(
                db, citizen, citizens.CitizenInput(**kept), request.scope["user"], client_ip(request)
            )
        except citizens.InvalidInput as exc:
            return await self._form(request, kept, exc.errors, citizen=citizen, status=400)
        except services.CrmError as exc:
            return await self._form(request, kept, {"form": str(exc)}, citizen=citizen, status=409)
        await db.commit()
        return Redirect(f"{BASE}/cidadaos/{citizen.id}", status_code=303)

    # ----------------------------------------------------------------------------------------
    # The 360° view, consents
    # ----------------------------------------------------------------------------------------
    async def _view(
        self,
        request: Request,
        db: AsyncSession,
        citizen: Citizen,
        *,
        errors: dict[str, str] | None = None,
        consent_form: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        user = request.scope["user"]
        await log_view(db, request, citizen, "360")
        await db.commit()
        entries, truncated = await citizens.timeline(db, citizen, user)
        latest, history = await citizens.latest_consents(db, citizen)
        active = citizen.merged_into_id is None and citizen.erased_at is None
        candidates = await citizens.duplicate_candidates(db, citizen) if active else []
        departments = await _departments(db)
        notice_case = request.query_params.get("caso", "")
        context = {
            **_common(request),
            "citizen": citizen,
            "active": active,
            "entries": entries,
            "truncated": truncated,
            "latest_consents": latest,
            "consents": history,
            "candidates": candidates,
            "department_names": {d.id: d.name for d in departments},
            "errors": errors or {},
            "consent_form": consent_form or {"consent_channel": "counter"},
            "merged_notice": _int(request.query_params.get("fundido")),
            "case_notice": notice_case if REFERENCE_RE.fullmatch(notice_case) else "",
        }
        return await render(request, "crm/citizen.html", context, status_code=status)

    @get("/cidadaos/{citizen_id:int}", name="crm:citizen")
    async def show(self, request: Request, db: NamedDependency[AsyncSession], citizen_id: FromPath[int]) -> Response:
        """The citizen 360°; a merged record redirects to the one it was merged into."""
        citizen = await self._citizen(db, citizen_id)
        survivor = await citizens.survivor_of(db, citizen)
        if survivor.id != citizen.id:
            return Redirect(f"{BASE}/cidadaos/{survivor.id}", status_code=302)
        return await self._view(request, db, citizen)

    @post("/cidadaos/{citizen_id:int}/consentimentos", name="crm:citizen-consent")
    async def consent(self, request: Request, db: NamedDependency[AsyncSession], citizen_id: FromPath[int]) -> Response:
        citizen = await self._citizen(db, citizen_id)
        form = await request.form()
        kept = {k: _text(form, k) for k in ("purpose", "granted", "consent_channel", "consent_note")}
        if citizen.merged_into_id is not None or citizen.erased_at is not None:
            errors = {"consent": N_("This record can no longer be changed.")}
            return await self._view(request, db, citizen, errors=errors, consent_form=kept, status=409)
        try:
            await citizens.record_consent(
                db,
                citizen,
                purpose=kept["purpose"],
                granted=kept["granted"] != "0",
                channel=kept["consent_channel"],
                note=kept["consent_note"],
                actor=request.scope["user"],
                ip=client_ip(request),
            )
        except citizens.InvalidInput as exc:
            return await self._view(request, db, citizen, errors=exc.errors, consent_form=kept, status=400)
        await db.commit()
        return Redirect(f"{BASE}/cidadaos/{citizen.id}#consentimentos", status_code=303)

    # ----------------------------------------------------------------------------------------
    # Merging duplicate records (managers)
    # ----------------------------------------------------------------------------------------
    async def _merge_page(
        self,
        request: Request,
        db: AsyncSession,
        duplicate: Citizen,
        survivor: Citizen,
        error: str = "",
        status: int = 200,
    ) -> Response:
        counts = {}
        for citizen in (duplicate, survivor):
            counts[citizen.id] = {
                "cases": await _count(db, Case, citizen.id),
                "interactions": await _count(db, Interaction, citizen.id),
            }
            await log_view(db, request, citizen, "merge")
        await db.commit()
        context = {**_common(request), "duplicate": duplicate, "survivor": survivor, "counts": counts, "error": error}
        return await render(request, "crm/citizen_merge.html", context, status_code=status)

    @get(
        "/cidadaos/{citizen_id:int}/fundir",
        name="crm:citizen-merge-confirm",
        guards=[permission_required("crm.manage")],
    )
    async def merge_confirm(
        self, request: Request, db: NamedDependency[AsyncSession], citizen_id: FromPath[int]
    ) -> Response:
        """Confirm merging this record into the one given by ``em`` (both shown side by side)."""
        duplicate = await self._citizen(db, citizen_id)
        survivor = await self._citizen(db, _int(request.query_params.get("em")) or 0)
        return await self._merge_page(request, db, duplicate, survivor)

    @post("/cidadaos/{citizen_id:int}/fundir", name="crm:citizen-merge", guards=[permission_required("crm.manage")])
    async def merge(self, request: Request, db: NamedDependency[AsyncSession], citizen_id: FromPath[int]) -> Response:
        duplicate = await self._citizen(db, citizen_id)
        form = await request.form()
        survivor = await self._citizen(db, _int(form.get("into")) or 0)
        if str(form.get("confirm", "")).lower() not in TRUE:
            error = N_("Tick the box to confirm that both records are the same person.")
            return await self._merge_page(request, db, duplicate, survivor, error, 400)
        try:
            await citizens.merge_citizens(db, duplicate, survivor, request.scope["user"], client_ip(request))
        except services.CrmError as exc:  # raised before anything is written
            return await self._merge_page(request, db, duplicate, survivor, str(exc), 409)
        await db.commit()
        return Redirect(f"{BASE}/cidadaos/{survivor.id}?fundido={duplicate.id}", status_code=303)

    # ----------------------------------------------------------------------------------------
    # Contacts: the counter screen, their files, opening a case
    # ----------------------------------------------------------------------------------------
    async def _counter(
        self,
        request: Request,
        db: AsyncSession,
        *,
        query: str,
        selected: Citizen | None,
        choices: list[Citizen],
        form: dict[str, Any],
        errors: dict[str, str] | None = None,
        registered: Interaction | None = None,
        status: int = 200,
    ) -> Response:
        if selected is not None:
            await log_view(db, request, selected, "counter")
            await db.commit()
        registered_citizen = (
            await db.get(Citizen, registered.citizen_id) if registered and registered.citizen_id else None
        )
        context = {
            **_common(request),
            "q": query,
            "selected": selected,
            "choices": [c for c in choices if selected is None or c.id != selected.id],
            "form": form,
            "errors": errors or {},
            "registered": registered,
            "registered_citizen": registered_citizen,
            "channels": citizens.STAFF_CHANNELS,
            "topics": services.parse_topics(crm_settings(request)["topics"]),
            "service_choices": await _service_choices(request, db),
            "departments": await _departments(db),
            "max_files": crm_settings(request)["max_attachments"],
        }
        return await render(request, "crm/counter.html", context, block="counter_results", status_code=status)

    @get("/balcao", name="crm:counter")
    async def counter(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        """Find the citizen (a NIF or phone matching one record picks it at once), then type the contact."""
        params = request.query_params
        query = " ".join(params.get("q", "").split())[:200]
        selected = None
        if citizen_id := _int(params.get("cidadao")):
            selected = await db.get(Citizen, citizen_id)
            if selected is not None:
                selected = await citizens.survivor_of(db, selected)
            if selected is None or selected.erased_at is not None:
                raise NotFoundException()
        choices: list[Citizen] = []
        if query and selected is None:
            result = await citizens.search_citizens(db, query, per_page=10)
            selected, choices = result.exact, result.citizens
        channel = params.get("canal", "")
        form = {
            "channel": channel if channel in citizens.STAFF_CHANNELS else "counter",
            "direction": "in",
            "department_id": str(request.scope["user"].department_id or ""),
            **_quick_defaults(query),
        }
        registered = None
        if registered_id := _int(params.get("registado")):
            registered = await db.get(Interaction, registered_id)
        return await self._counter(
            request, db, query=query, selected=selected, choices=choices, form=form, registered=registered
        )

    @post("/balcao", name="crm:counter-save")
    async def counter_save(self, request: Request, db: NamedDependency[AsyncSession]) -> Response:
        """Register the contact for the picked citizen, or for a record quick-created with name and NIF/phone."""
        form = await request.form()
        kept: dict[str, Any] = {k: _text(form, k) for k in (*COUNTER_FIELDS, *QUICK_FIELDS, "citizen_id")}
        query = _text(form, "q")[:200]
        data = citizens.InteractionInput(**{k: kept[k] for k in COUNTER_FIELDS})
        errors = data.validate()
        uploads = _uploads(form)
        cfg = crm_settings(request)
        if len(uploads) > cfg["max_attachments"]:
            errors["files"] = N_("Too many files.")
        citizen: Citizen | None = None
        quick: citizens.CitizenInput | None = None
        if citizen_id := _int(kept["citizen_id"]):
            found = await db.get(Citizen, citizen_id)
            citizen = await citizens.survivor_of(db, found) if found is not None else None
            if citizen is None or citizen.erased_at is not None:
                errors["citizen_id"] = N_("Choose the citizen again: this record no longer exists.")
                citizen = None
        elif kept["citizen_id"] == "new":
            quick = citizens.CitizenInput(name=kept["new_name"], nif=kept["new_nif"], phone=kept["new_phone"])
            errors.update({f"new_{k}": v for k, v in quick.validate().items() if k in ("name", "nif", "phone")})
            if not quick.nif and not quick.phone and "new_nif" not in errors:
                errors["new_nif"] = N_("Give the NIF or the phone number.")
        else:
            errors["citizen_id"] = N_("Choose the citizen or create a new record.")

        async def again(errors: dict[str, str], status: int, choices: list[Citizen] | None = None) -> Response:
            if choices is None:
                choices = (await citizens.search_citizens(db, query, per_page=10)).citizens if query else []
            return await self._counter(
                request, db, query=query, selected=citizen, choices=choices, form=kept, errors=errors, status=status
            )

        if errors:
            return await again(errors, 400)
        user = request.scope["user"]
        if quick is not None and str(form.get("create_anyway", "")).lower() not in TRUE:
            # Only shared identifiers stop a quick creation: names alone are too common at a counter.
            candidates = await citizens.duplicate_candidates(db, quick.probe())
            clashes = [c.citizen for c in candidates if citizens.IDENTIFYING & set(c.reasons)]
            if clashes:
                message = N_("A record with this NIF or phone exists: choose it, or confirm a new record.")
                return await again({"citizen_id": message, "duplicates": "1"}, 409, clashes)
        picked_id = citizen.id if citizen is not None else None
        try:
            if citizen is None and quick is not None:
                citizen = await citizens.create_citizen(db, quick, user, client_ip(request))
            interaction = await citizens.register_interaction(db, citizen, data, user)  # type: ignore[arg-type]
            for upload in uploads:
                await citizens.store_interaction_file(
                    db, request.app.state.suite.storage, interaction, upload, cfg["attachment_max_bytes"]
                )
        except (citizens.InvalidInput, MediaError) as exc:
            await db.rollback()  # expires every loaded row: read the picked citizen again
            citizen = await db.get(Citizen, picked_id) if picked_id else None
            problems = exc.errors if isinstance(exc, citizens.InvalidInput) else {"files": str(exc)}
            return await again(problems, 400)
        await db.commit()
        query_string = urlencode({"registado": interaction.id, "canal": data.channel})
        return Redirect(f"{BASE}/balcao?{query_string}", status_code=303)

    @post("/interacoes/{interaction_id:int}/caso", name="crm:interaction-case")
    async def open_case(
        self, request: Request, db: NamedDependency[AsyncSession], interaction_id: FromPath[int]
    ) -> Response:
        """Open a case from a contact (same channel and citizen); the citizen gets the tracking link by e-mail."""
        interaction = await db.get(Interaction, interaction_id)
        if interaction is None:
            raise NotFoundException()
        form = await request.form()
        cfg = crm_settings(request)
        user = request.scope["user"]
        try:
            case, token = await citizens.open_case_from_interaction(
                db,
                interaction,
                prefix=cfg["reference_prefix"],
                topics=services.parse_topics(cfg["topics"]),
                description=_text(form, "description"),
                actor=user,
                ip=client_ip(request),
            )
        except services.CrmError as exc:  # raised before anything is written
            citizen = await self._citizen(db, interaction.citizen_id or 0)
            return await self._view(
                request, db, citizen, errors={f"interaction-{interaction_id}": str(exc)}, status=409
            )
        link = str(request.base_url).rstrip("/") + tracking_url(case, token)
        await services.notify_citizen(
            db,
            case,
            f"Pedido {case.reference} registado",
            f"Registámos o seu pedido com a referência {case.reference}.\n\n"
            f"Pode acompanhar o pedido, responder e juntar documentos em:\n{link}\n\n"
            "Guarde esta mensagem: o endereço é pessoal e não deve ser partilhado.",
        )
        await db.commit()
        if services.can_see(user, case):
            return Redirect(f"{BASE}/casos/{case.id}", status_code=303)
        return Redirect(f"{BASE}/cidadaos/{interaction.citizen_id}?caso={case.reference}", status_code=303)

    @get("/interacoes/ficheiros/{file_id:int}", name="crm:interaction-file")
    async def interaction_file(
        self, request: Request, db: NamedDependency[AsyncSession], file_id: FromPath[int]
    ) -> Response:
        stored = await db.get(InteractionFile, file_id)
        storage = request.app.state.suite.storage
        if stored is None or not storage.exists(stored.storage_key):
            raise NotFoundException()
        return Stream(
            storage.open(stored.storage_key),
            media_type=stored.content_type,
            headers={
                "Content-Disposition": content_disposition(stored.filename),
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )


def _quick_defaults(query: str) -> dict[str, str]:
    """The quick-create fields filled from what was searched (a NIF, a phone, or a name)."""
    if not query:
        return {}
    if nif_rules.is_valid(query):
        return {"new_nif": query}
    if services.PHONE_RE.fullmatch(query):
        return {"new_phone": query}
    if any(ch.isdigit() for ch in query) or "@" in query:
        return {}
    return {"new_name": query}


async def _count(db: AsyncSession, model: Any, citizen_id: int | None) -> int:
    query = select(func.count()).select_from(model).where(model.citizen_id == citizen_id)
    return int((await db.execute(query)).scalar_one())
