"""Tables of the search integration (core namespace ``core_search_*``).

* :class:`SearchOutbox` — the transactional outbox: every content change adds a row in the same
  database transaction as the change; the indexer (``search/indexing.py``) drains it.
* :class:`SearchMiss` — queries that found nothing (editors' report).
* :class:`SearchBestBet` — results pinned by editors for a query.
* :class:`SearchSynonym` — synonyms editors maintain; given to the engine with ``configure_synonyms``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from concelho.suite import db  # noqa: F401  (naming convention)
from sqlalchemy import JSON, Column, DateTime, Text
from sqlmodel import Field, SQLModel

ACTIONS = ("upsert", "delete")


def utcnow() -> datetime:
    return datetime.now(UTC)


class SearchOutbox(SQLModel, table=True):
    __tablename__ = "core_search_outbox"

    id: int | None = Field(default=None, primary_key=True)
    #: ``<type>:<pk>`` (``news.article:42``).
    doc_id: str = Field(max_length=200, index=True)
    #: ``upsert`` or ``delete`` — informational: the indexer always re-reads the current row.
    action: str = Field(default="upsert", max_length=10)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class SearchMiss(SQLModel, table=True):
    __tablename__ = "core_search_miss"

    id: int | None = Field(default=None, primary_key=True)
    #: Normalised query (lower case, single spaces).
    query: str = Field(max_length=200, unique=True)
    count: int = Field(default=1)
    first_seen: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    last_seen: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)


class SearchBestBet(SQLModel, table=True):
    __tablename__ = "core_search_best_bet"

    id: int | None = Field(default=None, primary_key=True)
    #: Normalised query the result is pinned for.
    query: str = Field(max_length=200, index=True)
    #: A search document (``services.service:12``), shown only to who may see it …
    doc_id: str = Field(default="", max_length=200)
    #: … or a plain link (always public).
    title: str = Field(default="", max_length=300)
    url: str = Field(default="", max_length=500)
    sort_order: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class SearchSynonym(SQLModel, table=True):
    __tablename__ = "core_search_synonym"

    id: int | None = Field(default=None, primary_key=True)
    term: str = Field(max_length=100, unique=True)
    synonyms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Two-way: every synonym also finds the term (and the others).
    mutual: bool = Field(default=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
