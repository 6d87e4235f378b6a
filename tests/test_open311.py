"""Open311 GeoReport v2 (/open311/v2): a small spec-following client lists services, reads definitions, posts
requests (JSON and XML, form-encoded and multipart), resolves tokens and reads requests back; the spec's errors;
GET filters and defaults; personal data never returned; requests become ordinary cases; `suite crm apikeys`."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from .conftest import login, post_form, run, settings_for

ROOT = "/open311/v2"
REFERENCE = re.compile(r"VM-\d{4}-\d{6}")
ISO_WITH_ZONE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
LIGHTING = "FC-VIA-PUBLICA-E-ILUMINACAO"
SOCIAL = "FC-ACAO-SOCIAL"
OCCURRENCE_FIELDS = [
    "kind|Tipo de ocorrência|choice|required|Buraco;Candeeiro",
    "when|Desde quando|date|optional",
    "count|Quantos|number",
    "extras|Também|multichoice|optional|Lixo;Sinal",
    "photo|Fotografia|file",
]
#: Personal data posted with requests: none of it may come back from a GET.
CITIZEN = {
    "first_name": "Joana",
    "last_name": "Carvalhal",
    "email": "joana.carvalhal@example.pt",
    "phone": "+351 912 345 678",
    "device_id": "device-7f3a",
    "account_id": "conta-4471",
}


# --------------------------------------------------------------------------------------------
# The test client: written from the spec, not from the server's code
# --------------------------------------------------------------------------------------------
class GeoReportError(Exception):
    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{status}: {errors}")
        self.status = status
        self.errors = errors

    @property
    def descriptions(self) -> str:
        return " | ".join(str(e["description"]) for e in self.errors)


#: XML containers whose children are rows (everything else maps to a dict of child elements or a text).
XML_LISTS = {"services", "service_requests", "errors", "attributes", "values", "endpoints", "formats"}


def xml_value(element: ET.Element) -> Any:
    if element.tag in XML_LISTS:
        return [xml_value(child) for child in element]
    if len(element):
        return {child.tag: xml_value(child) for child in element}
    return element.text


class GeoReportClient:
    """GeoReport v2 over an HTTP client: ``{root}/{resource}.{format}`` addresses, JSON or XML parsed into Python
    values (XML values are strings, as XML has no types), and an error list raised as :class:`GeoReportError`."""

    def __init__(self, http: Any, fmt: str = "json", api_key: str | None = None, **common: str) -> None:
        self.http = http
        self.fmt = fmt
        self.api_key = api_key
        self.common = common  # e.g. jurisdiction_id
        self.bodies: list[str] = []  # every body received (for the personal-data checks)

    def url(self, resource: str) -> str:
        return f"{ROOT}/{resource}.{self.fmt}"

    def parse(self, response: Any, root: str) -> Any:
        self.bodies.append(response.text)
        content_type = response.headers["content-type"]
        if self.fmt == "json":
            assert content_type.startswith("application/json"), content_type
            body = response.json()
        else:
            assert content_type.startswith("text/xml") and "charset=utf-8" in content_type, content_type
            assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>'), response.content[:60]
            element = ET.fromstring(response.content)
            if element.tag == "errors":
                body = xml_value(element)
            else:
                assert element.tag == root, (element.tag, root)
                body = xml_value(element)
        if response.status_code >= 400:
            assert isinstance(body, list) and body and all({"code", "description"} <= set(e) for e in body), body
            assert all(int(e["code"]) == response.status_code for e in body), body
            raise GeoReportError(response.status_code, body)
        return body

    def get(self, resource: str, root: str, **params: Any) -> Any:
        return self.parse(self.http.get(self.url(resource), params={**self.common, **params}), root)

    def discovery(self) -> Any:
        return self.get("discovery", "discovery")

    def services(self) -> list[dict[str, Any]]:
        return self.get("services", "services")

    def definition(self, code: str) -> dict[str, Any]:
        return self.get(f"services/{code}", "service_definition")

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        return self.get("requests", "service_requests", **filters)

    def request(self, service_request_id: str) -> dict[str, Any]:
        rows = self.get(f"requests/{service_request_id}", "service_requests")
        assert len(rows) == 1
        return rows[0]

    def token(self, token: str) -> dict[str, Any]:
        rows = self.get(f"tokens/{token}", "service_requests")
        assert len(rows) == 1
        return rows[0]

    def post(
        self, service_code: str | None, attributes: dict[str, Any] | None = None, multipart: bool = False, **params: Any
    ) -> dict[str, Any]:
        """POST requests: ``attribute[CODE]=value``, or ``attribute[CODE][]=v`` repeated for a list."""
        fields: list[tuple[str, str]] = [(k, str(v)) for k, v in {**self.common, **params}.items()]
        if self.api_key is not None:
            fields.append(("api_key", self.api_key))
        if service_code is not None:
            fields.append(("service_code", service_code))
        for code, value in (attributes or {}).items():
            if isinstance(value, list):
                fields += [(f"attribute[{code}][]", v) for v in value]
            else:
                fields.append((f"attribute[{code}]", str(value)))
        if multipart:
            boundary = uuid.uuid4().hex
            body = (
                b"".join(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields
                )
                + f"--{boundary}--\r\n".encode()
            )
            headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        else:
            from urllib.parse import urlencode

            body = urlencode(fields).encode()
            headers = {"content-type": "application/x-www-form-urlencoded"}
        response = self.http.post(self.url("requests"), content=body, headers=headers)
        rows = self.parse(response, "service_requests")
        assert response.status_code in (200, 201)
        assert len(rows) == 1
        return rows[0]


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
def service_row(code: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"o311-{code.lower()}", "type": "service", "title": f"Serviço {code}", "slug": code.lower(),
        "summary": f"Resumo de {code}.", "category": "Espaço Público", "service_code": code, "online": True,
        "channels": ["online"], "processing_days": 5, "tags": ["rua", "passeio"], **fields,
    }  # fmt: skip


def import_services(cli, tmp_path: Path, rows: list[dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "open311-services.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = cli("content", "import", str(path), "--json")
    assert result.exit_code == 0, result.output


def make_settings(tmp_path: Path, database_url: str, extra: str = "") -> Any:
    config = tmp_path / "suite.toml"
    config.write_text(
        '[plugins.crm]\ntopics = ["Via pública e iluminação|OBRAS|5", "Ação social|SOCIAL|10"]\n' + extra,
        encoding="utf-8",
    )
    return settings_for(tmp_path / "var", database_url, SUITE_CONFIG=str(config))


async def _departments(settings: Any) -> None:
    from concelho.suite.db import Database
    from concelho.suite.models import Department

    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            session.add_all(
                [Department(code="OBRAS", name="Obras Municipais"), Department(code="SOCIAL", name="Ação Social")]
            )
    finally:
        await database.dispose()


@pytest.fixture
def o311_settings(tmp_path, database_url):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, database_url)
    run(_departments(settings))
    return settings


@pytest.fixture
def http(o311_settings):  # type: ignore[no-untyped-def]
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    with TestClient(create_app(o311_settings), base_url="http://testserver.local") as test_client:
        yield test_client


def create_key(cli, name: str = "App Vila Serena") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = cli("crm", "apikeys", "create", "--name", name, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def api_key(cli) -> str:  # type: ignore[no-untyped-def]
    return create_key(cli)["key"]


@pytest.fixture
def catalogue(cli, tmp_path):  # type: ignore[no-untyped-def]
    import_services(
        cli,
        tmp_path,
        [
            service_row("OCORR", title="Ocorrência na via pública", request_fields=OCCURRENCE_FIELDS),
            service_row("LIXO-MONOS", title="Recolha de monos", tags=[]),
            service_row("PRES", online=False),
        ],
    )


def occurrence(**overrides: Any) -> dict[str, Any]:
    return {
        "lat": "38.7071",
        "long": "-9.1355",
        "address_string": "Rua Direita, 12, Vila Serena",
        "description": "Buraco fundo junto à passadeira.",
        "media_url": "https://fotos.example.org/buraco.jpg",
        **overrides,
    }


def run_sql(settings: Any, statement: str, **params: Any) -> list[Any]:
    from concelho.suite.db import Database
    from sqlalchemy import text

    async def go() -> list[Any]:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                result = await session.execute(text(statement), params)
                return list(result) if result.returns_rows else []
        finally:
            await database.dispose()

    return run(go())


def normalized(value: Any) -> Any:
    """JSON values as XML carries them (every scalar a string; null and "" both empty)."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "":
        return None
    return str(value)


