"""The services plugin object: the ``services.service`` content type and the plugin settings."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from concelho.suite.content.types import ContentType, FieldSpec
from concelho.suite.i18n import N_
from concelho.suite.plugins import NavItem, Plugin, PluginError

if TYPE_CHECKING:
    from concelho.suite.settings import Settings

#: The categories of the service catalogue, in the order the catalogue shows them.
CATEGORIES = (
    "Atendimento e Informação", "Certidões", "Urbanismo", "Licenciamento de Atividades", "Espaço Público",
    "Mobilidade e Estacionamento", "Ambiente e Resíduos", "Água e Saneamento", "Proteção Civil", "Animais",
    "Educação", "Desporto e Juventude", "Cultura e Associativismo", "Ação Social", "Habitação",
    "Finanças e Impostos", "Cemitérios", "Mercados e Feiras", "Participação", "Modelos e Formulários",
)  # fmt: skip
#: English headings of the categories (the stored value stays the Portuguese one).
CATEGORY_LABELS_EN = {
    "Atendimento e Informação": "Customer service and information", "Certidões": "Certificates",
    "Urbanismo": "Planning and building", "Licenciamento de Atividades": "Business licensing",
    "Espaço Público": "Public space", "Mobilidade e Estacionamento": "Transport and parking",
    "Ambiente e Resíduos": "Environment and waste", "Água e Saneamento": "Water and sanitation",
    "Proteção Civil": "Civil protection", "Animais": "Animals", "Educação": "Education",
    "Desporto e Juventude": "Sport and youth", "Cultura e Associativismo": "Culture and associations",
    "Ação Social": "Social support", "Habitação": "Housing", "Finanças e Impostos": "Finance and taxes",
    "Cemitérios": "Cemeteries", "Mercados e Feiras": "Markets and fairs", "Participação": "Participation",
    "Modelos e Formulários": "Forms and templates",
}  # fmt: skip
CHANNELS = ("online", "presencial", "telefone", "correio")
CODE_PATTERN = r"[A-Z0-9]+(?:-[A-Z0-9]+)*"
#: One downloadable form template per line: ``Title|URL`` (a local path or an http(s) address).
FORM_TEMPLATE_PATTERN = r"[^|\r\n]+\|[ \t]*(?:https?://|/(?!/))\S+"
FEATURED_DEFAULT_COUNT = 6
#: One extra field of the online request form per line: ``name|Label|kind|required|choice1;choice2``
#: (kind: text, number, date, choice, multichoice or file; the last two parts are optional).
REQUEST_FIELD_PATTERN = (
    r"[a-z][a-z0-9_]{0,39}\|[^|\r\n]+\|(?:text|number|date|choice|multichoice|file)"
    r"(?:\|(?:required|optional)?(?:\|[^|\r\n]*)?)?"
)

SERVICE = ContentType(
    name="services.service",
    label="Service",
    url_pattern="/servicos/{slug}",
    fields=(
        FieldSpec("service_code", N_("Service code"), required=True, max_length=40, pattern=CODE_PATTERN,
                  pattern_error=N_("Use uppercase letters, digits and dashes, like CERT-RES.")),
        FieldSpec("description", N_("Description"), "textarea"),
        FieldSpec("who_may_ask", N_("Who may ask"), "textarea"),
        FieldSpec("required_documents", N_("Required documents (one per line)"), "lines"),
        FieldSpec("fee", N_("Fee"), max_length=300),
        FieldSpec("channels", N_("Channels"), "multichoice", choices=CHANNELS),
        FieldSpec("processing_days", N_("Processing time (working days)"), "int", min_value=0, max_value=3650),
        FieldSpec("online", N_("Can be requested online"), "bool"),
        FieldSpec("form_templates", N_("Form templates (one per line: Title|URL)"), "lines",
                  pattern=FORM_TEMPLATE_PATTERN,
                  pattern_error=N_("Write one form per line as Title|URL, with a local path or an http(s) address.")),
        FieldSpec("legal_basis", N_("Legal basis"), max_length=500),
        FieldSpec("request_fields", N_("Online request fields (one per line: name|Label|kind|required|choices)"),
                  "lines", pattern=REQUEST_FIELD_PATTERN,
                  pattern_error=N_("Write one field per line as name|Label|kind|required|choice1;choice2, with kind "
                                   "text, number, date, choice, multichoice or file.")),
    ),
    categories=CATEGORIES,
    schema_type="GovernmentService",
    section_label=N_("Services"),
    section_url="/servicos",
    extra={"import_aliases": ("service",)},
)  # fmt: skip


def parse_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """Validated ``[plugins.services]`` settings (raises :class:`PluginError` naming the bad one)."""
    request_url = str(raw.get("request_url") or "").strip()
    if request_url:
        local = request_url.startswith("/") and not request_url.startswith("//")
        if not (local or request_url.startswith(("https://", "http://"))):
            raise PluginError(
                f"[plugins.services] request_url must be a local path like /pedidos/{{code}} or an http(s) URL, "
                f"got {request_url!r}"
            )
        unknown = set(re.findall(r"\{[^}]*\}", request_url)) - {"{code}", "{slug}"}
        if unknown:
            raise PluginError(f"[plugins.services] request_url may only use {{code}} and {{slug}}, not {unknown}")
    featured = raw.get("featured") or []
    if isinstance(featured, str):
        featured = [code.strip() for code in featured.split(",")]
    if not isinstance(featured, list):
        raise PluginError("[plugins.services] featured must be a list of service codes")
    codes = [str(code).strip() for code in featured if str(code).strip()]
    bad = [code for code in codes if not re.fullmatch(CODE_PATTERN, code)]
    if bad:
        raise PluginError(f"[plugins.services] featured has codes that are not service codes: {', '.join(bad)}")
    return {**raw, "request_url": request_url, "featured": codes}


class ServicesPlugin(Plugin):
    name = "services"
    label = "Services"
    version = "0.1.0"
    models_module = None

    def default_settings(self) -> dict[str, Any]:
        return {
            # URL template of the online request form ({code}, {slug}); empty hides the "Request online" button.
            "request_url": "",
            # Service codes of the home page's "Most used services"; empty: the first online services.
            "featured": [],
        }

    def configure(self, settings: Settings) -> None:
        self.settings = self.settings_for(settings)

    def settings_for(self, settings: Settings) -> dict[str, Any]:
        """The effective settings of one app (plugin objects are shared by every app of the process)."""
        return parse_settings({**self.default_settings(), **settings.for_plugin(self.name)})

    def content_types(self) -> list[ContentType]:
        return [SERVICE]

    def route_handlers(self) -> list[Any]:
        from .controllers import ServicesController

        return [ServicesController]

    def nav_items(self) -> list[NavItem]:
        return [NavItem(N_("Services"), "/servicos", area="portal", order=20)]

    def template_hooks(self) -> dict[str, Any]:
        from .controllers import featured_services_block

        return {"home_main": featured_services_block}
