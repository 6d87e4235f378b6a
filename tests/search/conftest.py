"""Search backends under test: the embedded engine always; a live Meilisearch when ``SUITE_TEST_MEILI_URL`` is set.

Every backend gets the same behavioural tests; only the Meilisearch parameter may skip (no server).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from concelho.search.contract import SearchBackend

from .corpus import CORPUS, documents

BACKENDS = ("embedded", "meilisearch")
MEILI_URL = os.environ.get("SUITE_TEST_MEILI_URL", "")
MEILI_KEY = os.environ.get("SUITE_TEST_MEILI_KEY", "")


def make_backend(kind: str, folder: Path, synonyms: dict[str, list[str]] | None = None) -> SearchBackend:
    if kind == "embedded":
        from concelho.search.embedded import TantivyBackend

        backend: SearchBackend = TantivyBackend(folder / "search", synonyms=synonyms)
    else:
        if not MEILI_URL:
            pytest.skip("SUITE_TEST_MEILI_URL not set")
        try:
            from concelho.search.meili import MeilisearchBackend
        except ImportError as exc:  # pragma: no cover - written by another change
            pytest.fail(f"SUITE_TEST_MEILI_URL is set but search/meili.py cannot be imported: {exc}")
        backend = MeilisearchBackend(MEILI_URL, MEILI_KEY, f"test_{uuid.uuid4().hex[:12]}", synonyms=synonyms)
    backend.ensure_index()
    return backend


def drop_backend(backend: SearchBackend) -> None:
    """Remove a Meilisearch test index (the embedded one lives in a temporary folder)."""
    client, uid = getattr(backend, "client", None), getattr(backend, "uid", None)
    if client is not None and uid:
        with contextlib.suppress(Exception):
            client.delete_index(uid)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchBackend]:
    """An empty index (no synonyms) of each backend."""
    found = make_backend(request.param, tmp_path)
    yield found
    drop_backend(found)


@pytest.fixture(scope="module", params=BACKENDS)
def corpus_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchBackend]:
    """The shared corpus indexed once per backend, with the default synonyms."""
    if not CORPUS.exists():
        pytest.fail(f"the shared corpus is missing: {CORPUS}")
    from concelho.search.synonyms import DEFAULT_SYNONYMS

    found = make_backend(request.param, tmp_path_factory.mktemp("corpus"), synonyms=DEFAULT_SYNONYMS)
    found.upsert(documents())
    yield found
    drop_backend(found)
