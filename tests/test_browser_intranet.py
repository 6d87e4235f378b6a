"""The intranet in real Chromium: a private workspace, two versions of a document, a read-only share.

Same policy as tests/test_browser.py: skipped without Chromium unless ``SUITE_TEST_REQUIRE_BROWSER=1``.
The demo staff (``suite demo load``) sign in with the demo password.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from .browser_fixtures import Server, open_tab

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = pytest.mark.browser

DEMO_PASSWORD = "demo-password-2026"


def sign_in_as(page, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/intranet/?$"))


def test_private_workspace_versions_read_only_share_and_no_access_for_others(browser, server: Server, tmp_path: Path):
    from .browser_fixtures import ADMIN_EMAIL, ADMIN_PASSWORD

    owner = open_tab(browser, server, lang="en")
    colleague = open_tab(browser, server, lang="en")
    outsider = open_tab(browser, server, lang="en")
    try:
        page = owner.page
        sign_in_as(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        name = f"Plano de emergência {uuid.uuid4().hex[:6]}"
        page.goto("/intranet/espacos/novo")
        page.fill("#ws-name", name)
        page.check("input[name=visibility][value=private]")
        page.locator("form.form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/intranet/espacos/[a-z0-9-]+/?$"))
        workspace_url = page.url.split(server.url, 1)[1].rstrip("/") + "/"

        first = tmp_path / "plano.txt"
        first.write_text("Versão 1 do plano de emergência municipal.\n", encoding="utf-8")
        page.goto(workspace_url + "documentos/")
        page.set_input_files("#files", str(first))
        page.locator("form[data-documents-dropzone] button[type=submit]").click()
        page.get_by_role("link", name="plano.txt").first.click()
        page.wait_for_url(re.compile(r"/documentos/d/\d+/?$"))
        document_url = page.url.split(server.url, 1)[1].rstrip("/") + "/"

        second = tmp_path / "plano-v2.txt"
        second.write_text("Versão 2 do plano de emergência municipal, revista.\n", encoding="utf-8")
        page.set_input_files("#version-file", str(second))
        page.locator("form[action$='versoes'] button[type=submit]").click()
        page.wait_for_url(re.compile(r"/documentos/d/\d+/"))
        page.goto(document_url)
        history = page.locator("body").inner_text()
        assert "Restore this version" in history  # version 1 can be brought back

        old = page.request.get(document_url + "descarregar?v=1")
        assert old.status == 200 and old.body().decode("utf-8").startswith("Versão 1")
        assert old.headers["content-disposition"].startswith("attachment")

        page.goto(document_url)
        page.fill("#share-username", "carla.sousa")
        page.select_option("#share-permission", "read")
        page.locator("form:has(#share-username) button[type=submit]").click()
        page.goto(document_url)
        assert "carla.sousa" in page.locator("body").inner_text() or "Carla" in page.locator("body").inner_text()

        # The colleague reads the shared document but cannot add a version.
        cpage = colleague.page
        sign_in_as(cpage, "carla.sousa", DEMO_PASSWORD)
        cpage.goto("/intranet/documentos/partilhados")
        cpage.get_by_role("link", name=re.compile(r"plano")).first.click()
        cpage.wait_for_url(re.compile(r"/documentos/d/\d+/?$"))
        assert cpage.locator("#version-file").count() == 0
        current = cpage.request.get(document_url + "descarregar")
        assert current.status == 200 and current.body().decode("utf-8").startswith("Versão 2")
        refused = cpage.request.post(document_url + "versoes", multipart={"file": {
            "name": "x.txt", "mimeType": "text/plain", "buffer": b"hack"}})  # fmt: skip
        assert refused.status in (403, 404)

        # Someone else gets 404 on every URL of the private workspace.
        opage = outsider.page
        sign_in_as(opage, "diogo.pires", DEMO_PASSWORD)
        for url in (
            workspace_url,
            workspace_url + "membros",
            workspace_url + "documentos/",
            document_url,
            document_url + "descarregar",
            document_url + "ver",
        ):
            response = opage.request.get(url)
            assert response.status == 404, url
    finally:
        for tab in (owner, colleague, outsider):
            tab.page.context.close()