# --------------------------------------------------------------------------------------------
# Discovery, services, definitions
# --------------------------------------------------------------------------------------------
def test_discovery_points_at_the_v2_endpoint_in_both_formats(http):
    for fmt in ("json", "xml"):
        document = GeoReportClient(http, fmt).discovery()
        (endpoint,) = document["endpoints"]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert endpoint["url"].endswith("/open311/v2") and endpoint["type"] == "production"
        assert set(endpoint["formats"]) == {"text/xml", "application/json"}
        assert ISO_WITH_ZONE.fullmatch(document["changeset"]) and "fale-connosco" in document["contact"]
    assert http.get("/open311/discovery.json").json() == GeoReportClient(http).discovery()


def test_services_are_the_online_catalogue_and_the_topics(http, catalogue):
    as_json = GeoReportClient(http).services()
    by_code = {s["service_code"]: s for s in as_json}
    assert list(by_code) == ["OCORR", "LIXO-MONOS", LIGHTING, SOCIAL]  # catalogue order (titles), then the topics
    assert "PRES" not in by_code  # not requestable online
    assert by_code["OCORR"] == {
        "service_code": "OCORR", "service_name": "Ocorrência na via pública", "description": "Resumo de OCORR.",
        "metadata": True, "type": "realtime", "keywords": "rua, passeio", "group": "Espaço Público",
    }  # fmt: skip
    assert by_code["LIXO-MONOS"]["metadata"] is False and by_code["LIXO-MONOS"]["keywords"] == ""
    assert by_code[LIGHTING]["service_name"] == "Via pública e iluminação"
    assert by_code[LIGHTING]["group"] == "Fale Connosco" and by_code[LIGHTING]["metadata"] is False
    assert all(s["type"] in ("realtime", "batch", "blackbox") for s in as_json)
    as_xml = GeoReportClient(http, "xml").services()
    assert as_xml == normalized(as_json)


