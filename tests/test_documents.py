"""Workspace documents: streamed uploads, versions, folders, trash, quota, shares, attacks, imports, search.

Every test runs on SQLite and PostgreSQL.  Users: ``ana`` owns the private workspace *Urbanismo*,
``rui`` is a member and ``vera`` a viewer there; ``joao`` is a member of *Recursos Humanos*;
``eva`` is an employee of neither.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from concelho.suite.db import Database
from sqlalchemy import func, select, update

from .conftest import csrf_token, login, settings_for

SLUG = "urbanismo"
BASE = f"/intranet/espacos/{SLUG}/documentos/"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "portal.jsonl"
MAX_FILE = 300_000
MAX_REQUEST = 2_000_000


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def pdf_bytes(text: str) -> bytes:
    """A small valid PDF with one line of text (extractable by pypdf)."""
    content = f"BT /F1 18 Tf 20 100 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 144] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def docx_bytes(text: str, padding: int = 0) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        body = f"<w:document><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p>"
        zf.writestr("word/document.xml", body + "A" * padding + "</w:body></w:document>")
    return buf.getvalue()


def odt_bytes(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        zf.writestr("content.xml", f"<office:document-content><text:p>{text}</text:p></office:document-content>")
    return buf.getvalue()


def xlsx_bytes(*cells: str) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    for cell in cells:
        workbook.active.append([cell, 42])
    buf = io.BytesIO()
    workbook.save(buf)
    return buf.getvalue()


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------
@pytest.fixture
def settings(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    """Small limits; no in-process jobs (tests drain the search outbox themselves)."""
    base = settings_for(tmp_path / "var", database_url, SUITE_BACKGROUND_JOBS="false")
    plugins = {**base.plugin_settings, "documents": {"max_file_bytes": MAX_FILE, "max_request_bytes": MAX_REQUEST}}
    return dataclasses.replace(base, plugin_settings=plugins)


def with_db(settings, fn):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        database = Database(settings.database_url)
        try:
            async with database.sessionmaker() as session:
                result = await fn(session)
                await session.commit()
                return result
        finally:
            await database.dispose()

    return asyncio.run(go())


@pytest.fixture
def space(settings, make_user):  # type: ignore[no-untyped-def]
    """Users and two private workspaces; returns the workspaces' ids by slug."""
    for name in ("ana", "rui", "vera", "joao", "eva"):
        make_user(name)

    async def op(session):  # type: ignore[no-untyped-def]
        from concelho.plugins.workspaces.services import create_workspace, set_member
        from concelho.suite.users import get_user

        urb = await create_workspace(session, name="Urbanismo", owner=await get_user(session, "ana"))
        rh = await create_workspace(session, name="Recursos Humanos", owner=await get_user(session, "joao"))
        await set_member(session, urb, await get_user(session, "rui"), "member")
        await set_member(session, urb, await get_user(session, "vera"), "viewer")
        return {"urbanismo": urb.id, "recursos-humanos": rh.id}

    return with_db(settings, op)


def as_user(client, username: str):  # type: ignore[no-untyped-def]
    client.cookies.clear()
    assert login(client, username).status_code == 303
    return client


def upload(client, files: list[tuple[str, bytes]], folder: int | None = None, slug: str = SLUG):  # type: ignore[no-untyped-def]
    url = f"/intranet/espacos/{slug}/documentos/enviar" + (f"?pasta={folder}" if folder else "")
    return client.post(
        url,
        data={"_csrf_token": csrf_token(client)},
        files=[("files", (name, content, "application/octet-stream")) for name, content in files],
        follow_redirects=False,
    )


def new_version(client, document_id: int, name: str, content: bytes):  # type: ignore[no-untyped-def]
    return client.post(
        f"{BASE}d/{document_id}/versoes",
        data={"_csrf_token": csrf_token(client)},
        files={"file": (name, content, "application/octet-stream")},
        follow_redirects=False,
    )


def post(client, url: str, **data: Any):  # type: ignore[no-untyped-def]
    return client.post(url, data={**data, "_csrf_token": csrf_token(client)}, follow_redirects=False)


def documents(settings) -> list[Any]:  # type: ignore[no-untyped-def]
    async def op(session):  # type: ignore[no-untyped-def]
        from concelho.plugins.documents.models import Document

        return list((await session.execute(select(Document).order_by(Document.id))).scalars())

    return with_db(settings, op)


def doc_named(settings, name: str) -> Any:  # type: ignore[no-untyped-def]
    found = [d for d in documents(settings) if d.name == name]
    assert found, f"no document {name!r} in {[d.name for d in documents(settings)]}"
    return found[0]


def versions_of(settings, document_id: int) -> list[Any]:  # type: ignore[no-untyped-def]
    async def op(session):  # type: ignore[no-untyped-def]
        from concelho.plugins.documents.models import Version

        rows = await session.execute(select(Version).where(Version.document_id == document_id).order_by(Version.number))
        return list(rows.scalars())

    return with_db(settings, op)


