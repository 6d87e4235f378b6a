"""The news plugin object."""

from __future__ import annotations

from typing import Any

from concelho.suite.content.types import ContentType
from concelho.suite.plugins import NavItem, Plugin

CATEGORIES = (
    "obras", "cultura", "ambiente", "educação", "desporto", "proteção civil", "executivo", "orçamento",
    "mobilidade", "saúde", "social", "turismo",
)  # fmt: skip

ARTICLE = ContentType(
    name="news.article",
    label="News article",
    url_pattern="/noticias/{slug}",
    categories=CATEGORIES,
    schema_type="NewsArticle",
    section_label="News",
    section_url="/noticias",
    extra={"import_aliases": ("news",)},
)


class NewsPlugin(Plugin):
    name = "news"
    label = "News"
    version = "0.1.0"
    models_module = None

    def content_types(self) -> list[ContentType]:
        return [ARTICLE]

    def route_handlers(self) -> list[Any]:
        from .controllers import NewsController

        return [NewsController]

    def nav_items(self) -> list[NavItem]:
        return [NavItem("News", "/noticias", area="portal", order=10)]

    def template_hooks(self) -> dict[str, Any]:
        from .controllers import latest_news_block

        return {"home_main": latest_news_block}