def test_a_service_definition_follows_the_portal_request_form(http, catalogue):
    definition = GeoReportClient(http).definition("OCORR")
    assert definition["service_code"] == "OCORR"
    attributes = definition["attributes"]
    assert [a["code"] for a in attributes] == ["kind", "when", "count", "extras"]  # the file field is not offered
    assert [a["order"] for a in attributes] == [1, 2, 3, 4]
    kind, when, count, extras = attributes
    assert kind == {
        "variable": True, "code": "kind", "datatype": "singlevaluelist", "required": True,
        "datatype_description": None, "order": 1, "description": "Tipo de ocorrência",
        "values": [{"key": "Buraco", "name": "Buraco"}, {"key": "Candeeiro", "name": "Candeeiro"}],
    }  # fmt: skip
    assert (when["datatype"], when["required"], when["values"]) == ("datetime", False, [])
    assert "YYYY-MM-DD" in when["datatype_description"]
    assert count["datatype"] == "number" and extras["datatype"] == "multivaluelist"
    assert [v["key"] for v in extras["values"]] == ["Lixo", "Sinal"]
    as_xml = GeoReportClient(http, "xml").definition("OCORR")
    assert as_xml["service_code"] == "OCORR" and as_xml["attributes"] == normalized(attributes)
    assert GeoReportClient(http).definition(LIGHTING) == {"service_code": LIGHTING, "attributes": []}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_unknown_services_and_resources_are_404_error_lists(http, catalogue, fmt):
    client = GeoReportClient(http, fmt)
    for code in ("NADA", "PRES"):
        with pytest.raises(GeoReportError) as caught:
            client.definition(code)
        assert caught.value.status == 404 and code in caught.value.descriptions
    with pytest.raises(GeoReportError) as caught:
        client.request("VM-2000-000001")
    assert caught.value.status == 404
    with pytest.raises(GeoReportError) as caught:
        client.token("no-such-token")
    assert caught.value.status == 404
    with pytest.raises(GeoReportError) as caught:
        GeoReportClient(http, fmt, jurisdiction_id="lisboa.example").services()
    assert caught.value.status == 404 and "jurisdiction_id" in caught.value.descriptions
    assert GeoReportClient(http, fmt, jurisdiction_id="cm-vilaserena.example").services()
    unknown_format = http.get(f"{ROOT}/services/OCORR.csv")
    assert unknown_format.status_code == 404 and unknown_format.json()[0]["code"] == 404


