"""RSS 2.0 and Atom 1.0 documents for news items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.etree.ElementTree import Element, SubElement, tostring

from concelho.suite.content.markdown import plain_text
from concelho.suite.content.models import ContentItem

ATOM_NS = "http://www.w3.org/2005/Atom"


def _when(item: ContentItem) -> datetime:
    value = item.published_at or item.created_at
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def rss(
    title: str, link: str, self_url: str, description: str, language: str, items: Sequence[tuple[ContentItem, str]]
) -> bytes:
    root = Element("rss", {"version": "2.0", "xmlns:atom": ATOM_NS})
    channel = SubElement(root, "channel")
    SubElement(channel, "title").text = title
    SubElement(channel, "link").text = link
    SubElement(channel, "description").text = description
    SubElement(channel, "language").text = "pt-PT" if language == "pt" else "en"
    SubElement(channel, "atom:link", {"href": self_url, "rel": "self", "type": "application/rss+xml"})
    if items:
        SubElement(channel, "lastBuildDate").text = format_datetime(max(_when(i) for i, _ in items))
    for item, url in items:
        node = SubElement(channel, "item")
        SubElement(node, "title").text = item.title
        SubElement(node, "link").text = url
        SubElement(node, "guid", {"isPermaLink": "true"}).text = url
        SubElement(node, "pubDate").text = format_datetime(_when(item))
        SubElement(node, "description").text = item.summary or plain_text(item.body, 300)
        if item.category:
            SubElement(node, "category").text = item.category
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode()


def atom(title: str, link: str, self_url: str, language: str, items: Sequence[tuple[ContentItem, str]]) -> bytes:
    root = Element("feed", {"xmlns": ATOM_NS, "xml:lang": "pt-PT" if language == "pt" else "en"})
    SubElement(root, "title").text = title
    SubElement(root, "id").text = self_url
    SubElement(root, "link", {"href": link, "rel": "alternate", "type": "text/html"})
    SubElement(root, "link", {"href": self_url, "rel": "self", "type": "application/atom+xml"})
    updated = max((_when(i) for i, _ in items), default=datetime.now(UTC))
    SubElement(root, "updated").text = updated.isoformat()
    author = SubElement(root, "author")
    SubElement(author, "name").text = title
    for item, url in items:
        entry = SubElement(root, "entry")
        SubElement(entry, "title").text = item.title
        SubElement(entry, "id").text = url
        SubElement(entry, "link", {"href": url, "rel": "alternate", "type": "text/html"})
        SubElement(entry, "published").text = _when(item).isoformat()
        SubElement(entry, "updated").text = (
            item.updated_at if item.updated_at.tzinfo else item.updated_at.replace(tzinfo=UTC)
        ).isoformat()
        SubElement(entry, "summary").text = item.summary or plain_text(item.body, 300)
        if item.category:
            SubElement(entry, "category", {"term": item.category})
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode()
