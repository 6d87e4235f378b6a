"""Demo data of the CRM: agent and manager roles, the front-desk staff's roles, and a year of fictional contacts.

Deterministic (a seeded random generator) and idempotent: nothing is added when demo citizens already exist.
Every person, NIF, e-mail and phone here is invented (NIFs are generated with a valid check digit).
"""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, timedelta

from concelho.suite.models import Department, Role, User, UserRole
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .identity import fold_name
from .models import Case, CaseEvent, Citizen, Consent, Counter, Interaction
from .services import hash_token

#: Roles the CRM needs in a council; ``suite users set-roles`` hands them out.
ROLES = {
    "crm_agent": ("CRM agent", ["intranet.access", "crm.view"]),
    "crm_manager": ("CRM manager", ["intranet.access", "crm.view", "crm.manage"]),
}
#: Demo staff (suite/demo/users.csv) and their CRM role: the multi-service counter triages every case.
STAFF_ROLES = {"bruno.matos": "crm_manager"}
FIRST = ["Maria", "João", "Ana", "José", "Rita", "Pedro", "Inês", "Luís", "Sofia", "Miguel", "Teresa", "Rui"]
LAST = ["Almeida", "Carvalho", "Costa", "Fernandes", "Gomes", "Lopes", "Marques", "Martins", "Pereira", "Rocha"]
STREETS = ["Rua Direita", "Largo do Município", "Avenida da Liberdade", "Rua das Flores", "Travessa do Castelo"]
#: (topic, department code, SLA days, what people write about)
TOPICS = [
    ("Via pública e iluminação", "DOM", 5, "Candeeiro apagado junto ao n.º {n}."),
    ("Ambiente e resíduos", "DAS", 5, "Contentor do lixo por recolher há vários dias junto ao n.º {n}."),
    ("Água e saneamento", "DAS", 3, "Fuga de água na via pública perto do n.º {n}."),
    ("Urbanismo", "DUR", 15, "Pedido de informação sobre o processo de obras n.º {n}."),
    ("Ação social", "DAS2", 10, "Pedido de apoio para a família, contacto n.º {n}."),
]
#: Share of contacts per channel (about half online, as in the council's old system).
CHANNEL_WEIGHTS = {"web": 44, "open311": 6, "counter": 24, "phone": 16, "email": 6, "letter": 3, "fax": 1}
CITIZENS = 40
CONTACTS = 160


def _nif(rng: random.Random) -> str:
    """A fictional personal NIF (starts with 2) with a valid check digit."""
    digits = [2, *(rng.randrange(10) for _ in range(7))]
    total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
    check = 11 - total % 11
    return "".join(map(str, digits)) + str(0 if check >= 10 else check)


async def ensure_roles(session: AsyncSession) -> int:
    """The ``crm_agent`` and ``crm_manager`` roles (created once); returns how many were created."""
    created = 0
    for name, (label, permissions) in ROLES.items():
        if (await session.execute(select(Role.id).where(Role.name == name))).first() is None:
            session.add(Role(name=name, label=label, permissions=permissions))
            created += 1
    await session.flush()
    return created


async def _grant_staff_roles(session: AsyncSession) -> None:
    for username, role_name in STAFF_ROLES.items():
        user_id = (await session.execute(select(User.id).where(User.username == username))).scalar_one_or_none()
        role_id = (await session.execute(select(Role.id).where(Role.name == role_name))).scalar_one()
        if user_id is None:
            continue
        exists = await session.get(UserRole, (user_id, role_id))
        if exists is None:
            session.add(UserRole(user_id=user_id, role_id=role_id))


async def load(session: AsyncSession) -> int:
    """Roles, staff roles, demo citizens with a year of interactions and cases; the number of rows created."""
    created = await ensure_roles(session)
    await _grant_staff_roles(session)
    if (await session.execute(select(func.count()).select_from(Citizen))).scalar_one():
        return created
    rng = random.Random(2026)
    departments = dict((await session.execute(select(Department.code, Department.id))).all())
    staff = [u for (u,) in (await session.execute(select(User.id).order_by(User.id))).all()]
    now = datetime.now(UTC).replace(microsecond=0)
    people: list[Citizen] = []
    for n in range(CITIZENS):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)}"
        since = now - timedelta(days=rng.randrange(300, 700))
        citizen = Citizen(
            name=name,
            name_folded=fold_name(name),
            nif=_nif(rng),
            email=f"{fold_name(name).replace(' ', '.')}.{n}@example.org" if rng.random() < 0.8 else "",
            phone=f"9{rng.randrange(10**7, 10**8)}",
            address=f"{rng.choice(STREETS)}, {rng.randrange(1, 200)}, Vila Serena",
            consent_at=since,
            created_at=since,
            updated_at=since,
        )
        session.add(citizen)
        people.append(citizen)
    await session.flush()
    for citizen in people:
        session.add(
            Consent(citizen_id=citizen.id, purpose="data_processing", channel="web", created_at=citizen.created_at)
        )
    channels, weights = zip(*CHANNEL_WEIGHTS.items(), strict=True)
    year_counts: dict[int, int] = {}
    for _ in range(CONTACTS):
        citizen = rng.choice(people)
        channel = rng.choices(channels, weights)[0]
        topic, code, sla_days, text = rng.choice(TOPICS)
        when = now - timedelta(days=rng.randrange(0, 365), hours=rng.randrange(0, 10), minutes=rng.randrange(60))
        interaction = Interaction(
            citizen_id=citizen.id,
            channel=channel,
            direction="in",
            topic=topic,
            department_id=departments.get(code),
            staff_id=None if channel in ("web", "open311") else rng.choice(staff) if staff else None,
            notes="" if channel in ("web", "open311") else text.format(n=rng.randrange(1, 200)),
            occurred_at=when,
            created_at=when,
        )
        session.add(interaction)
        if channel not in ("web", "open311") and rng.random() < 0.6:
            continue  # most counter/phone contacts are answered on the spot
        year_counts[when.year] = year_counts.get(when.year, 0) + 1
        age = now - when
        answered = age > timedelta(days=2) and rng.random() < 0.85
        closed = answered and age > timedelta(days=20) and rng.random() < 0.8
        answered_at = when + timedelta(hours=rng.randrange(2, 24 * (sla_days + 3))) if answered else None
        case = Case(
            reference=f"VM-{when.year}-{year_counts[when.year]:06d}",
            token_hash=hash_token(secrets.token_urlsafe(24)),
            citizen_id=citizen.id,
            channel=channel,
            topic=topic,
            department_id=departments.get(code),
            status="closed" if closed else "answered" if answered else rng.choice(["new", "assigned", "in_progress"]),
            description=text.format(n=rng.randrange(1, 200)),
            location_text=f"{rng.choice(STREETS)}, Vila Serena",
            sla_due_at=when + timedelta(days=sla_days),
            created_at=when,
            updated_at=answered_at or when,
            first_answered_at=answered_at,
            closed_at=answered_at + timedelta(days=3) if closed and answered_at else None,
        )
        session.add(case)
        await session.flush()
        interaction.case_id = case.id
        if answered_at:
            session.add(
                CaseEvent(
                    case_id=case.id,
                    kind="public_reply",
                    body="Obrigado pelo seu contacto. O assunto foi encaminhado e resolvido pelos serviços.",
                    author="Loja do Munícipe",
                    created_at=answered_at,
                )
            )
    for year, value in year_counts.items():
        counter = await session.get(Counter, year)
        if counter is None:
            session.add(Counter(year=year, value=value))
        else:
            counter.value = max(counter.value, value)
    await session.flush()
    return created + CITIZENS + CONTACTS
