"""Media library: uploads sniffed and limited, image renditions and alt text, safe downloads, nothing left behind."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from .conftest import login, settings_for


def png_bytes(size: tuple[int, int] = (1200, 800)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 90, 160)).save(buf, "PNG")
    return buf.getvalue()


def stored_files(settings) -> list[Path]:  # type: ignore[no-untyped-def]
    root = Path(settings.storage_dir)
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")] if root.exists() else []


@pytest.fixture
def editor(client, make_user):  # type: ignore[no-untyped-def]
    make_user("editora", roles=["publisher"])
    login(client, "editora")
    return client


def upload(client, name: str, content: bytes, **fields: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/intranet/media/",
        data={"_csrf_token": client.cookies.get("suite_csrf"), **fields},
        files={"file": (name, content, "application/octet-stream")},
        follow_redirects=False,
    )


def test_image_upload_makes_renditions_and_is_served_publicly(editor, settings):
    response = upload(editor, "praia.png", png_bytes(), title="Praia", alt_text="Areal da praia ao fim da tarde")
    assert response.status_code == 303
    media_id = response.headers["location"].split("uploaded=")[1]
    thumb = editor.get(f"/media/{media_id}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(thumb.content)).size[0] == 320
    original = editor.get(f"/media/{media_id}/original")
    assert original.headers["content-type"] == "image/png"
    assert original.headers["x-content-type-options"] == "nosniff"
    assert (
        editor.get(f"/media/{media_id}/original", headers={"If-None-Match": original.headers["etag"]}).status_code
        == 304
    )
    library = editor.get("/intranet/media/")
    assert 'alt="Areal da praia ao fim da tarde"' in library.text


def test_image_without_alt_text_is_refused_and_leaves_nothing(editor, settings):
    response = upload(editor, "praia.png", png_bytes(), title="Praia")
    assert response.status_code == 400
    assert 'value="Praia"' in response.text  # input kept
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
        ("relatorio.pdf", b"<html><script>alert(1)</script></html>"),
        ("programa.exe", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 100),
    ],
    ids=["svg-with-script", "spoofed-pdf", "executable"],
)
def test_dangerous_or_spoofed_files_are_refused(editor, settings, name, content):
    response = upload(editor, name, content, title="x", alt_text="x")
    assert response.status_code == 400
    assert stored_files(settings) == []


def test_zip_bomb_docx_is_refused(editor, settings):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"0" * (150 * 1024 * 1024))
    response = upload(editor, "bomba.docx", buf.getvalue(), title="x")
    assert response.status_code == 400
    assert "zip bomb" in response.text
    assert stored_files(settings) == []


def test_oversized_upload_is_refused_and_leaves_nothing(tmp_path, database_url, make_user):
    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    settings = settings_for(tmp_path / "v", database_url, SUITE_UPLOAD_MAX_BYTES="50000")
    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        make_user("editora", roles=["publisher"])
        login(client, "editora")
        response = upload(client, "grande.pdf", b"%PDF-1.4\n" + b"0" * 60000, title="x")
        assert response.status_code in (400, 413)
        assert stored_files(settings) == []


def test_document_download_has_safe_name_and_type(editor):
    response = upload(editor, '../../etc/Relatório "final"\r\n.pdf', b"%PDF-1.4\n%%EOF\n", title="Relatório")
    assert response.status_code == 303
    media_id = response.headers["location"].split("uploaded=")[1]
    page = editor.get(f"/documentos/{media_id}")
    assert page.status_code == 200 and "Relatório" in page.text
    download = editor.get(f"/media/{media_id}/original")
    assert download.headers["content-type"] == "application/pdf"
    disposition = download.headers["content-disposition"]
    assert "/" not in disposition.split("filename*=")[0] and "\r" not in disposition and "\n" not in disposition
    assert "filename*=UTF-8''Relat%C3%B3rio%20final.pdf" in disposition


def test_media_library_requires_content_edit(client, make_user):
    make_user("funcionario")
    login(client, "funcionario")
    assert client.get("/intranet/media/").status_code == 403
    assert upload(client, "a.png", png_bytes(), alt_text="x").status_code == 403


def test_news_item_with_hero_image_and_attached_document(editor):
    image = upload(editor, "praia.png", png_bytes(), title="Praia", alt_text="Areal ao pôr do sol")
    image_id = image.headers["location"].split("uploaded=")[1]
    doc = upload(editor, "edital.pdf", b"%PDF-1.4\n%%EOF\n", title="Edital n.º 12")
    doc_id = doc.headers["location"].split("uploaded=")[1]
    token = editor.cookies.get("suite_csrf")
    created = editor.post(
        "/intranet/content/new?type=news.article",
        data={"title": "Praia acessível", "body": "Texto", "language": "pt", "audience": "public",
              "hero_image_id": image_id, "attachments": [doc_id], "_csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert created.status_code == 303
    url = created.headers["location"].split("?")[0]
    assert f'id="f-att-{doc_id}" name="attachments" value="{doc_id}" checked' in editor.get(url).text
    editor.post(f"{url}/action", data={"action": "publish", "_csrf_token": token})
    page = editor.get("/noticias/praia-acessivel").text
    assert f'<img src="/media/{image_id}/medium" alt="Areal ao pôr do sol"' in page
    assert f'href="/documentos/{doc_id}"' in page and "Edital n.º 12" in page
    assert f'property="og:image" content="http://127.0.0.1:8000/media/{image_id}/medium"' in page
    bad = editor.post(
        "/intranet/content/new?type=news.article",
        data={"title": "Outra", "body": "x", "language": "pt", "audience": "public", "hero_image_id": doc_id,
              "_csrf_token": token},
    )  # fmt: skip
    assert bad.status_code == 400