def row_counts(settings) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async def op(session):  # type: ignore[no-untyped-def]
        from concelho.plugins.documents.models import Document, Folder, Share, Version

        return {
            model.__tablename__: (await session.execute(select(func.count()).select_from(model))).scalar_one()
            for model in (Document, Folder, Share, Version)
        }

    return with_db(settings, op)


def storage_root(settings) -> Path:  # type: ignore[no-untyped-def]
    return Path(settings.storage_dir) / "documents"


def stored_files(settings) -> list[Path]:  # type: ignore[no-untyped-def]
    root = storage_root(settings)
    return sorted(p for p in root.rglob("*") if p.is_file() and "tmp" not in p.relative_to(root).parts)


def temp_files(settings) -> list[Path]:  # type: ignore[no-untyped-def]
    tmp = storage_root(settings) / "tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


def assert_nothing_left(settings) -> None:  # type: ignore[no-untyped-def]
    assert stored_files(settings) == []
    assert temp_files(settings) == []
    counts = row_counts(settings)
    assert counts["documents_document"] == 0 and counts["documents_version"] == 0, counts


def drain(app, settings) -> Any:  # type: ignore[no-untyped-def]
    from concelho.search.indexing import Indexer
    from concelho.search.providers import Providers

    async def go():  # type: ignore[no-untyped-def]
        database = Database(settings.database_url)
        try:
            state = app.state.suite
            indexer = Indexer(database.sessionmaker, state.search, Providers.from_registry(state.registry))
            return await indexer.drain(retry_now=True)
        finally:
            await database.dispose()

    return asyncio.run(go())


def search_ids(app, settings, username: str | None, text: str) -> set[str]:  # type: ignore[no-untyped-def]
    """What ``username`` finds (visibility built from current memberships, as the search pages do)."""
    from concelho.search.contract import SearchQuery
    from concelho.search.visibility import visibility_for
    from concelho.suite.auth.permissions import CurrentUser
    from concelho.suite.users import get_user

    async def op(session):  # type: ignore[no-untyped-def]
        user = None
        if username:
            row = await get_user(session, username)
            user = CurrentUser(id=row.id, username=row.username, name=row.name, email=row.email,
                               is_superuser=False, department_id=None,
                               permissions=frozenset({"intranet.access"}))  # fmt: skip
        return await visibility_for(session, app.state.suite.registry, user)

    visibility = with_db(settings, op)
    result = app.state.suite.search.search(SearchQuery(text, visibility=visibility, limit=50, facets=()))
    return {hit.id for hit in result.hits}


# --------------------------------------------------------------------------------------------
# Uploads, versions, downloads, previews
# --------------------------------------------------------------------------------------------
def test_upload_many_files_then_versions_history_download_and_restore(client, settings, space):
    as_user(client, "ana")
    page = client.get(BASE)
    assert page.status_code == 200 and "<h1>" in page.text
    assert 'enctype="multipart/form-data"' in page.text and 'name="files" multiple' in page.text
    v1 = pdf_bytes("Loteamento da Quinta da Ribeira")
    response = upload(client, [("ata.pdf", v1), ("notas.txt", "Prazos de apreciação".encode())])
    assert response.status_code == 303
    assert response.headers["location"] == f"{BASE}?enviados=2"
    listing = client.get(response.headers["location"])
    assert "ata.pdf" in listing.text and "notas.txt" in listing.text

    ata = doc_named(settings, "ata.pdf")
    assert (ata.content_type, ata.size, ata.current_version) == ("application/pdf", len(v1), 1)
    assert "Loteamento da Quinta da Ribeira" in versions_of(settings, ata.id)[0].text
    assert "Prazos de apreciação" in versions_of(settings, doc_named(settings, "notas.txt").id)[0].text
    assert versions_of(settings, ata.id)[0].storage_key == __import__("hashlib").sha256(v1).hexdigest()

    download = client.get(f"{BASE}d/{ata.id}/descarregar")
    assert download.status_code == 200 and download.content == v1
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith('attachment; filename="ata.pdf"')
    assert download.headers["x-content-type-options"] == "nosniff"
    preview = client.get(f"{BASE}d/{ata.id}/ver")
    assert preview.status_code == 200 and preview.headers["content-disposition"].startswith("inline;")
    notes = doc_named(settings, "notas.txt")
    assert client.get(f"{BASE}d/{notes.id}/ver").status_code == 404  # text is never shown inline
    assert client.get(f"{BASE}d/{notes.id}/descarregar").headers["content-type"].startswith("text/plain")

    v2 = pdf_bytes("Segunda versao do parecer")
    assert new_version(client, ata.id, "ata-revista.pdf", v2).status_code == 303
    history = client.get(f"{BASE}d/{ata.id}/")
    assert "Restaurar esta versão" in history.text or "Restore this version" in history.text
    assert client.get(f"{BASE}d/{ata.id}/descarregar").content == v2
    assert client.get(f"{BASE}d/{ata.id}/descarregar?v=1").content == v1
    assert client.get(f"{BASE}d/{ata.id}/descarregar?v=9").status_code == 404

    assert post(client, f"{BASE}d/{ata.id}/restaurar-versao", version="1").status_code == 303
    restored = doc_named(settings, "ata.pdf")
    assert restored.current_version == 3
    assert [v.number for v in versions_of(settings, ata.id)] == [1, 2, 3]
    assert client.get(f"{BASE}d/{ata.id}/descarregar").content == v1
    assert len(stored_files(settings)) == 3  # v1 and v3 share one stored file

    # A file with the name of an existing document becomes its new version.
    again = upload(client, [("ata.pdf", pdf_bytes("Quarta"))])
    assert again.status_code == 303
    assert doc_named(settings, "ata.pdf").current_version == 4
    assert len(documents(settings)) == 2


