"""Content store: editor workflow, revisions, preview, permissions, importer, cache, feeds, sitemap, XSS."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest

from .conftest import login, post_form
from .content_helpers import corpus_rows, write_jsonl

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def new_article(client, **fields):  # type: ignore[no-untyped-def]
    data = {"title": "Obras na Rua Direita", "body": "Texto **forte**.", "language": "pt", "audience": "public"}
    data.update(fields)
    return post_form(client, "/intranet/content/new?type=news.article", data)


@pytest.fixture
def editor(client, make_user):  # type: ignore[no-untyped-def]
    make_user("editora", roles=["publisher"])
    login(client, "editora")
    return client


def test_editor_creates_publishes_and_the_item_appears_on_the_portal_and_feed(editor):
    created = new_article(editor, summary="Resumo da notícia", category="obras")
    assert created.status_code == 303
    item_url = created.headers["location"].split("?")[0]
    assert editor.get("/noticias/obras-na-rua-direita").status_code == 404  # still a draft
    assert post_form(editor, f"{item_url}/action", {"action": "publish"}).status_code == 303
    page = editor.get("/noticias/obras-na-rua-direita")
    assert page.status_code == 200
    assert "<strong>forte</strong>" in page.text
    feed = feedparser.parse(editor.get("/noticias/feed.rss").content)
    assert not feed.bozo
    assert feed.entries[0].title == "Obras na Rua Direita"
    atom = feedparser.parse(editor.get("/noticias/feed.atom?categoria=obras").content)
    assert not atom.bozo and [e.title for e in atom.entries] == ["Obras na Rua Direita"]


def test_invalid_input_rerenders_with_messages_and_keeps_what_was_typed(editor):
    response = new_article(editor, title="", body="O meu texto longo", slug="Not A Slug!", category="inexistente")
    assert response.status_code == 400
    assert "Write a title." in response.text or "Escreva um título" in response.text
    assert "O meu texto longo" in response.text
    assert 'value="Not A Slug!"' in response.text
    assert 'aria-invalid="true"' in response.text


def test_every_save_keeps_a_revision_with_diff_and_restore(editor):
    url = new_article(editor).headers["location"].split("?")[0]
    assert post_form(editor, url, {"title": "Obras na Rua Direita", "body": "Segunda versão", "language": "pt",
                                   "audience": "public"}).status_code == 303  # fmt: skip
    history = editor.get(f"{url}/history?a=1&b=2")
    assert history.status_code == 200
    assert "Segunda versão" in history.text and "<del>" in history.text and "<ins>" in history.text
    assert post_form(editor, f"{url}/restore/1").status_code == 303
    restored = editor.get(url)
    assert "Texto **forte**." in restored.text
    assert len(re.findall(r'name="a" value="\d+"', editor.get(f"{url}/history").text)) == 3


def test_live_preview_sanitises_markdown(editor):
    response = post_form(
        editor, "/intranet/content/preview", {"body": f"# Título\n\n{XSS}\n\n[x](javascript:alert(1))"}
    )
    assert response.status_code == 200
    assert "<h2>Título</h2>" in response.text
    assert "<script" not in response.text and "<img" not in response.text
    assert 'href="javascript' not in response.text
    assert "&lt;script&gt;" in response.text  # shown as text, inert


def test_editor_without_publish_permission_cannot_publish(client, make_user):
    make_user("redator", roles=["editor"])
    login(client, "redator")
    url = new_article(client).headers["location"].split("?")[0]
    assert post_form(client, f"{url}/action", {"action": "submit"}).status_code == 303
    assert post_form(client, f"{url}/action", {"action": "publish"}).status_code == 403


def test_employee_without_content_edit_gets_403_on_the_editor(client, make_user):
    make_user("funcionario")
    login(client, "funcionario")
    assert client.get("/intranet/content/").status_code == 403
    assert post_form(client, "/intranet/content/new?type=news.article", {"title": "x"}).status_code == 403


def test_scheduled_and_expired_items_are_hidden(editor):
    future = new_article(editor, title="Futura", publish_at="2099-01-01T10:00").headers["location"].split("?")[0]
    post_form(editor, f"{future}/action", {"action": "publish"})
    past = new_article(editor, title="Expirada", publish_at="2020-01-01T10:00", unpublish_at="2020-02-01T10:00")
    past_url = past.headers["location"].split("?")[0]
    post_form(editor, f"{past_url}/action", {"action": "publish"})
    assert editor.get("/noticias/futura").status_code == 404
    assert editor.get("/noticias/expirada").status_code == 404
    assert "Futura" not in editor.get("/noticias").text


def test_bulk_publish(editor):
    ids = [new_article(editor, title=f"Nota {n}").headers["location"].split("?")[0].rsplit("/", 1)[1] for n in range(3)]
    response = editor.post(
        "/intranet/content/bulk",
        data={"action": "publish", "ids": ids, "_csrf_token": editor.cookies.get("suite_csrf")},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "done=3" in response.headers["location"]
    assert editor.get("/noticias/nota-2").status_code == 200


def test_xss_in_every_field_renders_inert(editor):
    url = new_article(editor, title=XSS, summary=XSS, body=XSS, tags=XSS, slug="xss").headers["location"]
    post_form(editor, f"{url.split('?')[0]}/action", {"action": "publish"})
    for page in ("/noticias/xss", "/noticias", "/", url):
        html = editor.get(page).text
        assert "<script>alert" not in html, page
        assert "<img src=x onerror" not in html, page
    assert "&lt;script&gt;" in editor.get("/noticias/xss").text


def test_import_corpus_news_is_idempotent(cli, tmp_path, client):
    path = write_jsonl(tmp_path / "news.jsonl", corpus_rows("news"))
    first = cli("content", "import", str(path), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["created"] == 50
    second = cli("content", "import", str(path), "--json")
    assert json.loads(second.stdout) | {} == {**json.loads(second.stdout), "created": 0, "updated": 0, "unchanged": 50}
    updated = cli("content", "import", str(path), "--update", "--json")
    assert json.loads(updated.stdout)["updated"] == 0
    page = client.get("/noticias?page=5")
    assert page.status_code == 200 and page.text.count("<article") == 10


def test_import_with_one_bad_row_imports_nothing_and_names_the_row(cli, tmp_path):
    rows = corpus_rows("news")[:5]
    rows[3] = {**rows[3], "category": "não existe"}
    result = cli("content", "import", str(write_jsonl(tmp_path / "bad.jsonl", rows)))
    assert result.exit_code == 1
    assert "line 4" in result.output and "nothing was imported" in result.output
    listing = cli("content", "export", "--type", "news.article")
    assert listing.stdout.strip() == ""


def test_import_update_changes_only_what_differs(cli, tmp_path, client):
    rows = corpus_rows("news")[:3]
    path = write_jsonl(tmp_path / "n.jsonl", rows)
    assert cli("content", "import", str(path)).exit_code == 0
    rows[1] = {**rows[1], "title": "Título corrigido"}
    write_jsonl(path, rows)
    kept = json.loads(cli("content", "import", str(path), "--json").stdout)
    assert kept["updated"] == 0 and kept["unchanged"] == 3
    changed = json.loads(cli("content", "import", str(path), "--update", "--json").stdout)
    assert changed["updated"] == 1 and changed["unchanged"] == 2
    assert "Título corrigido" in client.get("/noticias").text


def test_markdown_folder_import(cli, tmp_path):
    folder = tmp_path / "md"
    folder.mkdir()
    (folder / "aviso.md").write_text(
        "---\ntype: news\ntitle: Aviso à população\ncategory: obras\ntags: [rua, trânsito]\n---\n# Corpo\n\nTexto.\n",
        encoding="utf-8",
    )
    (folder / "sem-front-matter.md").write_text("texto", encoding="utf-8")
    bad = cli("content", "import", str(folder))
    assert bad.exit_code == 1 and "sem-front-matter.md" in bad.output
    (folder / "sem-front-matter.md").unlink()
    ok = cli("content", "import", str(folder), "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["created"] == 1


def test_export_round_trips(cli, tmp_path):
    path = write_jsonl(tmp_path / "n.jsonl", corpus_rows("news")[:4])
    cli("content", "import", str(path))
    out = tmp_path / "out.jsonl"
    assert cli("content", "export", "-o", str(out)).exit_code == 0
    again = cli("content", "import", str(out), "--json")
    assert json.loads(again.stdout)["unchanged"] == 4


def test_anonymous_pages_are_cached_with_etag_and_invalidated_by_edits(editor, app):
    url = new_article(editor, title="Cache").headers["location"].split("?")[0]
    post_form(editor, f"{url}/action", {"action": "publish"})
    from litestar.testing import TestClient

    with TestClient(app, base_url="http://testserver.local") as anon:
        first = anon.get("/noticias/cache")
        assert first.status_code == 200 and "ETag" in first.headers and "Last-Modified" in first.headers
        again = anon.get("/noticias/cache", headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304
        token = anon.cookies.get("suite_csrf")
        assert f'value="{token}"' in anon.get("/noticias/cache").text  # each visitor gets their own CSRF token
        post_form(editor, url, {"title": "Cache renovada", "slug": "cache", "body": "x", "language": "pt",
                                "audience": "public"})  # fmt: skip
        fresh = anon.get("/noticias/cache", headers={"If-None-Match": first.headers["ETag"]})
        assert fresh.status_code == 200 and "Cache renovada" in fresh.text


def test_sitemap_and_robots(editor):
    url = new_article(editor, title="No mapa").headers["location"].split("?")[0]
    post_form(editor, f"{url}/action", {"action": "publish"})
    sitemap = editor.get("/sitemap.xml")
    assert sitemap.status_code == 200
    import xmlschema

    schema = xmlschema.XMLSchema(Path(__file__).parent / "vendor" / "sitemap.xsd")
    schema.validate(sitemap.text)
    root = ElementTree.fromstring(sitemap.content)
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locs = [el.text for el in root.findall("s:url/s:loc", ns)]
    assert any(loc.endswith("/noticias/no-mapa") for loc in locs)
    assert len(locs) == len(set(locs))
    robots = editor.get("/robots.txt").text
    assert "Sitemap:" in robots and "Disallow: /intranet/" in robots


def test_article_page_has_seo_metadata_and_json_ld(editor):
    url = new_article(editor, title="Metadados", summary="Resumo").headers["location"].split("?")[0]
    post_form(editor, f"{url}/action", {"action": "publish"})
    html = editor.get("/noticias/metadados").text
    assert '<link rel="canonical" href="http://127.0.0.1:8000/noticias/metadados">' in html
    assert 'hreflang="pt-PT"' in html and 'property="og:title"' in html
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert block is not None
    data = json.loads(block.group(1))
    assert data["@type"] == "NewsArticle" and data["headline"] == "Metadados"
    assert html.count("<h1") == 1
    assert 'class="breadcrumbs"' in html


def test_translation_links_pages_with_hreflang(editor):
    url = new_article(editor, title="Festa da vila").headers["location"].split("?")[0]
    item_id = url.rsplit("/", 1)[1]
    post_form(editor, f"{url}/action", {"action": "publish"})
    en = post_form(editor, "/intranet/content/new?type=news.article",
                   {"title": "Town festival", "body": "x", "language": "en", "audience": "public",
                    "translation_of": item_id})  # fmt: skip
    post_form(editor, f"{en.headers['location'].split('?')[0]}/action", {"action": "publish"})
    html = editor.get("/noticias/festa-da-vila").text
    assert 'hreflang="en" href="http://127.0.0.1:8000/noticias/town-festival?lang=en"' in html
    english = editor.get("/noticias/town-festival?lang=en").text
    assert '<html lang="en">' in english


def test_feedback_is_stored_per_page(client):
    response = post_form(client, "/feedback", {"path": "/accessibility", "useful": "yes"})
    assert response.status_code == 303 and response.headers["location"].startswith("/accessibility?feedback=thanks")
    thanks = client.post(
        "/feedback", data={"path": "/accessibility", "useful": "no", "_csrf_token": client.cookies.get("suite_csrf")},
        headers={"hx-request": "true"},
    )  # fmt: skip
    assert thanks.status_code == 200 and "<html" not in thanks.text


def test_delete_needs_publish_permission_and_removes_the_page(editor, client, make_user):
    url = new_article(editor, title="Para apagar").headers["location"].split("?")[0]
    post_form(editor, f"{url}/action", {"action": "publish"})
    assert editor.get("/noticias/para-apagar").status_code == 200
    response = post_form(editor, f"{url}/delete")
    assert response.status_code == 303
    assert editor.get("/noticias/para-apagar").status_code == 404
    assert editor.get(url).status_code == 404


def test_publish_scheduled_archives_expired_items(editor, cli):
    url = new_article(editor, title="Com prazo", unpublish_at="2020-01-01T00:00").headers["location"].split("?")[0]
    post_form(editor, f"{url}/action", {"action": "publish"})
    result = cli("content", "publish-scheduled", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["archived"] == 1
    assert "archived" in editor.get(url).text


def test_items_tagged_destaque_are_highlighted_on_the_home_page(editor):
    url = new_article(editor, title="Em destaque", tags="obras, destaque").headers["location"].split("?")[0]
    post_form(editor, f"{url}/action", {"action": "publish"})
    home = editor.get("/").text
    assert 'id="highlights-title"' in home and 'href="/noticias/em-destaque"' in home


def test_cache_hits_are_served_as_html(editor, app):
    url = new_article(editor, title="Tipo").headers["location"].split("?")[0]
    post_form(editor, f"{url}/action", {"action": "publish"})
    from litestar.testing import TestClient

    with TestClient(app, base_url="http://testserver.local") as anon:
        first = anon.get("/noticias/tipo")
        hit = anon.get("/noticias/tipo")
        assert first.headers["content-type"] == hit.headers["content-type"] == "text/html; charset=utf-8"
        assert hit.text == first.text


def test_language_switch_on_an_item_goes_to_its_translation(editor):
    url = new_article(editor, title="Feira do livro").headers["location"].split("?")[0]
    post_form(editor, f"{url}/action", {"action": "publish"})
    en = post_form(editor, "/intranet/content/new?type=news.article",
                   {"title": "Book fair", "body": "x", "language": "en", "audience": "public",
                    "translation_of": url.rsplit("/", 1)[1]})  # fmt: skip
    post_form(editor, f"{en.headers['location'].split('?')[0]}/action", {"action": "publish"})
    html = editor.get("/noticias/feira-do-livro").text
    assert 'href="/noticias/book-fair?lang=en"' in html


def test_edit_form_shows_type_fields_by_their_kind(editor, cli, tmp_path):
    rows = [
        {"id": "ev-1", "type": "event", "title": "Concerto", "body": "x", "category": "concertos",
         "start": "2026-12-05T21:30:00+00:00", "venue": "Cineteatro"},
        {"id": "sv-1", "type": "service", "title": "Certidão", "body": "x", "service_code": "CERT-X",
         "channels": ["online", "presencial"], "required_documents": ["Cartão de Cidadão", "Planta"]},
    ]  # fmt: skip
    assert cli("content", "import", str(write_jsonl(tmp_path / "t.jsonl", rows))).exit_code == 0
    listing = editor.get("/intranet/content/?q=concerto").text
    event_url = re.search(r'href="(/intranet/content/\d+)">Concerto<', listing).group(1)
    assert 'value="2026-12-05T21:30"' in editor.get(event_url).text  # Lisbon time, datetime-local format
    listing = editor.get("/intranet/content/?q=certid").text
    service_url = re.search(r'href="(/intranet/content/\d+)">Certidão<', listing).group(1)
    form = editor.get(service_url).text
    assert re.search(r'value="online" checked', form) and re.search(r'value="presencial" checked', form)
    assert "Cartão de Cidadão\nPlanta</textarea>" in form
