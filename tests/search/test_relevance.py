"""Relevance over the shared corpus: MRR and recall@5 of the judged queries, with a floor per backend.

The floors sit a little below what was measured (printed on every run), so a ranking change that
makes results worse fails here.  Embedded engine, measured: MRR 0.994, recall@5 0.995 (89 queries).
"""

from __future__ import annotations

import pytest
from concelho.search.contract import SearchBackend, SearchQuery

from .corpus import doc_id
from .relevance_queries import QUERIES

#: backend → (MRR floor, recall@5 floor)
FLOORS = {"embedded": (0.95, 0.95), "meilisearch": (0.80, 0.80)}


def measure(backend: SearchBackend) -> tuple[float, float, list[str]]:
    reciprocal_ranks: list[float] = []
    recalls: list[float] = []
    misses: list[str] = []
    for text, expected, visibility in QUERIES:
        wanted = {doc_id(e) for e in expected}
        result = backend.search(SearchQuery(text, visibility=visibility, limit=10, facets=()))  # type: ignore[arg-type]
        found = [h.id for h in result.hits]
        rank = next((i + 1 for i, hit in enumerate(found) if hit in wanted), None)
        reciprocal_ranks.append(1 / rank if rank else 0.0)
        recalls.append(len(wanted & set(found[:5])) / len(wanted))
        if rank != 1 or recalls[-1] < 1:
            misses.append(f"{text!r}: first relevant at {rank}, recall@5 {recalls[-1]:.2f}, top {found[:5]}")
    return sum(reciprocal_ranks) / len(QUERIES), sum(recalls) / len(QUERIES), misses


def test_there_are_enough_judged_queries():
    assert len(QUERIES) >= 40
    assert len({q for q, _, _ in QUERIES}) >= 40


def test_relevance_floor(corpus_backend: SearchBackend, capsys: pytest.CaptureFixture[str]):
    mrr, recall, misses = measure(corpus_backend)
    with capsys.disabled():
        print(f"\n[{corpus_backend.name}] {len(QUERIES)} queries: MRR {mrr:.3f}, recall@5 {recall:.3f}")
        for miss in misses:
            print("   ", miss)
    mrr_floor, recall_floor = FLOORS[corpus_backend.name]
    assert mrr >= mrr_floor, misses
    assert recall >= recall_floor, misses


def test_visibility_holds_over_the_corpus(corpus_backend: SearchBackend):
    """Confidential workspace documents never reach an anonymous visitor, an employee or another workspace."""
    from .corpus import ANONYMOUS, EMPLOYEE, member_of

    confidential = {doc_id(i) for i in ("workspace-006", "workspace-007", "workspace-021", "workspace-025")}
    comunicacao = {doc_id(f"workspace-{i:03d}") for i in range(16, 21)}
    for text in ("tabela remuneratória", "processo disciplinar", "plano de segurança", "contactos de emergência"):
        for visibility in (ANONYMOUS, EMPLOYEE, member_of("comunicacao")):
            result = corpus_backend.search(SearchQuery(text, visibility=visibility, limit=50))
            workspace_hits = {h.id for h in result.hits if h.type == "workspaces.document"}
            assert not workspace_hits & confidential, (text, visibility)
            assert workspace_hits <= comunicacao
            assert result.facets.get("type", {}).get("workspaces.document", 0) == len(workspace_hits)
    rh = corpus_backend.search(SearchQuery("tabela remuneratória", visibility=member_of("recursos-humanos")))
    assert rh.hits[0].id == doc_id("workspace-006")


def test_facet_counts_agree_with_totals(corpus_backend: SearchBackend):
    """Facets come from a lighter query than the hits: both must see exactly the same documents."""
    for text, _, visibility in QUERIES:
        result = corpus_backend.search(SearchQuery(text, visibility=visibility, facets=("type", "language")))  # type: ignore[arg-type]
        assert sum(result.facets["type"].values()) == result.total, text
        assert sum(result.facets["language"].values()) == result.total, text