def test_images_preview_inline_and_office_text_is_extracted(client, settings, space):
    as_user(client, "ana")
    response = upload(
        client,
        [
            ("planta.png", png_bytes()),
            ("parecer.docx", docx_bytes("Parecer desfavoravel loteamento")),
            ("ata.odt", odt_bytes("Ata da comissao municipal")),
            ("checklist.xlsx", xlsx_bytes("Certidao do registo predial")),
        ],
    )
    assert response.status_code == 303
    image = doc_named(settings, "planta.png")
    page = client.get(f"{BASE}d/{image.id}/")
    assert f'src="{BASE}d/{image.id}/ver"' in page.text
    preview = client.get(f"{BASE}d/{image.id}/ver")
    assert preview.headers["content-type"] == "image/png" and preview.headers["content-disposition"].startswith(
        "inline"
    )
    texts = {d.name: versions_of(settings, d.id)[-1].text for d in documents(settings)}
    assert "Parecer desfavoravel loteamento" in texts["parecer.docx"]
    assert "Ata da comissao municipal" in texts["ata.odt"]
    assert "Certidao do registo predial" in texts["checklist.xlsx"] and "42" in texts["checklist.xlsx"]
    assert texts["planta.png"] == ""


def test_hostile_file_names_are_neutralised_in_pages_and_headers(client, settings, space):
    as_user(client, "ana")
    name = 'relatório "final";<img src=x onerror=alert(1)>.txt'
    assert upload(client, [(name, b"conteudo")]).status_code == 303
    document = documents(settings)[0]
    assert '"' not in document.name and ";" not in document.name and "<" not in document.name
    header = client.get(f"{BASE}d/{document.id}/descarregar").headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._ -]+"; filename\*=UTF-8\'\'[A-Za-z0-9%._-]+', header)
    assert "relat%C3%B3rio" in header
    assert "<img src=x" not in client.get(f"{BASE}d/{document.id}/").text


# --------------------------------------------------------------------------------------------
# Folders, trash, purge, quota
# --------------------------------------------------------------------------------------------
def test_folders_create_rename_move_and_copy(client, settings, space):
    as_user(client, "ana")
    created = post(client, f"{BASE}nova-pasta", name="Atas")
    assert created.status_code == 303
    atas = int(re.search(r"/pasta/(\d+)/", created.headers["location"]).group(1))
    sub = post(client, f"{BASE}nova-pasta", name="2025", parent_id=str(atas))
    sub_id = int(re.search(r"/pasta/(\d+)/", sub.headers["location"]).group(1))
    duplicate = post(client, f"{BASE}nova-pasta", name="atas")
    assert duplicate.status_code == 400 and 'value="atas"' in duplicate.text

    assert upload(client, [("ata-marco.txt", b"ata de marco")], folder=sub_id).status_code == 303
    inner = client.get(f"{BASE}pasta/{sub_id}/")
    assert "ata-marco.txt" in inner.text and f'href="{BASE}pasta/{atas}/"' in inner.text  # breadcrumbs
    document = doc_named(settings, "ata-marco.txt")
    assert document.folder_id == sub_id

    assert post(client, f"{BASE}pasta/{atas}/mudar-nome", name="Atas e pareceres").status_code == 303
    assert "Atas e pareceres" in client.get(f"{BASE}pasta/{atas}/").text
    assert post(client, f"{BASE}pasta/{atas}/mover", folder_id=str(sub_id)).status_code == 400  # into itself

    assert post(client, f"{BASE}d/{document.id}/mudar-nome", name="Ata de março").status_code == 303
    assert doc_named(settings, "Ata de março.txt").id == document.id
    assert post(client, f"{BASE}d/{document.id}/mover", folder_id="").status_code == 303
    assert doc_named(settings, "Ata de março.txt").folder_id is None
    copied = post(client, f"{BASE}d/{document.id}/copiar", folder_id=str(atas))
    assert copied.status_code == 303
    copy = next(d for d in documents(settings) if d.id != document.id)
    assert copy.folder_id == atas and copy.name == "Ata de março.txt"
    assert copied.headers["location"] == f"{BASE}d/{copy.id}/"
    assert len(stored_files(settings)) == 1  # the copy points at the same stored file
    second = post(client, f"{BASE}d/{document.id}/copiar", folder_id="")
    assert second.status_code == 303 and doc_named(settings, "Ata de março (1).txt")

    # A folder is copied with what is inside it (the stored files are shared, not duplicated).
    assert upload(client, [("parecer.txt", b"parecer tecnico")], folder=sub_id).status_code == 303
    assert post(client, f"{BASE}pasta/{atas}/copiar", folder_id=str(sub_id)).status_code == 400  # into itself
    whole = post(client, f"{BASE}pasta/{atas}/copiar", folder_id="")
    assert whole.status_code == 303
    names = sorted(d.name for d in documents(settings))
    assert names.count("Ata de março.txt") == 3 and names.count("parecer.txt") == 2  # top, Atas, its copy
    assert "Atas e pareceres (1)" in client.get(BASE).text
    assert len(stored_files(settings)) == 2


