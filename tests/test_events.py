"""Events plugin: corpus import, agenda list and filters, month calendar, event page, iCalendar, HTMX, XSS."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar

from .conftest import login, post_form, run, wait_for
from .content_helpers import corpus_rows, import_rows, write_jsonl

DEMO = Path(__file__).resolve().parents[1] / "plugins" / "events" / "demo" / "events.jsonl"
LISBON = ZoneInfo("Europe/Lisbon")
XSS_TITLE = '<script>alert("t")</script> Festa'
XSS_VENUE = "<img src=x onerror=alert(1)>"


def local_noon(days: int) -> datetime:
    """Noon in Lisbon ``days`` from today (so the local date is unambiguous)."""
    today = datetime.now(UTC).astimezone(LISBON).date()
    return datetime.combine(today + timedelta(days=days), datetime.min.time(), tzinfo=LISBON).replace(hour=12)


def event(n: int, days: int, **extra: Any) -> dict[str, Any]:
    start = local_noon(days)
    row = {
        "id": f"t-event-{n}",
        "type": "event",
        "title": f"Evento de teste {n:02d}",
        "summary": f"Resumo do evento {n}.",
        "body": "Descrição **completa**.",
        "category": "concertos",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
        "venue": "Auditório Municipal",
        "address": "Rua Direita, 1, Vila Serena",
        "lat": 39.5,
        "lon": -8.0,
        "price": "Entrada livre",
    }
    row.update(extra)
    return row


def titles_in(html: str) -> list[str]:
    return re.findall(r"Evento de teste \d\d", html)


def json_ld(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert match, "no JSON-LD block"
    return json.loads(match.group(1))


def alternate_links(html: str) -> dict[str, str]:
    return dict(re.findall(r'<link rel="alternate" hreflang="([^"]+)" (href="[^"]*")>', html))


def vevents(body: bytes) -> list[Any]:
    return list(Calendar.from_ical(body).walk("VEVENT"))


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------
def test_corpus_events_import_cleanly_and_keep_their_fields(client, cli, tmp_path):
    rows = corpus_rows("event")
    summary = import_rows(cli, tmp_path, rows)
    assert summary["created"] == len(rows) == 30
    assert summary["by_type"] == {"events.event": 30}
    again = import_rows(cli, tmp_path, rows)
    assert again["created"] == 0 and again["unchanged"] == 30

    first = rows[0]
    page = client.get(first["url"])
    assert page.status_code == 200
    assert first["venue"] in page.text
    data = json_ld(page.text)
    assert data["@type"] == "Event"
    assert datetime.fromisoformat(data["startDate"]) == datetime.fromisoformat(first["start"])
    assert datetime.fromisoformat(data["endDate"]) == datetime.fromisoformat(first["end"])
    assert data["location"]["geo"] == {"@type": "GeoCoordinates", "latitude": first["lat"], "longitude": first["lon"]}


def test_corpus_events_are_past_and_filterable_by_dates(client, cli, tmp_path):
    rows = corpus_rows("event")
    import_rows(cli, tmp_path, rows)
    now = datetime.now(UTC)
    ended = [r for r in rows if datetime.fromisoformat(r["end"]) < now - timedelta(days=1)]
    upcoming_page = client.get("/agenda")
    for row in ended:
        assert row["title"] not in upcoming_page.text

    past = client.get("/agenda?passados=1")
    assert past.status_code == 200
    assert f"Página 1 de {-(-len(ended) // 10)}" in past.text

    # October 2025: every event that overlaps the month, long exhibitions included.
    lo, hi = datetime(2025, 10, 1, tzinfo=LISBON), datetime(2025, 11, 1, tzinfo=LISBON)
    expected = {
        r["title"] for r in rows if datetime.fromisoformat(r["start"]) < hi and datetime.fromisoformat(r["end"]) >= lo
    }
    assert len(expected) >= 4
    page = client.get("/agenda?de=2025-10-01&ate=2025-10-31&passados=1")
    shown = {r["title"] for r in rows if f">{r['title']}</a>" in page.text.replace("&#34;", '"')}
    assert shown == expected

    concerts = client.get("/agenda?passados=1&categoria=concertos")
    for row in rows:
        assert (f">{row['title']}</a>" in concerts.text.replace("&#34;", '"')) == (row["category"] == "concertos")


def test_demo_events_import_cleanly_with_translations(client, cli):
    from concelho.suite.content.service import slugify

    rows = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines()]
    result = cli("content", "import", str(DEMO), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["created"] == len(rows) >= 25
    assert {r["lang"] for r in rows} == {"pt", "en"}
    english = next(r for r in rows if r["lang"] == "en")
    original = next(r for r in rows if r["id"] == english["translation_of"])
    page = client.get(f"/agenda/{slugify(original['title'])}")
    assert page.status_code == 200
    assert f'/agenda/{slugify(english["title"])}?lang=en"' in alternate_links(page.text)["en"]


# --------------------------------------------------------------------------------------------
# List
# --------------------------------------------------------------------------------------------
def test_list_shows_upcoming_events_only_soonest_first(client, cli, tmp_path):
    import_rows(cli, tmp_path, [event(1, 10), event(2, 2), event(3, 5), event(4, -3), event(5, 0)])
    page = client.get("/agenda")
    assert page.status_code == 200
    assert titles_in(page.text) == [
        "Evento de teste 05",
        "Evento de teste 02",
        "Evento de teste 03",
        "Evento de teste 01",
    ]
    assert "<h1>Eventos</h1>" in page.text
    past = client.get("/agenda?passados=1")
    assert titles_in(past.text) == ["Evento de teste 04"]


def test_ongoing_multi_day_event_stays_listed(client, cli, tmp_path):
    start = local_noon(-5)
    import_rows(cli, tmp_path, [event(1, -5, end=(start + timedelta(days=20)).isoformat()), event(2, 1)])
    assert titles_in(client.get("/agenda").text) == ["Evento de teste 01", "Evento de teste 02"]
    assert titles_in(client.get("/agenda?passados=1").text) == []


def test_filters_by_category_and_dates(client, cli, tmp_path):
    import_rows(
        cli,
        tmp_path,
        [event(1, 3, category="teatro"), event(2, 4), event(3, 20, category="teatro"), event(4, 40)],
    )
    assert titles_in(client.get("/agenda?categoria=teatro").text) == ["Evento de teste 01", "Evento de teste 03"]
    day = local_noon(4).date().isoformat()
    assert titles_in(client.get(f"/agenda?de={day}&ate={day}").text) == ["Evento de teste 02"]
    frm, to = local_noon(10).date().isoformat(), local_noon(50).date().isoformat()
    assert titles_in(client.get(f"/agenda?de={frm}&ate={to}").text) == ["Evento de teste 03", "Evento de teste 04"]
    assert titles_in(client.get(f"/agenda?de={frm}&categoria=teatro").text) == ["Evento de teste 03"]
    # An unknown category is ignored; the form keeps the chosen values.
    assert len(titles_in(client.get("/agenda?categoria=nada").text)) == 4
    kept = client.get(f"/agenda?de={frm}&categoria=teatro")
    assert f'value="{frm}"' in kept.text and '<option value="teatro" selected>' in kept.text


def test_bad_dates_keep_the_input_and_explain(client, cli, tmp_path):
    import_rows(cli, tmp_path, [event(1, 3)])
    page = client.get("/agenda?de=2026-13-45")
    assert page.status_code == 200
    assert 'value="2026-13-45"' in page.text and 'aria-invalid="true"' in page.text
    assert 'id="de-error"' in page.text
    assert titles_in(page.text) == ["Evento de teste 01"]  # the bad filter is ignored
    reversed_ = client.get("/agenda?de=2030-02-01&ate=2030-01-01")
    assert 'id="ate-error"' in reversed_.text


def test_pagination(client, cli, tmp_path):
    import_rows(cli, tmp_path, [event(n, n) for n in range(1, 13)])
    first = client.get("/agenda")
    assert titles_in(first.text) == [f"Evento de teste {n:02d}" for n in range(1, 11)]
    assert "Página 1 de 2" in first.text and 'href="/agenda?page=2" rel="next"' in first.text
    second = client.get("/agenda?page=2")
    assert titles_in(second.text) == ["Evento de teste 11", "Evento de teste 12"]
    assert 'href="/agenda" rel="prev"' in second.text
    filtered = client.get("/agenda?categoria=concertos")
    assert "categoria=concertos&amp;page=2" in filtered.text


def test_htmx_request_gets_the_results_fragment_only(client, cli, tmp_path):
    import_rows(cli, tmp_path, [event(1, 3)])
    fragment = client.get("/agenda?categoria=concertos", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<form" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="results"')
    assert titles_in(fragment.text) == ["Evento de teste 01"]
    assert "HX-Request" in fragment.headers["vary"]
    full = client.get("/agenda?categoria=concertos")
    assert "<html" in full.text and 'hx-get="/agenda"' in full.text


def test_english_list_shows_english_events(client, cli, tmp_path):
    pt = event(1, 3)
    en = event(2, 3, id="t-event-1-en", title="Test event in English", lang="en", translation_of="t-event-1")
    import_rows(cli, tmp_path, [pt, en])
    assert "Test event in English" in client.get("/agenda?lang=en").text
    assert "Test event in English" not in client.get("/agenda?lang=pt").text


# --------------------------------------------------------------------------------------------
# Calendar
# --------------------------------------------------------------------------------------------
def calendar_cell(html: str, day: date) -> str:
    for cell in html.split("<td")[1:]:
        if f'datetime="{day.isoformat()}"' in cell:
            return cell.split("</td>")[0]
    raise AssertionError(f"no cell for {day}")


def test_month_calendar_puts_events_on_their_days(client, cli, tmp_path):
    rows = [event(1, 40), event(2, 41, end=(local_noon(41) + timedelta(days=2)).isoformat()), event(3, 43)]
    import_rows(cli, tmp_path, rows)
    day1 = local_noon(40).date()
    month = day1.strftime("%Y-%m")
    page = client.get(f"/agenda/calendario?mes={month}")
    assert page.status_code == 200
    assert page.text.count("<h1>") == 1
    assert "<table" in page.text and '<th scope="col">' in page.text
    cell = calendar_cell(page.text, day1)
    assert "Evento de teste 01" in cell and "Evento de teste 02" not in cell
    assert f'href="/agenda?de={day1.isoformat()}&amp;ate={day1.isoformat()}"' in cell
    for offset in (41, 42, 43):  # the three-day event shows on each of its days
        day = local_noon(offset).date()
        if day.strftime("%Y-%m") == month:
            assert "Evento de teste 02" in calendar_cell(page.text, day)
    prev_month = (day1.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    next_month = (day1.replace(day=28) + timedelta(days=5)).strftime("%Y-%m")
    assert f"/agenda/calendario?mes={prev_month}" in page.text
    assert f"/agenda/calendario?mes={next_month}" in page.text


def test_calendar_with_corpus_events(client, cli, tmp_path):
    rows = corpus_rows("event")
    import_rows(cli, tmp_path, rows)
    page = client.get("/agenda/calendario?mes=2026-03")
    fair = next(r for r in rows if r["start"].startswith("2026-03-08"))
    assert fair["title"] in calendar_cell(page.text, date(2026, 3, 8))
    assert fair["title"] not in calendar_cell(page.text, date(2026, 3, 9))
    assert "março de 2026" in page.text


def test_calendar_bad_month_falls_back_and_says_so(client):
    page = client.get("/agenda/calendario?mes=2026-99")
    assert page.status_code == 200
    assert 'id="mes-error"' in page.text and 'value="2026-99"' in page.text
    fragment = client.get("/agenda/calendario?mes=2027-01", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="calendar"') and "<html" not in fragment.text


# --------------------------------------------------------------------------------------------
# Event page
# --------------------------------------------------------------------------------------------
def test_event_page_has_details_json_ld_breadcrumbs_and_hreflang(client, cli, tmp_path):
    pt = event(1, 3, organizer="Banda Filarmónica", registration_url="https://example.org/inscricao")
    en = event(2, 3, id="t-event-1-en", title="Test event", lang="en", translation_of="t-event-1")
    import_rows(cli, tmp_path, [pt, en])
    page = client.get("/agenda/evento-de-teste-01")
    assert page.status_code == 200
    html = page.text
    assert html.count("<h1>") == 1
    assert "Auditório Municipal" in html and "Rua Direita, 1, Vila Serena" in html and "Entrada livre" in html
    assert "https://www.openstreetmap.org/?mlat=39.5&amp;mlon=-8.0#map=17/39.5/-8.0" in html
    assert 'href="/agenda/evento-de-teste-01.ics"' in html
    assert 'href="https://example.org/inscricao"' in html
    start = local_noon(3)
    assert f'datetime="{start.isoformat()}"' in html and "12:00–14:00" in html
    assert 'class="breadcrumbs"' in html and 'href="/agenda"' in html
    assert alternate_links(html)["en"].endswith('/agenda/test-event?lang=en"')
    assert 'class="page-footer"' in html
    data = json_ld(html)
    assert data["@context"] == "https://schema.org" and data["@type"] == "Event"
    assert datetime.fromisoformat(data["startDate"]) == start
    assert datetime.fromisoformat(data["endDate"]) == start + timedelta(hours=2)
    assert data["eventStatus"] == "https://schema.org/EventScheduled"
    assert data["location"]["@type"] == "Place" and data["location"]["name"] == "Auditório Municipal"
    assert data["location"]["address"]["streetAddress"] == "Rua Direita, 1, Vila Serena"
    assert data["organizer"]["name"] == "Banda Filarmónica"
    english = client.get("/agenda/test-event?lang=en")
    assert english.status_code == 200 and '<html lang="en">' in english.text


def test_unsafe_registration_link_is_refused_by_the_importer(cli, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [event(1, 3, registration_url="javascript:alert(1)")])
    result = cli("content", "import", str(path))
    assert result.exit_code != 0
    assert "registration_url" in result.output


def test_draft_scheduled_and_internal_events_are_not_public(client, cli, tmp_path):
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    import_rows(
        cli,
        tmp_path,
        [
            event(1, 3, status="draft"),
            event(2, 3, publish_at=future),
            event(3, 3, audience="internal"),
            event(4, 3),
        ],
    )
    for n in (1, 2, 3):
        assert client.get(f"/agenda/evento-de-teste-0{n}").status_code == 404
        assert client.get(f"/agenda/evento-de-teste-0{n}.ics").status_code == 404
    assert titles_in(client.get("/agenda").text) == ["Evento de teste 04"]
    assert len(vevents(client.get("/agenda/agenda.ics").content)) == 1
    month = local_noon(3).strftime("%Y-%m")
    assert titles_in(client.get(f"/agenda/calendario?mes={month}").text) == ["Evento de teste 04"]


def test_xss_in_title_and_venue_is_escaped(client, cli, tmp_path):
    import_rows(cli, tmp_path, [event(1, 3, title=XSS_TITLE, slug="festa", venue=XSS_VENUE)])
    month = local_noon(3).strftime("%Y-%m")
    for url in ("/agenda", "/agenda/festa", f"/agenda/calendario?mes={month}", "/"):
        html = client.get(url).text
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url
        assert "&lt;script&gt;alert" in html, url
    data = json_ld(client.get("/agenda/festa").text)
    assert data["name"] == XSS_TITLE and data["location"]["name"] == XSS_VENUE


# --------------------------------------------------------------------------------------------
# iCalendar
# --------------------------------------------------------------------------------------------
def test_ics_feed_has_one_vevent_per_upcoming_event(client, cli, tmp_path):
    en = event(9, 4, id="t-event-9-en", title="English only", lang="en", translation_of="t-event-2")
    import_rows(cli, tmp_path, [event(1, 2), event(2, 4, category="teatro"), event(3, -4), en])
    response = client.get("/agenda/agenda.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    events = vevents(response.content)
    assert [str(e["SUMMARY"]) for e in events] == ["Evento de teste 01", "Evento de teste 02"]
    assert len(vevents(client.get("/agenda/agenda.ics?categoria=teatro").content)) == 1
    assert [str(e["SUMMARY"]) for e in vevents(client.get("/agenda/agenda.ics?lang=en").content)] == ["English only"]
    cal = Calendar.from_ical(response.content)
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Lisbon"]


def test_single_event_ics(client, cli, tmp_path, settings):
    import_rows(cli, tmp_path, [event(1, 3)])
    response = client.get("/agenda/evento-de-teste-01.ics")
    assert response.status_code == 200
    (vevent,) = vevents(response.content)
    start = local_noon(3)
    assert vevent.decoded("DTSTART") == start
    assert vevent.decoded("DTEND") == start + timedelta(hours=2)
    assert vevent["DTSTART"].params.get("TZID") == "Europe/Lisbon"
    root = settings.base_url.rstrip("/")
    assert re.fullmatch(r"events-\d+@[\w.-]+", str(vevent["UID"]))
    assert vevent.decoded("DTSTAMP").tzinfo is not None
    assert str(vevent["LOCATION"]) == "Auditório Municipal, Rua Direita, 1, Vila Serena"
    assert (vevent["GEO"].latitude, vevent["GEO"].longitude) == (39.5, -8.0)
    assert str(vevent["URL"]) == f"{root}/agenda/evento-de-teste-01"
    assert "Resumo do evento 1." in str(vevent["DESCRIPTION"])
    assert client.get("/agenda/nao-existe.ics").status_code == 404


# --------------------------------------------------------------------------------------------
# Home, navigation, schedule upkeep
# --------------------------------------------------------------------------------------------
def test_home_shows_the_next_three_events_and_nav_links_to_the_agenda(client, cli, tmp_path):
    import_rows(cli, tmp_path, [event(n, n) for n in range(1, 6)] + [event(9, -2)])
    home = client.get("/")
    assert "Próximos eventos" in home.text
    assert titles_in(home.text) == ["Evento de teste 01", "Evento de teste 02", "Evento de teste 03"]
    assert '<a href="/agenda">Eventos</a>' in home.text


def test_reimport_with_update_refreshes_the_schedule(client, cli, tmp_path):
    def listed() -> list[str]:
        return titles_in(client.get("/agenda").text)

    import_rows(cli, tmp_path, [event(1, 3), event(2, 5)])
    assert listed() == ["Evento de teste 01", "Evento de teste 02"]
    moved = event(1, 8)
    summary = import_rows(cli, tmp_path, [moved, event(2, 5)], "--update")
    assert summary["updated"] == 1
    # Another process changed the data: this worker's page cache notices within a second.
    assert wait_for(lambda: listed() == ["Evento de teste 02", "Evento de teste 01"]), listed()
    import_rows(cli, tmp_path, [moved, event(2, -10)], "--update")
    assert wait_for(lambda: listed() == ["Evento de teste 01"]), listed()


async def _schedule_rows(settings) -> list[tuple[int, datetime]]:  # type: ignore[no-untyped-def]
    from concelho.plugins.events.models import EventSchedule
    from concelho.suite.db import Database
    from sqlalchemy import select

    database = Database(settings.database_url)
    try:
        async with database.sessionmaker() as session:
            rows = await session.execute(select(EventSchedule.content_id, EventSchedule.starts_at))
            return [(i, s if s.tzinfo else s.replace(tzinfo=UTC)) for i, s in rows]
    finally:
        await database.dispose()


def test_editor_save_updates_the_schedule_through_the_listener(client, make_user, settings):
    make_user("agenda", roles=["publisher"])
    login(client, "agenda")
    start = local_noon(6)
    form = {
        "title": "Concerto do editor",
        "language": "pt",
        "audience": "public",
        "category": "concertos",
        "data.start": start.strftime("%Y-%m-%dT%H:%M"),
        "data.venue": "Praça da República",
    }
    created = post_form(client, "/intranet/content/new?type=events.event", form)
    assert created.status_code == 303, created.text
    item_url = created.headers["location"].split("?")[0]
    rows = run(_schedule_rows(settings))
    assert [s for _, s in rows] == [start]  # written by the content.saved listener, before any agenda page
    assert post_form(client, f"{item_url}/action", {"action": "publish"}).status_code == 303
    assert "Concerto do editor" in client.get("/agenda").text
    later = local_noon(9)
    edited = post_form(client, item_url, {**form, "data.start": later.strftime("%Y-%m-%dT%H:%M")})
    assert edited.status_code == 303
    assert [s for _, s in run(_schedule_rows(settings))] == [later]