# --------------------------------------------------------------------------------------------
# POST, tokens, reading back
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_with_attributes_then_token_then_read_back(http, catalogue, api_key, fmt):
    client = GeoReportClient(http, fmt, api_key=api_key)
    before = datetime.now(UTC).replace(microsecond=0)
    created = client.post(
        "OCORR",
        {"kind": "Buraco", "when": "2026-11-01T08:30:00Z", "count": "3", "extras": ["Lixo", "Sinal"]},
        **occurrence(),
        **CITIZEN,
    )
    assert REFERENCE.fullmatch(created["service_request_id"]) and isinstance(created["service_request_id"], str)
    assert created["token"] and created["token"] != created["service_request_id"]
    assert created["service_request_id"] in created["service_notice"]
    assert created["account_id"] == "conta-4471"  # the client's own id, echoed by POST only

    resolved = client.token(created["token"])
    assert resolved == {"service_request_id": created["service_request_id"], "token": created["token"]}

    got = client.request(resolved["service_request_id"])
    assert got["service_request_id"] == created["service_request_id"]
    assert (got["status"], got["service_code"], got["service_name"]) == ("open", "OCORR", "Ocorrência na via pública")
    assert got["description"].startswith("Buraco fundo junto à passadeira.")
    for line in ("Tipo de ocorrência: Buraco", "Desde quando: 2026-11-01", "Quantos: 3", "Também: Lixo, Sinal"):
        assert line in got["description"]
    assert (
        got["address"] == "Rua Direita, 12, Vila Serena" and got["media_url"] == "https://fotos.example.org/buraco.jpg"
    )
    assert float(got["lat"]) == 38.7071 and float(got["long"]) == -9.1355
    requested = datetime.fromisoformat(got["requested_datetime"])
    assert ISO_WITH_ZONE.fullmatch(got["requested_datetime"]) and ISO_WITH_ZONE.fullmatch(got["updated_datetime"])
    assert requested.tzinfo is not None and before - timedelta(seconds=2) <= requested <= datetime.now(UTC)
    assert got["expected_datetime"] is None  # catalogue services carry no SLA date
    for field in ("status_notes", "agency_responsible", "address_id", "zipcode", "service_notice"):
        assert field in got
    listed = client.requests()
    assert [r["service_request_id"] for r in listed] == [created["service_request_id"]]
    assert listed[0] == got


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_multipart_post_to_a_topic_with_an_address_only(http, api_key, fmt):
    client = GeoReportClient(http, fmt, api_key=api_key)
    created = client.post(
        LIGHTING, multipart=True, address_string="Largo do Pelourinho", description="Candeeiro <apagado> & partido"
    )
    assert "5" in created["service_notice"]  # the topic's SLA (days)
    got = client.request(created["service_request_id"])
    assert got["service_code"] == LIGHTING and got["service_name"] == "Via pública e iluminação"
    assert got["description"] == "Candeeiro <apagado> & partido"  # escaped in XML, read back intact
    assert got["agency_responsible"] == "Obras Municipais"
    assert ISO_WITH_ZONE.fullmatch(got["expected_datetime"])
    assert got["lat"] is None and got["address"] == "Largo do Pelourinho"
    by_id = client.post(SOCIAL, address_id="PT-1234-567", description="Pedido de apoio")
    read = client.request(by_id["service_request_id"])
    assert read["address_id"] == "PT-1234-567" and read["address"] is None


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_keys_unknown_codes_and_bad_input_give_the_spec_errors(http, catalogue, api_key, fmt, o311_settings):
    def error(client: GeoReportClient, code: str | None, attributes: dict[str, Any] | None = None, **params: Any):  # type: ignore[no-untyped-def]
        with pytest.raises(GeoReportError) as caught:
            client.post(code, attributes, **params)
        return caught.value

    for bad in (None, "", "o311_not-a-real-key-at-all", api_key[:-1], "x" * 500):
        denied = error(GeoReportClient(http, fmt, api_key=bad), "OCORR", {"kind": "Buraco"}, **occurrence())
        assert denied.status == 403 and "api_key" in denied.descriptions

    client = GeoReportClient(http, fmt, api_key=api_key)
    unknown = error(client, "NADA", **occurrence())
    assert unknown.status == 404 and "NADA" in unknown.descriptions
    assert error(client, "PRES", **occurrence()).status == 404
    missing_code = error(client, None, **occurrence())
    assert missing_code.status == 400 and "service_code" in missing_code.descriptions

    nowhere = error(client, LIGHTING, description="Sem local")
    assert nowhere.status == 400 and "location" in nowhere.descriptions.lower()
    half_point = error(client, LIGHTING, lat="38.7", description="Só latitude")
    assert half_point.status == 400 and "lat" in half_point.descriptions
    assert error(client, LIGHTING, lat="95", long="10", description="Fora do mapa").status == 400

    too_long = error(client, LIGHTING, **occurrence(description="x" * 4001))
    assert too_long.status == 400 and "4000" in too_long.descriptions
    assert client.post(LIGHTING, **occurrence(description="y" * 4000))["service_request_id"]  # the limit itself

    attributes = error(
        client, "OCORR", {"when": "ontem", "extras": ["Lixo", "Neve"], "count": "muitos"}, **occurrence()
    )
    assert attributes.status == 400 and len(attributes.errors) == 4
    assert {re.match(r"attribute\[(\w+)\]", e["description"]).group(1) for e in attributes.errors} == {  # type: ignore[union-attr]
        "kind", "when", "extras", "count"
    }  # fmt: skip
    bad_choice = error(client, "OCORR", {"kind": "Outro"}, **occurrence())
    assert bad_choice.status == 400 and "attribute[kind]" in bad_choice.descriptions

    for params in ({"email": "not-an-email"}, {"media_url": "javascript:alert(1)"}, {"phone": "abc"}):
        assert error(client, LIGHTING, **occurrence(**params)).status == 400, params
    wrong_place = GeoReportClient(http, fmt, api_key=api_key, jurisdiction_id="porto.example")
    assert error(wrong_place, LIGHTING, **occurrence()).status == 404

    # Only the one request at the limit was filed.
    assert run_sql(o311_settings, "SELECT count(*) FROM crm_case")[0][0] == 1