def test_trash_restore_and_purge_removes_files_no_version_needs(client, settings, space):
    as_user(client, "ana")
    upload(client, [("a.txt", b"conteudo a"), ("b.txt", b"conteudo b")])
    a, b = doc_named(settings, "a.txt"), doc_named(settings, "b.txt")
    post(client, f"{BASE}d/{a.id}/copiar", folder_id="")
    copy = doc_named(settings, "a (1).txt")
    assert len(stored_files(settings)) == 2

    assert post(client, f"{BASE}d/{a.id}/lixo").headers["location"] == BASE
    assert "a.txt" not in client.get(BASE).text
    trash = client.get(f"{BASE}lixo")
    assert "a.txt" in trash.text
    assert client.get(f"{BASE}d/{a.id}/").status_code == 200  # the owner still sees it (to restore it)
    assert post(client, f"{BASE}d/{a.id}/restaurar").status_code == 303
    assert "a.txt" in client.get(BASE).text

    folder = int(re.search(r"/pasta/(\d+)/", post(client, f"{BASE}nova-pasta", name="Caixa").headers["location"])[1])
    post(client, f"{BASE}d/{b.id}/mover", folder_id=str(folder))
    assert post(client, f"{BASE}pasta/{folder}/lixo").headers["location"] == BASE
    assert doc_named(settings, "b.txt").trashed_at is not None
    assert client.get(f"{BASE}pasta/{folder}/").status_code == 404
    assert "Caixa" in client.get(f"{BASE}lixo").text and "b.txt" not in client.get(f"{BASE}lixo").text
    assert post(client, f"{BASE}pasta/{folder}/restaurar").status_code == 303
    assert doc_named(settings, "b.txt").trashed_at is None

    as_user(client, "rui")  # a member may not delete for good
    assert post(client, f"{BASE}d/{a.id}/eliminar").status_code in (403, 404)
    as_user(client, "ana")
    assert post(client, f"{BASE}d/{a.id}/eliminar").status_code == 400  # trash first
    post(client, f"{BASE}d/{a.id}/lixo")
    assert post(client, f"{BASE}d/{a.id}/eliminar").headers["location"] == f"{BASE}lixo"
    assert len(stored_files(settings)) == 2  # the copy still needs the file
    post(client, f"{BASE}d/{copy.id}/lixo")
    post(client, f"{BASE}d/{copy.id}/eliminar")
    assert len(stored_files(settings)) == 1
    post(client, f"{BASE}pasta/{folder}/lixo")
    assert post(client, f"{BASE}pasta/{folder}/eliminar").status_code == 303
    assert stored_files(settings) == [] and temp_files(settings) == []
    assert row_counts(settings) == {"documents_document": 0, "documents_folder": 0, "documents_share": 0,
                                    "documents_version": 0}  # fmt: skip


def test_quota_per_workspace(client, settings, space):
    async def small(session):  # type: ignore[no-untyped-def]
        from concelho.plugins.workspaces.models import Workspace

        await session.execute(update(Workspace).where(Workspace.slug == SLUG).values(quota_bytes=1000))

    with_db(settings, small)
    as_user(client, "ana")
    assert upload(client, [("um.txt", b"1" * 600)]).status_code == 303
    assert "600 B" in client.get(BASE).text
    refused = upload(client, [("dois.txt", b"2" * 600)])
    assert refused.status_code == 400
    assert "quota" in refused.text
    assert len(stored_files(settings)) == 1 and temp_files(settings) == []
    small_one = upload(client, [("tres.txt", b"3" * 300), ("quatro.txt", b"4" * 300)])  # the second does not fit
    assert small_one.status_code == 200 and "quatro.txt" in small_one.text
    assert {d.name for d in documents(settings)} == {"um.txt", "tres.txt"}
    # The same content again takes no space: a copy, or restoring an old version.
    assert post(client, f"{BASE}d/{doc_named(settings, 'um.txt').id}/copiar", folder_id="").status_code == 303


