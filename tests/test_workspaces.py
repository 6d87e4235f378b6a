"""Workspaces over HTTP and the CLI: the permission matrix, membership, join requests, announcements, the wiki."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any

from concelho.suite.app import create_app
from concelho.suite.db import Database, sync_url
from litestar.testing import TestClient
from sqlalchemy import create_engine, text

from .conftest import login, post_form, run, settings_for
from .test_web import check_page

BASE = "/intranet/espacos"
ROLES = ("owner", "editor", "member", "viewer")
PEOPLE = {"owner": "olga", "editor": "eddie", "member": "mara", "viewer": "vitor", "outsider": "nuno"}
SPACES = {"open": "Clube de Leitura", "private": "Gabinete Jurídico"}
SLUGS = {"open": "clube-de-leitura", "private": "gabinete-juridico"}


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def db_run(settings: Any, fn: Any) -> Any:
    """``await fn(session)`` on the test database in its own engine; commits."""

    async def go() -> Any:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                return await fn(session)
        finally:
            await database.dispose()

    return run(go())


def sql(settings: Any, query: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(query), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def build_spaces(settings: Any, make_user: Any) -> dict[str, Any]:
    """Two workspaces (open and private) with one member of each role, a wiki page and an announcement each."""
    ids = {role: make_user(name) for role, name in PEOPLE.items()}

    async def setup(session: Any) -> dict[str, Any]:
        from concelho.plugins.workspaces.services import (
            create_workspace,
            post_announcement,
            save_page,
            set_member,
        )
        from concelho.suite.models import User

        users = {role: await session.get(User, uid) for role, uid in ids.items()}
        out: dict[str, Any] = {"users": ids}
        for visibility, name in SPACES.items():
            ws = await create_workspace(session, name=name, owner=users["owner"], visibility=visibility)
            for role in ("editor", "member", "viewer"):
                await set_member(session, ws, users[role], role)
            page = await save_page(session, ws, users["editor"], title="Regras internas", body="Primeira versão.")
            ann = await post_announcement(session, ws, users["owner"], "Reunião de equipa", "Às 10h na sala 2.")
            out[visibility] = {"id": ws.id, "slug": ws.slug, "page": page.data["page"], "announcement": ann.id}
        return out

    return db_run(settings, setup)


def as_user(client: TestClient, username: str | None) -> None:
    client.cookies.clear()
    if username is not None:
        assert login(client, username).status_code == 303


def main_of(html: str) -> str:
    """The page's <main> element (what differs between pages)."""
    return html[html.index("<main") : html.index("</main>")]


def hx(client: TestClient, url: str, data: dict[str, Any]) -> Any:
    return post_form(client, url, data, headers={"HX-Request": "true"})


# --------------------------------------------------------------------------------------------
# The permission matrix: role × visibility × action, with zero leaks
# --------------------------------------------------------------------------------------------
#: action → (method, path template, form data, roles allowed besides owners; None: everyone who may read)
ACTIONS: dict[str, tuple[str, str, dict[str, str], set[str] | None]] = {
    "home": ("GET", "{base}/", {}, None),
    "members": ("GET", "{base}/membros", {}, None),
    "pages": ("GET", "{base}/paginas", {}, None),
    "wiki page": ("GET", "{base}/paginas/{page}", {}, None),
    "history": ("GET", "{base}/paginas/{page}/historico", {}, None),
    "announcement": ("GET", "{base}/avisos/{ann}", {}, None),
    "edit page form": ("GET", "{base}/paginas/{page}/editar", {}, {"editor"}),
    "edit page": (
        "POST",
        "{base}/paginas/{page}/editar",
        {"title": "Regras internas", "body": "Nova {who}."},
        {"editor"},
    ),
    "new page form": ("GET", "{base}/nova-pagina", {}, {"editor"}),
    "new page": ("POST", "{base}/nova-pagina", {"title": "Página de {who}", "body": "Olá."}, {"editor"}),
    "post announcement": ("POST", "{base}/avisos", {"title": "Aviso de {who}", "body": "Texto."}, {"editor"}),
    "comment": ("POST", "{base}/avisos/{ann}/comentarios", {"body": "Comentário de {who}."}, {"editor", "member"}),
    "manage members": ("POST", "{base}/membros/{viewer}/papel", {"role": "viewer"}, set()),
    "add member form": ("POST", "{base}/membros", {"username": "", "role": "member"}, set()),
}


