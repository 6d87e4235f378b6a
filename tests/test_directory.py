"""The staff directory: search, the person and department pages, who edits which profile, and the people
of the public org chart (only those who opted in, only the fields they made public)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import login, post_form
from .test_web import check_page
from .test_workspaces import as_user, db_run, sql

BASE = "/intranet/pessoas"
ORG_CHART = "/camara/organograma"
PRIVATE_MOBILE = "+351 912 345 678"
PRIVATE_LOCATION = "Gabinete 3.14, Paços do Concelho"


def build_staff(settings: Any, make_user: Any) -> dict[str, int]:
    """A small council: two departments, four employees (one disabled) and an administrator."""
    ids = {name: make_user(name) for name in ("joao", "helena", "rita", "velho")}
    ids["boss"] = make_user("boss", roles=["admin"], kind="admin")
    add = "INSERT INTO core_department (code, name, parent_id, sort_order) VALUES (:code, :name, :parent, :order)"
    sql(settings, add, code="CM", name="Câmara Municipal", parent=None, order=0)
    cm = sql(settings, "SELECT id FROM core_department WHERE code = 'CM'")[0][0]
    sql(settings, add, code="DOM", name="Divisão de Obras Municipais", parent=cm, order=1)
    dom = sql(settings, "SELECT id FROM core_department WHERE code = 'DOM'")[0][0]
    people = {
        "joao": ("João Conceição", dom, "Engenheiro Civil", "+351 210 000 123"),
        "helena": ("Helena Sá Chefe", dom, "Chefe de Divisão", "+351 210 000 200"),
        "rita": ("Rita Antunes", cm, "Técnica Superior", None),
        "velho": ("Velho Funcionário", dom, "Reformado", None),
    }
    change = "UPDATE core_user SET name = :name, department_id = :dep, job_title = :title, phone = :phone "
    for username, (name, dep, title, phone) in people.items():
        sql(settings, change + "WHERE username = :who", name=name, dep=dep, title=title, phone=phone, who=username)
    sql(settings, "UPDATE core_user SET is_active = :no WHERE username = 'velho'", no=False)
    return ids


def set_profile(settings: Any, user_id: int, **values: Any) -> None:
    async def go(session: Any) -> None:
        from concelho.plugins.directory.models import Profile

        profile = await session.get(Profile, user_id) or Profile(user_id=user_id)
        for key, value in values.items():
            setattr(profile, key, value)
        session.add(profile)
        await session.commit()

    db_run(settings, go)


def profile_row(settings: Any, user_id: int) -> tuple[Any, ...] | None:
    rows = sql(settings, "SELECT location, office_phone, mobile, show_on_portal FROM directory_profile "
                         "WHERE user_id = :id", id=user_id)  # fmt: skip
    return rows[0] if rows else None


def names_in(html: str) -> set[str]:
    return {n for n in ("João Conceição", "Helena Sá Chefe", "Rita Antunes", "Velho Funcionário") if n in html}


def results_of(html: str) -> str:
    """The results of the people page (the user menu names whoever is signed in)."""
    return html[html.index('<div id="results"') :]


@pytest.fixture
def staff(settings, make_user):  # type: ignore[no-untyped-def]
    return build_staff(settings, make_user)


# --------------------------------------------------------------------------------------------
# Access
# --------------------------------------------------------------------------------------------
def test_directory_needs_intranet_access(client, settings, staff, make_user):
    for path in (f"{BASE}/", f"{BASE}/departamentos", f"{BASE}/joao", f"{BASE}/joao/editar"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), path
    # Signed in without intranet.access (no role at all): refused, even for their own profile.
    make_user("outsider")
    sql(settings, "DELETE FROM core_user_role WHERE user_id = (SELECT id FROM core_user WHERE username = 'outsider')")
    as_user(client, "outsider")
    for path in (f"{BASE}/", f"{BASE}/departamentos", f"{BASE}/joao", f"{BASE}/outsider/editar"):
        assert client.get(path).status_code == 403, path
    assert post_form(client, f"{BASE}/outsider/editar", {"location": "x"}).status_code == 403
    assert profile_row(settings, staff["joao"]) is None


# --------------------------------------------------------------------------------------------
# Search and pages
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"João Conceição", "Helena Sá Chefe", "Rita Antunes"}),  # everyone active
        ("joao", {"João Conceição"}),
        ("CONCEICAO", {"João Conceição"}),
        ("conceição joão", {"João Conceição"}),
        ("helena sa", {"Helena Sá Chefe"}),
        ("divisao de obras", {"João Conceição", "Helena Sá Chefe"}),  # department name, no accents
        ("DOM", {"João Conceição", "Helena Sá Chefe"}),  # department code
        ("tecnica", {"Rita Antunes"}),  # job title
        ("engenheiro civil", {"João Conceição"}),
        ("210 000 123", {"João Conceição"}),  # phone, as written
        ("210000123", {"João Conceição"}),  # phone, digits only
        ("+351210000200", {"Helena Sá Chefe"}),
        ("velho", set()),  # disabled accounts are not listed
        ("reformado", set()),
        ("ninguém", set()),
    ],
)
def test_search_ignores_case_and_accents(client, staff, query, expected):
    as_user(client, "rita")
    page = client.get(f"{BASE}/", params={"q": query})
    assert page.status_code == 200
    assert names_in(results_of(page.text)) == expected, query
    assert check_page(page, "people") == []


def test_search_as_you_type_gets_only_the_results(client, staff):
    as_user(client, "rita")
    full = client.get(f"{BASE}/?q=obras")
    assert '<form method="get" action="/intranet/pessoas/"' in full.text  # works without JavaScript
    assert 'hx-get="/intranet/pessoas/"' in full.text and 'id="q"' in full.text
    assert '<label for="q">' in full.text
    assert "2 pessoas encontradas" in full.text
    fragment = client.get(f"{BASE}/?q=obras", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="results"')
    assert "<html" not in fragment.text and "<form" not in fragment.text
    assert names_in(fragment.text) == {"João Conceição", "Helena Sá Chefe"}
    nobody = client.get(f"{BASE}/?q=zzzz", headers={"HX-Request": "true"})
    assert "Ninguém corresponde" in nobody.text


def test_person_page_and_department_tree(client, settings, staff):
    set_profile(settings, staff["joao"], location="Edifício B, piso 2", mobile="+351 960 000 001")
    as_user(client, "rita")
    page = client.get(f"{BASE}/joao")
    assert page.status_code == 200
    assert check_page(page, "person") == []
    for text in ("<h1>João Conceição</h1>", "Engenheiro Civil", "Divisão de Obras Municipais", "joao@example.org",
                 "+351 210 000 123", "+351 960 000 001", "Edifício B, piso 2"):  # fmt: skip
        assert text in page.text, text
    assert f'href="{BASE}/joao/editar"' not in page.text  # rita may not edit joão
    assert client.get(f"{BASE}/JOAO").status_code == 200
    assert client.get(f"{BASE}/velho").status_code == 404  # disabled
    assert client.get(f"{BASE}/nobody").status_code == 404

    tree = client.get(f"{BASE}/departamentos")
    assert tree.status_code == 200
    assert check_page(tree, "departments") == []
    text = tree.text[tree.text.index("<h1>") :]  # the user menu above names whoever is signed in
    assert text.index("Câmara Municipal") < text.index("Rita Antunes") < text.index("Divisão de Obras Municipais")
    assert text.index("Divisão de Obras Municipais") < text.index("Helena Sá Chefe")
    assert text.index("Divisão de Obras Municipais") < text.index("João Conceição")
    assert "Velho Funcionário" not in text
    assert "Sem departamento" in text  # boss and rita's colleagues without a department
    assert text.index("Sem departamento") < text.index(">Boss<")


# --------------------------------------------------------------------------------------------
# Editing
# --------------------------------------------------------------------------------------------
def test_employees_edit_their_own_profile_only(client, settings, staff):
    as_user(client, "joao")
    form = client.get(f"{BASE}/joao/editar")
    assert form.status_code == 200
    assert check_page(form, "edit") == []
    assert 'name="show_on_portal"' not in form.text and 'name="photo_id"' not in form.text  # for admins
    saved = post_form(client, f"{BASE}/joao/editar", {
        "location": "  Edifício   B ", "office_phone": "+351 210 000 999", "mobile": PRIVATE_MOBILE,
        "public_fields": ["name", "job_title", "email"],
        "show_on_portal": "1",  # not theirs to decide: ignored
    })  # fmt: skip
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{BASE}/joao?guardado=1"
    assert profile_row(settings, staff["joao"]) == ("Edifício B", "+351 210 000 999", PRIVATE_MOBILE, False)
    page = client.get(saved.headers["location"])
    assert "Perfil guardado." in page.text and "+351 210 000 999" in page.text
    assert "Não aparece no organograma público." in page.text

    # Someone else's profile: refused, nothing stored.
    assert client.get(f"{BASE}/helena/editar").status_code == 403
    refused = post_form(client, f"{BASE}/helena/editar", {"location": "Cave", "public_fields": ["name"]})
    assert refused.status_code == 403
    assert profile_row(settings, staff["helena"]) is None

    audit = sql(settings, "SELECT actor, target FROM core_audit WHERE action = 'directory.profile_updated'")
    assert audit == [("joao", "joao")]


def test_bad_input_is_refused_with_inline_errors_and_kept(client, settings, staff):
    as_user(client, "joao")
    response = post_form(client, f"{BASE}/joao/editar", {
        "location": "Piso 1", "office_phone": "ligar-me", "mobile": "9" * 41, "public_fields": ["name", "salary"],
    })  # fmt: skip
    assert response.status_code == 400
    assert 'value="ligar-me"' in response.text and 'value="Piso 1"' in response.text
    assert 'aria-invalid="true" aria-describedby="office_phone-error"' in response.text
    assert 'id="mobile-error"' in response.text and 'id="public_fields-error"' in response.text
    assert profile_row(settings, staff["joao"]) is None


def test_administrators_edit_anyone_and_decide_who_is_on_the_portal(client, settings, staff):
    as_user(client, "boss")
    form = client.get(f"{BASE}/helena/editar")
    assert form.status_code == 200 and 'name="show_on_portal"' in form.text
    # On the portal without a public name: refused.
    refused = post_form(client, f"{BASE}/helena/editar", {"show_on_portal": "1", "public_fields": ["email"]})
    assert refused.status_code == 400 and 'id="public_fields-error"' in refused.text
    # A photo must be an image of the media library.
    refused = post_form(client, f"{BASE}/helena/editar", {"public_fields": ["name"], "photo_id": "999"})
    assert refused.status_code == 400 and 'id="photo_id-error"' in refused.text
    chosen = ["name", "job_title", "office_phone", "email"]
    saved = post_form(client, f"{BASE}/helena/editar", {"show_on_portal": "1", "public_fields": chosen,
                                                        "mobile": PRIVATE_MOBILE})  # fmt: skip
    assert saved.status_code == 303
    assert profile_row(settings, staff["helena"]) == ("", "", PRIVATE_MOBILE, True)
    page = client.get(f"{BASE}/helena")
    assert "Aparece no organograma público com estes campos:" in page.text

    # The employee keeps the administrators' decision when saving their own profile.
    as_user(client, "helena")
    ok = post_form(client, f"{BASE}/helena/editar", {"public_fields": ["name", "email"], "mobile": PRIVATE_MOBILE})
    assert ok.status_code == 303
    assert profile_row(settings, staff["helena"])[3] in (True, 1)


# --------------------------------------------------------------------------------------------
# The public org chart
# --------------------------------------------------------------------------------------------
def test_public_org_chart_shows_only_opted_in_people_and_public_fields(client, settings, staff):
    everything = ["name", "job_title", "department", "email", "office_phone", "mobile", "location"]
    set_profile(settings, staff["helena"], show_on_portal=True, mobile=PRIVATE_MOBILE, location=PRIVATE_LOCATION,
                public_fields=["name", "job_title", "office_phone", "email", "department"])  # fmt: skip
    set_profile(settings, staff["joao"], show_on_portal=False, public_fields=everything)  # not chosen
    set_profile(settings, staff["rita"], show_on_portal=True, public_fields=["email", "job_title"])  # name private
    set_profile(settings, staff["velho"], show_on_portal=True, public_fields=everything)  # disabled account

    page = client.get(ORG_CHART)
    assert page.status_code == 200
    assert check_page(page, "org chart") == []
    html = page.text
    assert "Divisão de Obras Municipais" in html  # the pages plugin's tree is still there
    section = html[html.index('class="org-people"') :]
    assert names_in(section) == {"Helena Sá Chefe"}
    for shown in ("Chefe de Divisão", "helena@example.org", "+351 210 000 200"):
        assert shown in section, shown
    assert section.index("Divisão de Obras Municipais") < section.index("Helena Sá Chefe")  # grouped
    for private in (PRIVATE_MOBILE, "912345678", "912 345", PRIVATE_LOCATION, "Gabinete 3.14", "rita@example.org",
                    "joao@example.org", "Engenheiro", "Técnica Superior", "Velho"):  # fmt: skip
        assert private not in html, private
    assert names_in(html) == {"Helena Sá Chefe"}


def test_org_chart_follows_profile_changes_despite_the_page_cache(client, settings, staff):
    assert "Helena Sá Chefe" not in client.get(ORG_CHART).text  # now cached without her
    assert login(client, "boss").status_code == 303
    post_form(client, f"{BASE}/helena/editar", {"show_on_portal": "1", "public_fields": ["name", "mobile"],
                                               "mobile": "+351 960 111 222"})  # fmt: skip
    as_user(client, None)
    html = client.get(ORG_CHART).text
    assert "Helena Sá Chefe" in html and "+351 960 111 222" in html
    assert "Chefe de Divisão" not in html  # job title private
    # Without a public department the person is listed apart from the departments.
    assert "<h3>Helena Sá Chefe</h3>" in html

    as_user(client, "helena")
    post_form(client, f"{BASE}/helena/editar", {"public_fields": ["name"], "mobile": "+351 960 111 222"})
    as_user(client, None)
    html = client.get(ORG_CHART).text
    assert "Helena Sá Chefe" in html and "960 111 222" not in html


def test_the_people_section_is_absent_when_nobody_opted_in(client, staff):
    html = client.get(ORG_CHART).text
    assert 'class="org-people"' not in html
    assert names_in(html) == set()