# --------------------------------------------------------------------------------------------
# Rights and shares
# --------------------------------------------------------------------------------------------
def test_shares_give_read_or_edit_and_colleagues_read_without_editing(app, client, settings, space):
    as_user(client, "ana")
    upload(client, [("parecer.txt", b"parecer sobre o loteamento da ribeira")])
    document = doc_named(settings, "parecer.txt")
    url = f"{BASE}d/{document.id}/"

    as_user(client, "rui")  # a member: reads colleagues' documents, edits only their own
    assert client.get(url).status_code == 200
    assert post(client, f"{url}mudar-nome", name="outro").status_code == 403
    assert new_version(client, document.id, "x.txt", b"nova").status_code == 403
    assert upload(client, [("meu.txt", b"do rui")]).status_code == 303
    assert post(client, f"{BASE}d/{doc_named(settings, 'meu.txt').id}/mudar-nome", name="meu2").status_code == 303
    as_user(client, "vera")  # a viewer reads and may not upload
    assert client.get(url).status_code == 200
    assert upload(client, [("v.txt", b"x")]).status_code == 403
    assert temp_files(settings) == []

    as_user(client, "joao")
    assert client.get(url).status_code == 404
    as_user(client, "ana")
    assert post(client, f"{url}partilhar", workspace="recursos-humanos", permission="read").status_code == 303
    assert post(client, f"{url}partilhar", username="eva", permission="edit").status_code == 303
    assert post(client, f"{url}partilhar", username="ninguem", permission="read").status_code == 400
    assert "Recursos Humanos" in client.get(url).text

    as_user(client, "joao")  # read through his workspace
    page = client.get(url)
    assert page.status_code == 200 and 'action="' + url + 'mudar-nome"' not in page.text
    assert client.get(f"{url}descarregar").content == b"parecer sobre o loteamento da ribeira"
    assert post(client, f"{url}mudar-nome", name="x").status_code == 403
    assert new_version(client, document.id, "x.txt", b"nova").status_code == 403
    assert client.get(BASE).status_code == 404  # the rest of the workspace stays closed
    assert "parecer.txt" in client.get("/intranet/documentos/partilhados").text

    as_user(client, "eva")  # edit through a personal share: new versions and names, not the trash
    assert post(client, f"{url}mudar-nome", name="parecer final").status_code == 303
    assert new_version(client, document.id, "p.txt", b"parecer revisto").status_code == 303
    assert post(client, f"{url}lixo").status_code == 403
    assert client.get(BASE).status_code == 404
    shared = client.get("/intranet/documentos/partilhados")
    assert "parecer final.txt" in shared.text

    # Search: the owning workspace and the workspace it is shared with; never others.
    drain(app, settings)
    assert f"documents.document:{document.id}" in search_ids(app, settings, "joao", "parecer revisto")
    assert f"documents.document:{document.id}" in search_ids(app, settings, "rui", "parecer revisto")
    assert search_ids(app, settings, "vera", "parecer revisto")  # viewers are members too
    assert search_ids(app, settings, None, "parecer revisto") == set()
    as_user(client, "ana")
    share_id = int(re.search(r"partilhas/(\d+)/remover", client.get(url).text)[1])
    assert post(client, f"{BASE}partilhas/{share_id}/remover").status_code == 303
    drain(app, settings)
    as_user(client, "joao")
    assert client.get(url).status_code == 404
    assert search_ids(app, settings, "joao", "parecer revisto") == set()


def test_a_shared_folder_opens_everything_below_it(client, settings, space):
    as_user(client, "ana")
    folder = int(re.search(r"/pasta/(\d+)/", post(client, f"{BASE}nova-pasta", name="Comum").headers["location"])[1])
    inner = int(
        re.search(r"/pasta/(\d+)/", post(client, f"{BASE}nova-pasta", name="Sub", parent_id=str(folder))
                  .headers["location"])[1]
    )  # fmt: skip
    upload(client, [("dentro.txt", b"dentro")], folder=inner)
    document = doc_named(settings, "dentro.txt")
    assert post(client, f"{BASE}pasta/{folder}/partilhar", workspace="recursos-humanos",
                permission="edit").status_code == 303  # fmt: skip
    as_user(client, "joao")
    page = client.get(f"{BASE}pasta/{folder}/")
    assert "Sub" in page.text and 'href="/intranet/documentos/partilhados"' in page.text
    assert f'href="/intranet/espacos/{SLUG}/"' not in page.text  # nothing above the shared folder
    assert client.get(f"{BASE}pasta/{inner}/").status_code == 200
    assert new_version(client, document.id, "dentro.txt", b"dentro v2").status_code == 303
    assert upload(client, [("do-joao.txt", b"rh")], folder=inner).status_code == 303
    assert client.get(BASE).status_code == 404


