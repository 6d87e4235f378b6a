"""Languages (pt-PT default, English) with Babel catalogs.

Message ids are English; ``suite/locale/<lang>/LC_MESSAGES/messages.po`` holds the
translations (docs/I18N.md tells how to re-extract).  Strings defined in Python and
translated later by a template's ``_()`` are marked with :func:`N_`.  Catalogs are
compiled in memory at start-up, so the wheel ships only the ``.po`` sources.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from .paths import LOCALE_DIR
from .settings import LANGUAGES

LANGUAGE_NAMES = {"pt": "Português", "en": "English"}
HTML_LANG = {"pt": "pt-PT", "en": "en"}
LANG_COOKIE = "suite_lang"


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (it is translated where shown)."""
    return message


@cache
def translations(lang: str) -> NullTranslations:
    po_path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not po_path.is_file():
        return NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


@cache
def template_gettext(lang: str) -> tuple[Callable[..., str], Callable[..., str]]:
    """``_("Hello, %(name)s", name=x)`` and ``ngettext`` for templates (autoescape escapes the result)."""
    trans = translations(lang)

    def gettext(message: str, /, **variables: object) -> str:
        text = trans.gettext(message)
        return text % variables if variables else text

    def ngettext(singular: str, plural: str, n: int, /, **variables: object) -> str:
        text = trans.ngettext(singular, plural, n)
        return text % {"num": n, **variables}

    return gettext, ngettext


def negotiate(query_lang: str | None, cookie_lang: str | None, accept: str | None, default: str) -> str:
    """Pick the language: explicit ``?lang=`` > cookie > Accept-Language > default."""
    for candidate in (query_lang, cookie_lang):
        if candidate in LANGUAGES:
            return candidate  # type: ignore[return-value]
    if accept:
        for part in accept.split(","):
            code = part.split(";")[0].strip().lower()[:2]
            if code in LANGUAGES:
                return code
    return default
