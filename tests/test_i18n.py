"""Translations: every message in the code has a pt-PT translation, and pages follow the chosen language.

When ``test_every_message_has_a_portuguese_translation`` fails, run the two commands of docs/I18N.md
and translate the new entries of ``suite/locale/pt/LC_MESSAGES/messages.po``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from concelho.suite.i18n import template_gettext, translations

from .conftest import login

ROOT = Path(__file__).resolve().parents[1]
LOCALE_DIR = ROOT / "suite" / "locale"


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    """What ``pybabel extract -F babel.cfg .`` finds right now."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, str(ROOT / "babel.cfg"))
    template = Catalog()
    for filename, lineno, message, comments, context in extract_from_dir(str(ROOT), method_map, options_map):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def catalog(lang: str) -> Catalog:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def entry_strings(entry) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    """The translation(s) of a catalog entry: one, or one per plural form."""
    return entry.string if isinstance(entry.string, tuple) else (entry.string,)


def where(message) -> str:  # type: ignore[no-untyped-def]
    return ", ".join(f"{name}:{line}" for name, line in message.locations[:3])


def test_extraction_covers_templates_plugins_and_python_markers(extracted):
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    assert len(ids) > 100
    assert "Skip to main content" in ids  # templates/core
    assert "Raise an alert" in ids  # plugins/alerts/templates
    assert "Alerts" in ids  # N_() nav label of a plugin
    assert "Page not found" in ids  # N_() error titles (suite/errors.py)
    assert "Write the alert message." in ids  # N_() form errors (plugins/alerts/services.py)
    assert "Wrong username or password." in ids  # N_() login errors (suite/auth/controllers.py)
    assert "Hello, %(name)s" in ids  # _() with variables
    files = {name for m in extracted for name, _ in m.locations}
    assert not [name for name in files if name.startswith(("tests/", ".venv/"))]


def test_every_message_has_a_portuguese_translation(extracted):
    pt = catalog("pt")
    untranslated = []
    for message in extracted:
        if not message.id:
            continue
        entry = pt.get(message.id, context=message.context)
        if entry is None or entry.fuzzy or not all(entry_strings(entry)):
            label = message.id if isinstance(message.id, str) else message.id[0]
            untranslated.append(f"{label!r} ({where(message)})")
    assert not untranslated, (
        f"{len(untranslated)} message(s) without a Portuguese translation; run the commands in docs/I18N.md "
        "and translate them in suite/locale/pt/LC_MESSAGES/messages.po:\n" + "\n".join(untranslated)
    )


def test_english_catalog_lists_every_message(extracted):
    en = catalog("en")
    missing = [m.id for m in extracted if m.id and en.get(m.id, context=m.context) is None]
    assert not missing, f"run the commands in docs/I18N.md to update suite/locale/en: {missing}"


@pytest.mark.parametrize("lang", ["pt", "en"])
def test_catalogs_are_well_formed(lang):
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog(lang).check()]
    assert not problems  # e.g. a %(name)s placeholder lost in translation


def test_portuguese_is_european_and_keeps_placeholders():
    gettext, ngettext = template_gettext("pt")
    assert gettext("Sign in") == "Iniciar sessão"
    assert gettext("Sign out") == "Terminar sessão"
    assert gettext("Password") == "Palavra-passe"
    assert gettext("Skip to main content") == "Saltar para o conteúdo principal"
    assert gettext("Accessibility statement") == "Declaração de acessibilidade"
    assert gettext("Home") == "Página inicial"
    assert gettext("Hello, %(name)s", name="Maria") == "Olá, Maria"
    throttled = "Too many failed attempts. Try again in %(minutes)s minute(s)."
    assert "3 minuto(s)" in gettext(throttled, minutes=3)
    assert ngettext("%(num)d item", "%(num)d items", 1) == "1 elemento"
    assert ngettext("%(num)d item", "%(num)d items", 2) == "2 elementos"
    assert translations("en").gettext("Sign in") == "Sign in"  # English shows the message ids


def test_pages_are_portuguese_by_default_and_english_on_request(client):
    portuguese = client.get("/accessibility")
    assert '<html lang="pt-PT">' in portuguese.text
    for text in (
        "Saltar para o conteúdo principal",
        "<h1>Declaração de acessibilidade</h1>",
        "Página inicial",
    ):
        assert text in portuguese.text
    for text in ("Skip to main content", "Accessibility statement", ">Home<"):
        assert text not in portuguese.text

    english = client.get("/accessibility?lang=en")
    assert '<html lang="en">' in english.text
    for text in ("Skip to main content", "<h1>Accessibility statement</h1>", ">Home<"):
        assert text in english.text
    assert "Saltar para o conteúdo" not in english.text and "Declaração" not in english.text


def test_messages_from_python_code_are_translated(client, make_user):
    failed = login(client, "ninguem", "palavra-errada")
    assert failed.status_code == 400
    assert "Nome de utilizador ou palavra-passe incorretos." in failed.text
    assert "<h1>Iniciar sessão</h1>" in failed.text and "Palavra-passe" in failed.text

    missing = client.get("/nada/aqui")
    assert "<h1>Página não encontrada</h1>" in missing.text
    assert "O endereço pedido não existe." in missing.text

    make_user("ana")
    login(client, "ana")
    denied = client.get("/admin/")
    assert denied.status_code == 403
    assert "<h1>Acesso negado</h1>" in denied.text and "Não tem permissão para fazer isto." in denied.text
    english = client.get("/admin/?lang=en")
    assert "<h1>Access denied</h1>" in english.text
    assert "You do not have permission to do this" in english.text