def test_a_non_member_gets_404_on_every_url_of_a_private_workspace(client, settings, space):
    as_user(client, "ana")
    folder = int(re.search(r"/pasta/(\d+)/", post(client, f"{BASE}nova-pasta", name="Atas").headers["location"])[1])
    upload(client, [("ata.pdf", pdf_bytes("Ata")), ("velho.txt", b"velho")], folder=folder)
    document, old = doc_named(settings, "ata.pdf"), doc_named(settings, "velho.txt")
    post(client, f"{BASE}d/{old.id}/lixo")
    post(client, f"{BASE}d/{document.id}/partilhar", workspace="recursos-humanos", permission="read")
    share_id = int(re.search(r"partilhas/(\d+)/remover", client.get(f"{BASE}d/{document.id}/").text)[1])
    before = (row_counts(settings), stored_files(settings))

    d, f = f"{BASE}d/{document.id}/", f"{BASE}pasta/{folder}/"
    gets = [BASE, f, f"{BASE}lixo", d, f"{d}descarregar", f"{d}descarregar?v=1", f"{d}ver", f"{BASE}d/{old.id}/",
            f"{BASE}d/{old.id}/descarregar", f"{BASE}d/999999/", f"{BASE}pasta/999999/"]  # fmt: skip
    posts = [f"{d}mudar-nome", f"{d}mover", f"{d}copiar", f"{d}lixo", f"{d}restaurar-versao", f"{d}partilhar",
             f"{BASE}d/{old.id}/restaurar", f"{BASE}d/{old.id}/eliminar", f"{BASE}nova-pasta", f"{f}mudar-nome",
             f"{f}mover", f"{f}lixo", f"{f}restaurar", f"{f}eliminar", f"{f}partilhar",
             f"{BASE}partilhas/{share_id}/remover"]  # fmt: skip
    for username in ("eva", "joao"):  # joao may read the shared document, nothing else
        as_user(client, username)
        for url in gets:
            if username == "joao" and url.startswith(d):
                continue
            assert client.get(url).status_code == 404, (username, url)
        for url in posts:
            readable = url.startswith(d) or "/partilhas/" in url  # joao may read the shared document
            expected = (403,) if username == "joao" and readable else (404,)
            assert post(client, url, name="x", folder_id="", version="1", username="eva").status_code in expected, (
                username, url,
            )  # fmt: skip
        assert upload(client, [("intruso.txt", b"x")]).status_code == 404
        assert upload(client, [("intruso.txt", b"x")], folder=folder).status_code == 404
        if username == "eva":
            assert new_version(client, document.id, "intruso.txt", b"x").status_code == 404
    assert (row_counts(settings), stored_files(settings)) == before
    assert temp_files(settings) == []
    assert client.get("/intranet/espacos/nao-existe/documentos/").status_code == 404