def test_permission_matrix_role_visibility_action(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    viewer_id = spaces["users"]["viewer"]
    failures: list[str] = []
    for who in (*ROLES, "outsider", "anonymous"):
        as_user(client, PEOPLE.get(who))
        for visibility in ("open", "private"):
            ws = spaces[visibility]
            for action, (method, template, data, allowed) in ACTIONS.items():
                url = template.format(
                    base=f"{BASE}/{ws['slug']}", page=ws["page"], ann=ws["announcement"], viewer=viewer_id
                )
                form = {k: v.format(who=who) for k, v in data.items()}
                get = method == "GET"
                response = client.get(url, follow_redirects=False) if get else post_form(client, url, form)
                if who == "anonymous":
                    wanted = 303 if method == "GET" else 401
                elif who == "outsider" and visibility == "private":
                    wanted = 404
                elif allowed is None:
                    wanted = 200
                elif who == "outsider" or (who != "owner" and who not in allowed):
                    wanted = 403
                elif method == "GET":
                    wanted = 200
                else:
                    wanted = 400 if action == "add member form" else 303
                label = f"{who} {visibility} {action} {method} {url}"
                if response.status_code != wanted:
                    failures.append(f"{label}: {response.status_code}, expected {wanted}")
                    continue
                if wanted == 303 and who == "anonymous":
                    assert response.headers["location"].startswith("/login?next=/intranet/espacos/"), label
                if wanted == 404:
                    # Nothing about the workspace leaks: not its name, not its pages.
                    assert SPACES["private"] not in response.text and "Regras internas" not in response.text, label
                if wanted in (200, 400) and response.headers.get("content-type", "").startswith("text/html"):
                    failures.extend(check_page(response, label))
    assert failures == [], "\n".join(failures)


def test_private_workspaces_answer_404_to_outsiders_on_every_url(client, make_user, settings):
    """Every route of the plugin, whatever the method, is a plain 404 for an outsider: the same as no workspace."""
    spaces = build_spaces(settings, make_user)
    ws = spaces["private"]
    request_id = db_run(settings, lambda s: _join_request_id(s, ws["id"], spaces["users"]["outsider"]))
    as_user(client, "nuno")
    base = f"{BASE}/{ws['slug']}"
    ann, page, uid = ws["announcement"], ws["page"], spaces["users"]["member"]
    gets = [
        f"{base}",
        f"{base}/",
        f"{base}/membros",
        f"{base}/paginas",
        f"{base}/nova-pagina",
        f"{base}/paginas/{page}",
        f"{base}/paginas/{page}/editar",
        f"{base}/paginas/{page}/historico",
        f"{base}/avisos/{ann}",
        f"{base}/paginas/nao-existe",
    ]
    posts = [
        f"{base}/membros",
        f"{base}/membros/{uid}/papel",
        f"{base}/membros/{uid}/remover",
        f"{base}/sair",
        f"{base}/pedir",
        f"{base}/pedidos/{request_id}",
        f"{base}/avisos",
        f"{base}/avisos/{ann}/comentarios",
        f"{base}/nova-pagina",
        f"{base}/paginas/{page}/editar",
        f"{base}/paginas/{page}/restaurar/1",
    ]
    nothing = client.get(f"{BASE}/nao-existe-nada").text
    for url in gets:
        response = client.get(url)
        assert response.status_code == 404, url
        assert SPACES["private"] not in response.text, url
        assert main_of(response.text) == main_of(nothing), url
    for url in posts:
        response = post_form(
            client, url, {"role": "owner", "username": "nuno", "body": "x", "title": "x", "decision": "accept"}
        )
        assert response.status_code == 404, url
    # Nothing changed, and the private workspace is not even listed.
    assert sql(
        settings, "SELECT count(*) FROM workspaces_membership WHERE user_id = :u", u=spaces["users"]["outsider"]
    ) == [(0,)]
    assert SPACES["private"] not in client.get(f"{BASE}/").text
    assert SPACES["open"] in client.get(f"{BASE}/").text


async def _join_request_id(session: Any, workspace_id: int, user_id: int) -> int:
    from concelho.plugins.workspaces.models import JoinRequest

    req = JoinRequest(workspace_id=workspace_id, user_id=user_id, message="(planted)")
    session.add(req)
    await session.flush()
    return int(req.id)


def test_removing_a_member_cuts_access_immediately_and_keeps_their_content(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    ws = spaces["private"]
    home = f"{BASE}/{ws['slug']}/"
    member_client = TestClient(client.app, base_url="http://testserver.local")
    with member_client:
        as_user(member_client, "mara")
        said = post_form(
            member_client, f"{BASE}/{ws['slug']}/avisos/{ws['announcement']}/comentarios", {"body": "Eu trato disso."}
        )
        assert said.status_code == 303
        assert member_client.get(home).status_code == 200

        as_user(client, "olga")
        removed = post_form(client, f"{BASE}/{ws['slug']}/membros/{spaces['users']['member']}/remover")
        assert removed.status_code == 303

        # Same session, very next request: gone.
        assert member_client.get(home).status_code == 404
        assert member_client.get(f"{BASE}/{ws['slug']}/paginas/{ws['page']}").status_code == 404
        assert (
            post_form(
                member_client,
                f"{BASE}/{ws['slug']}/avisos/{ws['announcement']}/comentarios",
                {"body": "Ainda cá estou?"},
            ).status_code
            == 404
        )
    # What they wrote stays, and the activity says they left.
    thread = client.get(f"{BASE}/{ws['slug']}/avisos/{ws['announcement']}").text
    assert "Eu trato disso." in thread and "Ainda cá estou?" not in thread
    assert "Mara" in client.get(home).text


def test_owners_manage_roles_with_htmx_and_without(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    ws = spaces["private"]
    base = f"{BASE}/{ws['slug']}"
    viewer = spaces["users"]["viewer"]
    as_user(client, "olga")
    fragment = hx(client, f"{base}/membros/{viewer}/papel", {"role": "editor"})
    assert fragment.status_code == 200
    assert '<section id="members"' in fragment.text and "<html" not in fragment.text
    assert sql(
        settings,
        "SELECT role FROM workspaces_membership WHERE user_id = :u AND workspace_id = :w",
        u=viewer,
        w=ws["id"],
    ) == [("editor",)]
    plain = post_form(client, f"{base}/membros/{viewer}/papel", {"role": "member"})
    assert plain.status_code == 303 and plain.headers["location"] == f"{base}/membros"
    # Adding: an unknown username keeps the input with an inline error.
    bad = post_form(client, f"{base}/membros", {"username": "ninguem", "role": "viewer"})
    assert bad.status_code == 400
    assert 'value="ninguem"' in bad.text and 'aria-invalid="true"' in bad.text
    assert "Não existe nenhum utilizador ativo com este nome de utilizador." in bad.text
    make_user("zeca")
    added = post_form(client, f"{base}/membros", {"username": "zeca", "role": "viewer"})
    assert added.status_code == 303
    assert "Zeca" in client.get(f"{base}/membros").text
    # The last owner can be neither demoted nor removed, nor leave.
    owner = spaces["users"]["owner"]
    demoted = post_form(client, f"{base}/membros/{owner}/papel", {"role": "member"})
    assert demoted.status_code == 409 and "pelo menos um proprietário" in demoted.text
    assert post_form(client, f"{base}/membros/{owner}/remover").status_code == 409
    assert post_form(client, f"{base}/sair").status_code == 409
    assert sql(
        settings, "SELECT role FROM workspaces_membership WHERE user_id = :u AND workspace_id = :w", u=owner, w=ws["id"]
    ) == [("owner",)]
    # A member leaves by themselves.
    as_user(client, "mara")
    left = post_form(client, f"{base}/sair")
    assert left.status_code == 303 and left.headers["location"].startswith(f"{BASE}/?left=")
    assert client.get(f"{base}/").status_code == 404


def test_join_request_flow_on_open_workspaces(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    make_user("rita")
    ws = spaces["open"]
    base = f"{BASE}/{ws['slug']}"
    as_user(client, "nuno")
    page = client.get(f"{base}/")
    assert page.status_code == 200 and "Pedir para aderir" in page.text
    assert 'action="' + base + "/avisos/" not in page.text  # read-only: no forms to write
    asked = post_form(client, f"{base}/pedir", {"message": "Gosto de ler."})
    assert asked.status_code == 303
    assert "Pediu para aderir a este espaço" in client.get(f"{base}/").text
    assert post_form(client, f"{base}/avisos/{ws['announcement']}/comentarios", {"body": "x"}).status_code == 403
    as_user(client, "rita")
    assert post_form(client, f"{base}/pedir", {"message": ""}).status_code == 303
    # Private workspaces take no requests (and do not exist for outsiders).
    assert post_form(client, f"{BASE}/{SLUGS['private']}/pedir", {"message": "x"}).status_code == 404

    as_user(client, "olga")
    members_page = client.get(f"{base}/membros").text
    assert "Gosto de ler." in members_page and "Nuno" in members_page
    requests = dict(
        sql(
            settings,
            "SELECT u.username, r.id FROM workspaces_join_request r "
            "JOIN core_user u ON u.id = r.user_id WHERE r.workspace_id = :w",
            w=ws["id"],
        )
    )
    # Editors cannot answer; owners can.
    as_user(client, "eddie")
    assert post_form(client, f"{base}/pedidos/{requests['nuno']}", {"decision": "accept"}).status_code == 403
    as_user(client, "olga")
    assert post_form(client, f"{base}/pedidos/{requests['nuno']}", {"decision": "accept"}).status_code == 303
    assert post_form(client, f"{base}/pedidos/{requests['rita']}", {"decision": "decline"}).status_code == 303
    assert post_form(client, f"{base}/pedidos/{requests['rita']}", {"decision": "accept"}).status_code == 404
    roles = dict(
        sql(
            settings,
            "SELECT u.username, m.role FROM workspaces_membership m "
            "JOIN core_user u ON u.id = m.user_id WHERE m.workspace_id = :w",
            w=ws["id"],
        )
    )
    assert roles["nuno"] == "member" and "rita" not in roles
    assert sql(settings, "SELECT count(*) FROM workspaces_join_request WHERE workspace_id = :w", w=ws["id"]) == [(0,)]
    as_user(client, "nuno")
    assert (
        post_form(client, f"{base}/avisos/{ws['announcement']}/comentarios", {"body": "Obrigado!"}).status_code == 303
    )


def test_wiki_pages_keep_revisions_and_restore_them(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    ws = spaces["private"]
    base = f"{BASE}/{ws['slug']}"
    as_user(client, "eddie")
    created = post_form(client, f"{base}/nova-pagina", {"title": "Procedimentos", "slug": "", "body": "# Versão 1"})
    assert created.status_code == 303 and created.headers["location"] == f"{base}/paginas/procedimentos"
    page = client.get(f"{base}/paginas/procedimentos")
    assert "<h1>Procedimentos</h1>" in page.text and "<h2>Versão 1</h2>" in page.text  # Markdown, h1 → h2
    for n in (2, 3):
        edited = post_form(
            client, f"{base}/paginas/procedimentos/editar", {"title": "Procedimentos", "body": f"Versão {n}"}
        )
        assert edited.status_code == 303
    assert "Versão 3" in client.get(f"{base}/paginas/procedimentos").text
    history = client.get(f"{base}/paginas/procedimentos/historico")
    assert history.status_code == 200 and check_page(history, "history") == []
    assert len(re.findall(r'name="a" value="\d+"', history.text)) == 3
    diff = client.get(f"{base}/paginas/procedimentos/historico?a=2&b=3").text
    assert "<del>- Versão 2</del>" in diff and "<ins>+ Versão 3</ins>" in diff
    # The same address twice is refused inline, keeping what was typed.
    clash = post_form(client, f"{base}/nova-pagina", {"title": "Outra", "slug": "procedimentos", "body": "Texto meu"})
    assert clash.status_code == 400 and "Texto meu" in clash.text and 'aria-invalid="true"' in clash.text
    empty = post_form(client, f"{base}/nova-pagina", {"title": "", "slug": "", "body": "Sem título"})
    assert empty.status_code == 400 and "Sem título" in empty.text
    # Viewers read the history but may not restore.
    as_user(client, "vitor")
    assert client.get(f"{base}/paginas/procedimentos/historico").status_code == 200
    assert post_form(client, f"{base}/paginas/procedimentos/restaurar/1").status_code == 403
    as_user(client, "olga")
    restored = post_form(client, f"{base}/paginas/procedimentos/restaurar/1")
    assert restored.status_code == 303
    assert "Versão 1" in client.get(f"{base}/paginas/procedimentos").text
    assert post_form(client, f"{base}/paginas/procedimentos/restaurar/99").status_code == 404
    rows = sql(
        settings,
        "SELECT r.number, r.note FROM core_content_revision r JOIN core_content c "
        "ON c.id = r.content_id WHERE c.slug = :s ORDER BY r.number",
        s=f"{ws['id']}-procedimentos",
    )
    assert rows == [(1, "created"), (2, "edited"), (3, "edited"), (4, "restored revision 1")]
    # The page belongs to the workspace in the content store (and stays out of the editorial back office).
    assert sql(
        settings,
        "SELECT audience, workspace_id, status FROM core_content WHERE slug = :s",
        s=f"{ws['id']}-procedimentos",
    ) == [("workspace", ws["id"], "published")]
    # The same page address in another workspace is fine.
    as_user(client, "eddie")
    other = post_form(client, f"{BASE}/{SLUGS['open']}/nova-pagina", {"title": "Procedimentos", "body": "Outro"})
    assert other.status_code == 303 and other.headers["location"] == f"{BASE}/{SLUGS['open']}/paginas/procedimentos"


def test_announcements_comments_and_mentions(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    ws = spaces["private"]
    base = f"{BASE}/{ws['slug']}"
    seen: list[tuple[str, dict[str, Any]]] = []
    events = client.app.state.suite.events
    for name in ("workspaces.mention", "workspaces.comment"):
        events.on(name, partial(lambda event, **payload: seen.append((event, payload)), name))
    as_user(client, "eddie")
    bad = post_form(client, f"{base}/avisos", {"title": "", "body": "Falta o título @mara"})
    assert bad.status_code == 400 and "Falta o título @mara" in bad.text and "Escreva um título." in bad.text
    posted = post_form(client, f"{base}/avisos", {"title": "Prazo", "body": "@mara e @nuno: entreguem até sexta."})
    assert posted.status_code == 303
    ann_url = posted.headers["location"]
    # Only members of a private workspace are told: @nuno (an outsider) is not.
    assert [(e, p["user_ids"]) for e, p in seen] == [("workspaces.mention", [spaces["users"]["member"]])]
    assert seen[0][1]["url"] == ann_url and seen[0][1]["title"] == "Prazo"
    seen.clear()

    as_user(client, "mara")
    fragment = hx(client, f"{ann_url}/comentarios", {"body": "Combinado, @eddie."})
    assert fragment.status_code == 200 and '<section id="comments"' in fragment.text and "<html" not in fragment.text
    assert "Combinado, @eddie." in fragment.text
    # eddie (the author) is mentioned: one mention, no separate reply notice.
    assert [(e, p["user_ids"]) for e, p in seen] == [("workspaces.mention", [spaces["users"]["editor"]])]
    seen.clear()
    as_user(client, "olga")
    plain = post_form(client, f"{ann_url}/comentarios", {"body": "Obrigada a ambos."})
    assert plain.status_code == 303 and "#comment-" in plain.headers["location"]
    assert [(e, sorted(p["user_ids"])) for e, p in seen] == [
        ("workspaces.comment", sorted([spaces["users"]["editor"], spaces["users"]["member"]]))
    ]
    empty = post_form(client, f"{ann_url}/comentarios", {"body": "   "})
    assert empty.status_code == 400 and "Escreva um comentário." in empty.text
    thread = client.get(ann_url).text
    assert thread.count('class="ws-comment-body"') == 2
    # Markup in comments is text, never HTML.
    post_form(client, f"{ann_url}/comentarios", {"body": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in client.get(ann_url).text
    home = client.get(f"{base}/").text
    assert "Prazo" in home and "publicou um aviso" in home and "comentou" in home


def test_creating_workspaces_follows_the_setting(client, make_user, settings, tmp_path, database_url):
    make_user("ana")
    make_user("boss", roles=["admin", "employee"])
    as_user(client, "ana")
    assert client.get(f"{BASE}/novo").status_code == 403
    assert post_form(client, f"{BASE}/novo", {"name": "Meu", "visibility": "open"}).status_code == 403
    assert f'href="{BASE}/novo"' not in client.get(f"{BASE}/").text

    as_user(client, "boss")
    form = client.get(f"{BASE}/novo")
    assert form.status_code == 200 and check_page(form, "new") == []
    bad = post_form(client, f"{BASE}/novo", {"name": "", "description": "Para a equipa", "visibility": "open"})
    assert bad.status_code == 400 and "Para a equipa" in bad.text and "Escreva um nome." in bad.text
    made = post_form(client, f"{BASE}/novo", {"name": "Obras 2027", "description": "", "visibility": "private"})
    assert made.status_code == 303 and made.headers["location"] == f"{BASE}/obras-2027/"
    again = post_form(client, f"{BASE}/novo", {"name": "obras 2027", "description": "", "visibility": "private"})
    assert again.status_code == 400 and 'value="obras 2027"' in again.text
    reserved = post_form(client, f"{BASE}/novo", {"name": "Novo", "visibility": "open"})
    assert reserved.status_code == 400
    assert sql(
        settings,
        "SELECT w.visibility, m.role, u.username FROM workspaces_workspace w JOIN workspaces_membership"
        " m ON m.workspace_id = w.id JOIN core_user u ON u.id = m.user_id",
    ) == [("private", "owner", "boss")]

    config = tmp_path / "suite.toml"
    config.write_text("[plugins.workspaces]\nemployees_can_create = true\n", encoding="utf-8")
    app = create_app(settings_for(tmp_path / "cfg", database_url, SUITE_CONFIG=str(config)))
    with TestClient(app, base_url="http://testserver.local") as other:
        as_user(other, "ana")
        assert f'href="{BASE}/novo"' in other.get(f"{BASE}/").text
        created = post_form(other, f"{BASE}/novo", {"name": "Equipa da Ana", "visibility": "open"})
        assert created.status_code == 303
        assert "Equipa da Ana" in other.get(f"{BASE}/").text


def test_workspace_home_has_the_sidebar_slot_and_is_csp_safe(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    as_user(client, "olga")
    problems = []
    for visibility in ("open", "private"):
        ws = spaces[visibility]
        for path in (
            "/",
            "/membros",
            "/paginas",
            f"/paginas/{ws['page']}",
            f"/avisos/{ws['announcement']}",
            "/nova-pagina",
            f"/paginas/{ws['page']}/editar",
            f"/paginas/{ws['page']}/historico",
        ):
            problems += check_page(client.get(f"{BASE}/{ws['slug']}{path}"), path)
            problems += check_page(client.get(f"{BASE}/{ws['slug']}{path}?lang=en"), path + " en")
    problems += check_page(client.get(f"{BASE}/"), "index")
    assert problems == []
    home = client.get(f"{BASE}/{SLUGS['private']}/?lang=pt").text
    for label in ("Membros", "Páginas", "Avisos", "Atividade", "Regras internas", "Reunião de equipa"):
        assert label in home
    if "documents" in client.app.state.suite.registry:  # the documents plugin fills the sidebar slot
        assert "<!--suite-slot:" not in home and "workspace-documents" in home


# --------------------------------------------------------------------------------------------
# The CLI
# --------------------------------------------------------------------------------------------
def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def one_error(result: Any, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], result.output


def test_cli_create_list_add_and_remove_members(cli, make_user, settings):
    make_user("olga")
    make_user("mara")
    created = json.loads(
        ok(
            cli(
                "workspaces",
                "create",
                "Proteção Civil",
                "--owner",
                "olga",
                "--open",
                "--description",
                "Planos",
                "--json",
            )
        ).stdout
    )
    assert created == {
        "id": created["id"],
        "slug": "protecao-civil",
        "name": "Proteção Civil",
        "visibility": "open",
        "owner": "olga",
    }
    one_error(cli("workspaces", "create", "proteção civil", "--json"), "already exists")
    one_error(cli("workspaces", "create", "Novo"), "reserved")
    one_error(cli("workspaces", "create", "X", "--owner", "ninguem"), "no user named 'ninguem'")

    added = json.loads(
        ok(cli("workspaces", "add-member", "protecao-civil", "mara", "--role", "editor", "--json")).stdout
    )
    assert added == {"workspace": "protecao-civil", "username": "mara", "role": "editor"}
    one_error(cli("workspaces", "add-member", "protecao-civil", "mara", "--role", "chefe"), "role must be one of")
    one_error(cli("workspaces", "add-member", "nada", "mara"), "no workspace named 'nada'")
    listed = json.loads(ok(cli("workspaces", "list", "--json")).stdout)
    assert listed == [{"slug": "protecao-civil", "name": "Proteção Civil", "visibility": "open", "members": 2}]
    assert "Proteção Civil" in ok(cli("workspaces", "list")).stdout

    removed = json.loads(ok(cli("workspaces", "remove-member", "Proteção Civil", "mara", "--json")).stdout)
    assert removed == {"workspace": "Proteção Civil", "username": "mara", "removed": True}
    one_error(cli("workspaces", "remove-member", "protecao-civil", "mara"), "is not a member")
    one_error(cli("workspaces", "remove-member", "protecao-civil", "olga"), "at least one owner")
    assert json.loads(ok(cli("workspaces", "list", "--json")).stdout)[0]["members"] == 1


def test_anonymous_posts_change_nothing(client, make_user, settings):
    spaces = build_spaces(settings, make_user)
    ws = spaces["open"]
    before = sql(settings, "SELECT count(*) FROM workspaces_comment")
    response = post_form(client, f"{BASE}/{ws['slug']}/avisos/{ws['announcement']}/comentarios", {"body": "anon"})
    assert response.status_code == 401
    assert sql(settings, "SELECT count(*) FROM workspaces_comment") == before