def test_broken_bodies_and_control_characters_still_get_spec_answers(http, api_key):
    broken = http.post(
        f"{ROOT}/requests.xml",
        content=b"--x\r\nbroken",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 400 and broken.headers["content-type"] == "text/xml; charset=utf-8"
    assert ET.fromstring(broken.content).find("error/code").text == "400"  # type: ignore[union-attr]
    client = GeoReportClient(http, "xml", api_key=api_key)
    created = client.post(SOCIAL, address_string="Bairro\x01 Novo", description="Apoio\x0b domiciliário")
    got = client.request(created["service_request_id"])  # XML 1.0 cannot carry those characters: left out
    assert (got["address"], got["description"]) == ("Bairro Novo", "Apoio domiciliário")
    assert GeoReportClient(http).request(created["service_request_id"])["description"] == "Apoio\x0b domiciliário"


def test_the_post_needs_no_csrf_token_but_the_portal_forms_still_do(http, api_key, app):
    response = http.post(
        f"{ROOT}/requests.json",
        data={"api_key": api_key, "service_code": LIGHTING, **occurrence()},
    )
    assert response.status_code == 201 and "suite_csrf" not in http.cookies
    assert http.post("/fale-connosco/", data={"description": "x"}).status_code == 403
    exempt = sorted(
        route.path
        for route in app.routes
        for handler in route.route_handlers
        if handler.opt.get("csrf_exempt") and route.path.startswith("/open311")
    )
    assert exempt == ["/open311/v2/requests.json", "/open311/v2/requests.xml"]


def test_posts_are_rate_limited_per_key(tmp_path, database_url, cli):
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    settings = make_settings(tmp_path, database_url, "open311_rate_limit = 2\n")
    first, second = create_key(cli, "App A")["key"], create_key(cli, "App B")["key"]
    with TestClient(create_app(settings), base_url="http://testserver.local") as http:
        client = GeoReportClient(http, api_key=first)
        for _ in range(2):
            client.post(LIGHTING, **occurrence())
        with pytest.raises(GeoReportError) as caught:
            client.post(LIGHTING, **occurrence())
        assert caught.value.status == 429
        assert GeoReportClient(http, "xml", api_key=second).post(LIGHTING, **occurrence())["service_request_id"]


# --------------------------------------------------------------------------------------------
# GET requests: filters and defaults
# --------------------------------------------------------------------------------------------
def test_get_requests_filters_and_defaults(http, catalogue, api_key, o311_settings):
    client = GeoReportClient(http, api_key=api_key)
    old = client.post(LIGHTING, **occurrence(description="Antigo"))["service_request_id"]
    lamp = client.post(LIGHTING, **occurrence(description="Candeeiro"))["service_request_id"]
    hole = client.post("OCORR", {"kind": "Buraco"}, **occurrence(description="Buraco"))["service_request_id"]
    done = client.post(SOCIAL, **occurrence(description="Resolvido"))["service_request_id"]
    long_ago = datetime.now(UTC) - timedelta(days=100)
    run_sql(o311_settings, "UPDATE crm_case SET created_at = :at WHERE reference = :ref", at=long_ago, ref=old)
    run_sql(o311_settings, "UPDATE crm_case SET status = 'closed' WHERE reference = :ref", ref=done)

    def ids(**filters: Any) -> list[str]:
        rows = client.requests(**filters)
        assert rows == normalized_back(GeoReportClient(http, "xml").requests(**filters), rows)
        return [r["service_request_id"] for r in rows]

    assert ids() == [done, hole, lamp]  # the last 90 days, newest first
    assert ids(status="open") == [hole, lamp] and ids(status="closed") == [done]
    assert ids(status="open,closed") == [done, hole, lamp]
    assert ids(service_code=LIGHTING) == [lamp] and ids(service_code=f"OCORR,{SOCIAL}") == [done, hole]
    assert ids(service_code="NADA") == []
    start = (long_ago - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(start_date=start) == [old]  # 90 days from the start date
    end = (long_ago + timedelta(days=1)).isoformat()
    assert ids(end_date=end) == [old]  # 90 days up to the end date
    assert ids(start_date=start, end_date=end, status="open") == [old]
    assert ids(service_request_id=f"{old},{done}", status="open", service_code="NADA") == [done, old]  # others ignored
    for bad in (
        {"start_date": "ontem"},
        {"status": "pending"},
        {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},  # more than 90 days
        {"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-05-01T00:00:00Z"},
    ):
        with pytest.raises(GeoReportError) as caught:
            client.requests(**bad)
        assert caught.value.status == 400, bad


def normalized_back(xml_rows: list[dict[str, Any]], json_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The XML rows, checked equal to the JSON rows as XML carries them, returned as the JSON rows."""
    assert xml_rows == normalized(json_rows)
    return json_rows


def test_get_requests_returns_at_most_1000(http, o311_settings):
    from concelho.plugins.crm.models import Case
    from concelho.suite.db import Database
    from sqlalchemy import insert

    now = datetime.now(UTC)

    async def fill() -> None:
        database = Database(o311_settings.database_url)
        try:
            async with database.session() as session:
                await session.execute(
                    insert(Case),
                    [
                        {"reference": f"VM-2026-9{n:05d}", "token_hash": "0" * 64, "channel": "open311",
                         "topic": "Via pública e iluminação", "status": "new", "description": f"Pedido {n}",
                         "created_at": now - timedelta(minutes=n), "updated_at": now}
                        for n in range(1005)
                    ],
                )  # fmt: skip
        finally:
            await database.dispose()

    run(fill())
    rows = GeoReportClient(http).requests()
    assert len(rows) == 1000 and rows[0]["service_request_id"] == "VM-2026-900000"
    assert rows[-1]["service_request_id"] == "VM-2026-900999"


# --------------------------------------------------------------------------------------------
# Privacy and ordinary cases
# --------------------------------------------------------------------------------------------
def test_personal_data_is_never_returned_by_get(http, catalogue, api_key, make_user):
    poster = GeoReportClient(http, api_key=api_key)
    created = poster.post(LIGHTING, **occurrence(description="Candeeiro apagado há uma semana."), **CITIZEN)
    assert created["account_id"] == CITIZEN["account_id"]  # POST echoes the client's own account id, GET never
    client, xml = GeoReportClient(http), GeoReportClient(http, "xml")
    reference = created["service_request_id"]

    make_user("chefe", ["admin"])
    login(http, "chefe")
    case_id = int(re.search(r'href="/intranet/crm/casos/(\d+)"', http.get("/intranet/crm/casos").text).group(1))  # type: ignore[union-attr]
    reply = "Cara Joana Carvalhal, o candeeiro foi reparado. Contacto: 912 345 678 ou joana.carvalhal@example.pt"
    assert (
        post_form(http, f"/intranet/crm/casos/{case_id}/mensagem", {"body": reply, "kind": "public_reply"}).status_code
        == 303
    )
    http.cookies.clear()

    for reader in (client, xml):
        row = reader.request(reference)
        assert row["status"] == "closed"  # answered
        assert row["status_notes"].startswith("Cara [") and "o candeeiro foi reparado" in row["status_notes"]
        reader.requests()
        reader.requests(service_request_id=reference)
        reader.token(created["token"])
    for body in client.bodies + xml.bodies:
        lowered = body.lower()
        for secret in ("joana", "carvalhal", "912 345 678", "912345678", "device-7f3a", "conta-4471"):
            assert secret not in lowered, (secret, body)
    assert len(client.bodies) == len(xml.bodies) == 4


def test_a_filed_request_is_an_ordinary_case_with_consistent_tracking(
    http, catalogue, api_key, make_user, o311_settings
):
    from .test_crm import _outbox

    client = GeoReportClient(http, api_key=api_key)
    created = client.post(
        LIGHTING, **occurrence(description="Candeeiro apagado na Rua Direita."), **{**CITIZEN, "device_id": "tablet-12"}
    )
    reference = created["service_request_id"]

    # The citizen gets the portal's confirmation with the private tracking link.
    (mail,) = run(_outbox(o311_settings))
    assert mail.to == CITIZEN["email"] and reference in mail.subject
    link = re.search(r"(/fale-connosco/acompanhar/\S+)", mail.body).group(1)  # type: ignore[union-attr]
    tracking = http.get(link)
    assert tracking.status_code == 200 and "Candeeiro apagado na Rua Direita." in tracking.text

    # Staff see it in their list like any case, routed by its topic, with the Open311 details as an internal note.
    make_user("agente", ["admin"])
    login(http, "agente")
    listing = http.get("/intranet/crm/casos")
    assert listing.status_code == 200 and reference in listing.text
    case_id = int(re.search(r'href="/intranet/crm/casos/(\d+)"', listing.text).group(1))  # type: ignore[union-attr]
    detail = http.get(f"/intranet/crm/casos/{case_id}")
    assert "open311" in detail.text and "Joana Carvalhal" in detail.text and CITIZEN["email"] in detail.text
    assert "https://fotos.example.org/buraco.jpg" in detail.text and "tablet-12" in detail.text
    assert "tablet-12" not in tracking.text  # the internal note stays internal
    assert run_sql(o311_settings, "SELECT channel, department_id IS NOT NULL FROM crm_case") == [("open311", True)]

    # Status changes by staff show through Open311; the citizen's reply reopens it.
    assert post_form(http, f"/intranet/crm/casos/{case_id}/estado", {"status": "in_progress"}).status_code == 303
    assert client.request(reference)["status"] == "open"
    answer = "Reparação agendada para amanhã."
    assert (
        post_form(http, f"/intranet/crm/casos/{case_id}/mensagem", {"body": answer, "kind": "public_reply"}).status_code
        == 303
    )
    http.cookies.clear()
    answered = client.request(reference)
    assert (answered["status"], answered["status_notes"]) == ("closed", answer)
    assert answered["updated_datetime"] >= answered["requested_datetime"]
    token = link.split("t=")[1].split("&")[0]
    assert post_form(http, link.split("?")[0], {"t": token, "body": "Continua apagado."}).status_code == 303
    assert client.request(reference)["status"] == "open"
    assert answer in http.get(link).text


def test_portal_cases_are_not_listed_through_open311(http, o311_settings):
    form = {
        "topic": "Via pública e iluminação", "description": "Mensagem privada ao município.", "name": "Rui Pires",
        "email": "rui@example.pt", "location_text": "Rua Nova", "consent": "1",
    }  # fmt: skip
    response = post_form(http, "/fale-connosco/", form)
    assert response.status_code == 303
    reference = REFERENCE.search(response.headers["location"]).group(0)  # type: ignore[union-attr]
    client = GeoReportClient(http)
    assert client.requests() == []
    with pytest.raises(GeoReportError) as caught:
        client.request(reference)
    assert caught.value.status == 404


# --------------------------------------------------------------------------------------------
# suite crm apikeys
# --------------------------------------------------------------------------------------------
def test_cli_api_keys_create_list_revoke(cli, http, o311_settings):
    human = cli("crm", "apikeys", "create", "--name", "FixMyStreet Vila Serena")
    assert human.exit_code == 0, human.output
    shown = re.search(r"\b(o311_\S+)", human.stdout).group(1)  # type: ignore[union-attr]
    assert "not shown again" in human.stdout
    created = create_key(cli, "App Municipal")
    assert created["key"].startswith("o311_") and created["prefix"] == created["key"][:12] and created["active"]

    stored = run_sql(o311_settings, "SELECT key_hash, prefix FROM crm_api_key ORDER BY id")
    assert len(stored) == 2 and all(len(h) == 64 and shown not in h for h, _ in stored)
    import hashlib

    assert stored[1][0] == hashlib.sha256(created["key"].encode()).hexdigest()

    listed = cli("crm", "apikeys", "list", "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ["FixMyStreet Vila Serena", "App Municipal"]
    assert shown not in listed.stdout and created["key"] not in listed.stdout and "key_hash" not in listed.stdout
    table = cli("crm", "apikeys", "list")
    assert "FixMyStreet" in table.stdout and "App Municipal" in table.stdout and created["prefix"] in table.stdout

    GeoReportClient(http, api_key=shown).post(LIGHTING, **occurrence())
    used = json.loads(cli("crm", "apikeys", "list", "--json").stdout)
    assert used[0]["last_used_at"] and used[1]["last_used_at"] is None

    revoked = cli("crm", "apikeys", "revoke", shown[:12], "--json")
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout)["revoked_at"] and not json.loads(revoked.stdout)["active"]
    with pytest.raises(GeoReportError) as caught:
        GeoReportClient(http, "xml", api_key=shown).post(LIGHTING, **occurrence())
    assert caught.value.status == 403
    by_id = cli("crm", "apikeys", "revoke", str(created["id"]))
    assert by_id.exit_code == 0 and "revoked" in by_id.stdout
    assert json.loads(cli("crm", "apikeys", "list", "--active", "--json").stdout) == []

    for args, message in (
        (("revoke", str(created["id"])), "already revoked"),
        (("revoke", "999"), "no API key with id 999"),
        (("revoke", "o311_zzzzzzz"), "no API key with prefix"),
        (("revoke", "abc"), "at least 6 characters"),
        (("create", "--name", "  "), "needs a name"),
        (("create", "--name", "x" * 121), "at most 120"),
    ):
        result = cli("crm", "apikeys", *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