# --------------------------------------------------------------------------------------------
# Attacks and interrupted uploads
# --------------------------------------------------------------------------------------------
ATTACKS = {
    "oversized": ("grande.txt", b"a" * (MAX_FILE + 1), ["larger than", "maior do que"]),
    "spoofed-pdf": ("relatorio.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200, ["not accepted", "não é aceite"]),
    "html-as-pdf": ("relatorio.pdf", b"<html><script>alert(1)</script></html>", ["not accepted", "não é aceite"]),
    "svg-with-script": (
        "logo.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>',
        ["not accepted", "não é aceite"],
    ),
    "path-traversal": ("../../../etc/passwd", b"root:x:0:0", ["file name", "nome do ficheiro"]),
    "backslash-traversal": ("..\\..\\boot.ini", b"[boot]", ["file name", "nome do ficheiro"]),
    "dot-dot": ("..", b"x", ["file name", "nome do ficheiro"]),
    "zip-bomb-docx": ("parecer.docx", docx_bytes("bomba", padding=3_000_000), ["zip bomb", "bomba"]),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_upload_attacks_are_refused_with_a_clear_message_and_leave_nothing(client, settings, space, attack):
    name, content, messages = ATTACKS[attack]
    as_user(client, "ana")
    response = upload(client, [(name, content)])
    assert response.status_code == 400, response.text[:500]
    alert = re.search(r'id="documents-refused">(.*?)</div>', response.text, re.S)
    assert alert, response.text[:2000]
    assert any(m in alert.group(1) for m in messages), alert.group(1)
    assert_nothing_left(settings)


def test_a_request_over_the_limit_is_refused_before_it_is_read(client, settings, space):
    as_user(client, "ana")
    response = upload(client, [(f"f{i}.txt", b"x" * (MAX_FILE - 10)) for i in range(8)])
    assert response.status_code == 413
    assert 'id="documents-error"' in response.text
    assert_nothing_left(settings)


def test_uploads_need_the_csrf_token_before_the_files(client, settings, space):
    as_user(client, "ana")
    no_token = client.post(f"{BASE}enviar", files={"files": ("a.txt", b"x", "text/plain")}, follow_redirects=False)
    assert no_token.status_code == 403
    forged = client.post(f"{BASE}enviar", data={"_csrf_token": "f" * 128},
                         files={"files": ("a.txt", b"x", "text/plain")}, follow_redirects=False)  # fmt: skip
    assert forged.status_code == 403
    header = client.post(f"{BASE}enviar", headers={"x-csrftoken": csrf_token(client)},
                         files={"files": ("a.txt", b"x", "text/plain")}, follow_redirects=False)  # fmt: skip
    assert header.status_code == 303  # the header HTMX sends is enough
    documents_before = row_counts(settings)["documents_document"]
    assert documents_before == 1 and temp_files(settings) == []


def _multipart(token: str, filename: str, content: bytes, boundary: str = "limite") -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="_csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + content


def test_an_interrupted_upload_leaves_nothing(app, client, settings, space):
    as_user(client, "ana")
    token = csrf_token(client)
    # A body that stops in the middle of the file (the client went away before the closing boundary).
    body = _multipart(token, "grande.txt", b"y" * 150_000)
    truncated = client.post(f"{BASE}enviar", content=body, follow_redirects=False,
                            headers={"content-type": "multipart/form-data; boundary=limite"})  # fmt: skip
    assert truncated.status_code == 400
    assert "interrupted" in truncated.text or "interrompido" in truncated.text
    assert_nothing_left(settings)

    # A client that disconnects mid-body (the ASGI server reports http.disconnect).
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    messages = [{"type": "http.request", "body": body[:80_000], "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        path = f"{BASE}enviar"
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"testserver.local"), (b"cookie", cookie.encode()),
                        (b"content-type", b"multipart/form-data; boundary=limite"),
                        (b"content-length", str(len(body) + 1000).encode())],
            "client": ("127.0.0.1", 50000), "server": ("testserver.local", 80), "state": {},
        }  # fmt: skip
        await app(scope, receive, send)

    client.blocking_portal.call(call)
    assert sent and sent[0]["status"] == 400
    assert_nothing_left(settings)


# --------------------------------------------------------------------------------------------
# Events, slots
# --------------------------------------------------------------------------------------------
def test_events_are_emitted_and_the_workspace_sidebar_links_to_documents(app, client, settings, space):
    seen: list[tuple[str, dict[str, Any]]] = []
    for name in ("documents.created", "documents.shared", "documents.trashed"):
        app.state.suite.events.on(name, lambda _n=name, **payload: seen.append((_n, payload)))
    as_user(client, "ana")
    upload(client, [("nota.txt", b"nota")])
    document = doc_named(settings, "nota.txt")
    post(client, f"{BASE}d/{document.id}/partilhar", username="eva", permission="read")
    post(client, f"{BASE}d/{document.id}/lixo")
    names = [n for n, _ in seen]
    assert names == ["documents.created", "documents.shared", "documents.trashed"]
    created = seen[0][1]
    assert created["document_id"] == document.id and created["workspace_id"] == space["urbanismo"]
    assert created["url"] == f"{BASE}d/{document.id}/" and created["title"] == "nota.txt"
    assert seen[1][1]["user_ids"] and seen[1][1]["shared_workspace_id"] is None
    home = client.get(f"/intranet/espacos/{SLUG}")
    assert home.status_code == 200 and f'href="{BASE}"' in home.text


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
@pytest.fixture
def small_limits(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "suite.toml"
    config.write_text(f"[plugins.documents]\nmax_file_bytes = {MAX_FILE}\n")
    return {"SUITE_CONFIG": str(config)}


def test_cli_import_of_a_folder_tree_is_idempotent_and_lists_skipped_files(cli, settings, space, tmp_path,
                                                                         small_limits):  # fmt: skip
    tree = tmp_path / "arquivo"
    (tree / "Atas" / "2025").mkdir(parents=True)
    (tree / "Atas" / "2025" / "ata-marco.txt").write_text("Ata de março: prazos de apreciação")
    (tree / "Atas" / "plano.pdf").write_bytes(pdf_bytes("Plano diretor municipal"))
    (tree / "parecer.docx").write_bytes(docx_bytes("Parecer favoravel"))
    (tree / "virus.exe").write_bytes(b"MZ\x90\x00" + b"\x00" * 100)
    (tree / "grande.txt").write_bytes(b"g" * (MAX_FILE + 1))
    (tree / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>')
    (tree / "bomba.docx").write_bytes(docx_bytes("b", padding=3_000_000))

    first = cli("documents", "import", str(tree), "--workspace", SLUG, "--json", env=small_limits)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert (report["created"], report["updated"], report["unchanged"], report["folders_created"]) == (3, 0, 0, 2)
    skipped = {item["path"]: item["reason"] for item in report["skipped"]}
    assert set(skipped) == {"virus.exe", "grande.txt", "logo.svg", "bomba.docx"}
    assert "larger than" in skipped["grande.txt"] and "zip bomb" in skipped["bomba.docx"]
    ata = doc_named(settings, "ata-marco.txt")
    assert ata.import_key == "path:Atas/2025/ata-marco.txt"
    assert "Plano diretor municipal" in versions_of(settings, doc_named(settings, "plano.pdf").id)[0].text
    assert len(stored_files(settings)) == 3 and temp_files(settings) == []

    second = cli("documents", "import", str(tree), "--workspace", SLUG, "--json", env=small_limits)
    again = json.loads(second.output)
    assert (again["created"], again["unchanged"], again["folders_created"], len(again["skipped"])) == (0, 3, 0, 4)
    assert row_counts(settings)["documents_document"] == 3 and row_counts(settings)["documents_folder"] == 2

    (tree / "Atas" / "2025" / "ata-marco.txt").write_text("Ata de março, revista")
    third = cli("documents", "import", str(tree), "--workspace", SLUG, env=small_limits)
    assert third.exit_code == 0
    assert "1 updated" in third.output and "skipped virus.exe" in third.output
    assert doc_named(settings, "ata-marco.txt").current_version == 2
    missing = cli("documents", "import", str(tree), "--workspace", "nenhum")
    assert missing.exit_code == 1 and "no workspace named" in missing.output


def test_corpus_workspace_documents_import_and_are_readable_and_searchable_only_by_members(
    app, client, cli, settings, make_user
):
    for name in ("rui", "eva"):
        make_user(name)
    result = cli("documents", "import-corpus", str(CORPUS), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["created"] == 25 and report["skipped"] == []
    assert sorted(report["workspaces_created"]) == sorted(
        ["urbanismo", "recursos-humanos", "informatica", "comunicacao", "protecao-civil"]
    )
    again = json.loads(cli("documents", "import-corpus", str(CORPUS), "--json").output)
    assert (again["created"], again["unchanged"], again["workspaces_created"]) == (0, 25, [])
    via_import = json.loads(cli("documents", "import", str(CORPUS), "--json").output)  # the same, through `import`
    assert via_import["unchanged"] == 25

    async def setup(session):  # type: ignore[no-untyped-def]
        from concelho.plugins.workspaces.models import Workspace
        from concelho.plugins.workspaces.services import get_workspace, set_member
        from concelho.suite.users import get_user

        assert {w.visibility for w in (await session.execute(select(Workspace))).scalars()} == {"private"}
        await set_member(session, await get_workspace(session, "urbanismo"), await get_user(session, "rui"), "viewer")

    with_db(settings, setup)
    parecer = doc_named(settings, "parecer-tecnico-loteamento-quinta-da-ribeira.txt")
    assert "46 lotes" in versions_of(settings, parecer.id)[0].text
    salaries = doc_named(settings, "tabela-remuneratoria-2026-confidencial.txt")

    assert drain(app, settings).upserted >= 25
    hits = search_ids(app, settings, "rui", "loteamento Quinta da Ribeira")
    assert f"documents.document:{parecer.id}" in hits
    assert search_ids(app, settings, "eva", "loteamento Quinta da Ribeira") == set()
    assert search_ids(app, settings, None, "loteamento Quinta da Ribeira") == set()
    assert search_ids(app, settings, "rui", "tabela remuneratória") == set()  # not his workspace

    url = f"/intranet/espacos/urbanismo/documentos/d/{parecer.id}/"
    as_user(client, "rui")
    assert client.get(url).status_code == 200
    assert "46 lotes" in client.get(f"{url}descarregar").text
    assert client.get(f"/intranet/espacos/recursos-humanos/documentos/d/{salaries.id}/").status_code == 404
    as_user(client, "eva")
    assert client.get(url).status_code == 404 and client.get(f"{url}descarregar").status_code == 404


def test_staged_files_left_by_a_crashed_process_are_swept_at_start(settings):
    import os
    import time

    from concelho.suite.app import create_app
    from litestar.testing import TestClient

    tmp = storage_root(settings) / "tmp"
    tmp.mkdir(parents=True)
    (tmp / "up-old").write_bytes(b"half an upload")
    (tmp / "up-new").write_bytes(b"an upload in flight")
    old = time.time() - 7 * 3600
    os.utime(tmp / "up-old", (old, old))
    with TestClient(create_app(settings)):
        pass
    assert sorted(p.name for p in tmp.iterdir()) == ["up-new"]
