"""Content types of the council and territory sections, and the plugin object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from concelho.suite.content.types import ContentType, FieldSpec
from concelho.suite.i18n import N_
from concelho.suite.plugins import NavItem, Plugin

#: Section → URL of its root page (the page whose slug is the section name).
SECTIONS = ("camara", "concelho")
ROLES = ("presidente", "vice-presidente", "vereador")
DOC_KINDS = ("regulamento", "edital", "ata", "plano", "relatório", "outro")

EXECUTIVE_PATH = "/camara/executivo"
ORG_CHART_PATH = "/camara/organograma"
JOBS_PATH = "/camara/recrutamento"
DOCUMENTS_PATH = "/camara/documentos"


@dataclass(frozen=True)
class PageType(ContentType):
    """Pages live at ``/<section>/<slug>``; the root of a section (slug == section) at ``/<section>``."""

    def path_for(self, item: Any) -> str:
        section = (getattr(item, "data", None) or {}).get("section")
        return section_path(section if section in SECTIONS else SECTIONS[0], item.slug)

    def url(self, slug: str, language: str = "pt") -> str:
        # Without the item's data the section is unknown: /camara/<slug> redirects to the right section.
        path = f"/{slug}" if slug in SECTIONS else self.url_pattern.format(slug=slug)
        return path if language == "pt" else f"{path}?lang={language}"


@dataclass(frozen=True)
class AnchoredType(ContentType):
    """Items shown together on one page, each at an anchor (``/camara/executivo#slug``)."""

    def url(self, slug: str, language: str = "pt") -> str:
        base = self.section_url if language == "pt" else f"{self.section_url}?lang={language}"
        return f"{base}#{slug}"

    def url_for(self, item: Any) -> str:
        return self.url(item.slug, item.language)


def section_path(section: str, slug: str) -> str:
    return f"/{section}" if slug == section else f"/{section}/{slug}"


PAGE = PageType(
    name="pages.page",
    label=N_("Page"),
    url_pattern="/camara/{slug}",
    fields=(
        FieldSpec(
            "section",
            N_("Portal section"),
            "choice",
            required=True,
            choices=SECTIONS,
            help="camara: the council; concelho: the municipality and its territory.",
        ),
    ),
    hierarchical=True,
    schema_type="WebPage",
    extra={"import_aliases": ("page",)},
)

COUNCILLOR = AnchoredType(
    name="pages.councillor",
    label=N_("Executive member"),
    url_pattern=EXECUTIVE_PATH + "#{slug}",
    fields=(
        FieldSpec("role", N_("Role"), "choice", required=True, choices=ROLES),
        FieldSpec("portfolios", N_("Portfolios (one per line)"), "lines"),
        FieldSpec("party", N_("Party or list"), "text", max_length=200),
        FieldSpec("email", N_("Office e-mail"), "text", max_length=200),
        FieldSpec("photo_alt", N_("Photo description"), "text", max_length=300),
        FieldSpec("order", N_("Order"), "int"),
    ),
    schema_type="Person",
    section_label=N_("Executive"),
    section_url=EXECUTIVE_PATH,
    listed_in_sitemap=False,
    extra={"import_aliases": ("councillor",)},
)

JOB = ContentType(
    name="pages.job",
    label=N_("Job offer"),
    url_pattern=JOBS_PATH + "/{slug}",
    fields=(
        FieldSpec("reference", N_("Reference"), "text", required=True, max_length=100),
        FieldSpec("deadline", N_("Application deadline"), "date", required=True),
        FieldSpec("positions", N_("Positions"), "int"),
        FieldSpec("department", N_("Department"), "text", max_length=200),
        FieldSpec("regime", N_("Employment regime"), "text", max_length=200),
    ),
    schema_type="JobPosting",
    section_label=N_("Recruitment"),
    section_url=JOBS_PATH,
    extra={"import_aliases": ("job",)},
)

DOCUMENT = ContentType(
    name="pages.document",
    label=N_("Council document"),
    url_pattern=DOCUMENTS_PATH + "/{slug}",
    fields=(
        FieldSpec("doc_kind", N_("Kind of document"), "choice", required=True, choices=DOC_KINDS),
        FieldSpec("published_on", N_("Published on"), "date"),
        FieldSpec("version", N_("Version"), "text", max_length=100),
        FieldSpec("file_url", N_("File address (URL)"), "text", max_length=500),
    ),
    schema_type="DigitalDocument",
    section_label=N_("Documents and regulations"),
    section_url=DOCUMENTS_PATH,
    extra={"import_aliases": ("council_document",)},
)


class PagesPlugin(Plugin):
    name = "pages"
    label = "Pages"
    version = "0.1.0"
    models_module = None

    def content_types(self) -> list[ContentType]:
        return [PAGE, COUNCILLOR, JOB, DOCUMENT]

    def route_handlers(self) -> list[Any]:
        from .controllers import CamaraController, ConcelhoController

        return [CamaraController, ConcelhoController]

    def nav_items(self) -> list[NavItem]:
        return [
            NavItem(N_("Council"), "/camara", area="portal", order=20),
            NavItem(N_("Municipality"), "/concelho", area="portal", order=30),
        ]
