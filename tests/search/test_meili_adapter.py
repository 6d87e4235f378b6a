"""The Meilisearch backend against an HTTP fake of Meilisearch's documented API (``meili_fake.py``).

What is checked is what the adapter *sends*: index creation, the settings payload, document
batches, the filter expression of every visibility, the swap on a full rebuild, waiting for every
task, the API key header, and that failures become ``SearchUnavailable``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from concelho.search.contract import SearchDocument, SearchQuery, SearchUnavailable, Visibility
from concelho.search.meili import (
    FILTERABLE,
    RANKING_RULES,
    SEARCHABLE,
    MeilisearchBackend,
    decode_key,
    encode_key,
    query_filters,
    visibility_filter,
)

from .meili_fake import FakeMeili, serve

KEY = "master-key-for-tests-0123456789"
UID = "concelho_documents"


@pytest.fixture
def fake() -> Iterator[FakeMeili]:
    found = FakeMeili(api_key=KEY)
    server, thread = serve(found)
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def meili(fake: FakeMeili) -> MeilisearchBackend:
    return MeilisearchBackend(fake.url, KEY, "concelho", synonyms={"lixo": ["resíduos"]})


def doc(n: int, **fields) -> SearchDocument:  # type: ignore[no-untyped-def]
    values = {
        "id": f"news.article:{n}",
        "type": "news.article",
        "title": f"Notícia {n}",
        "url": f"/noticias/noticia-{n}",
        "summary": f"Resumo {n}",
        "published_at": datetime(2026, 1, 1, 12, tzinfo=UTC),
    }
    values.update(fields)
    return SearchDocument(**values)


def waited_for_every_task(fake: FakeMeili) -> bool:
    """Every task the adapter started was polled until it was no longer ``processing``."""
    return all(fake.task_polls.get(uid, 0) >= 2 for uid in fake.tasks)


# ------------------------------------------------------------------------------------------------
def test_ensure_index_creates_the_index_and_sends_every_setting(fake, meili):
    meili.ensure_index()
    calls = [(r.method, r.path) for r in fake.requests if not r.path.startswith("/tasks/")]
    assert calls == [
        ("GET", f"/indexes/{UID}"),
        ("POST", "/indexes"),
        ("PATCH", f"/indexes/{UID}/settings"),
    ]
    assert fake.calls("POST", path="/indexes")[0].body == {"uid": UID, "primaryKey": "key"}
    settings = fake.calls("PATCH")[0].body
    assert settings["searchableAttributes"] == ["title", "summary", "tags", "body"] == SEARCHABLE
    assert set(settings["filterableAttributes"]) == {
        "type", "category", "section", "language", "audience", "workspace_ids", "department_ids",
    } == set(FILTERABLE)  # fmt: skip
    assert settings["sortableAttributes"] == ["published_at"]
    assert settings["rankingRules"] == RANKING_RULES and settings["rankingRules"][-1] == "published_at:desc"
    assert settings["rankingRules"][:4] == ["words", "typo", "proximity", "attribute"]
    assert settings["typoTolerance"]["enabled"] is True
    assert {"de", "da", "do", "e", "o", "a", "para", "com"} <= set(settings["stopWords"])
    assert settings["synonyms"] == {"lixo": ["resíduos"]}
    assert waited_for_every_task(fake)
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in fake.requests)

    fake.reset()
    meili.ensure_index()  # idempotent: the index exists, settings are sent again
    assert [(r.method, r.path) for r in fake.requests if not r.path.startswith("/tasks/")] == [
        ("GET", f"/indexes/{UID}"),
        ("PATCH", f"/indexes/{UID}/settings"),
    ]


def test_documents_are_sent_in_batches_with_an_encoded_primary_key(fake, meili):
    meili.ensure_index()
    fake.reset()
    docs = [doc(n, workspace_ids=[7] if n == 1 else [], department_ids=[3] if n == 2 else []) for n in range(2500)]
    meili.upsert(docs)
    batches = fake.calls("POST", f"/indexes/{UID}/documents")
    assert [len(b.body) for b in batches] == [1000, 1000, 500]
    assert all(b.query == {"primaryKey": ["key"]} for b in batches)
    first = batches[0].body[1]
    assert first["key"] == "news-2earticle-3a1" and decode_key(first["key"]) == "news.article:1"
    assert first["id"] == "news.article:1" and first["workspace_ids"] == [7] and first["audience"] == "public"
    assert first["published_at"] == int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp())
    assert set(first) >= {"title", "summary", "body", "tags", "category", "section", "language", "url"}
    assert waited_for_every_task(fake)
    assert len(fake.indexes[UID]["docs"]) == 2500

    fake.reset()
    meili.delete(["news.article:1", "news.article:2"])
    [deletion] = fake.calls("POST")
    assert deletion.path == f"/indexes/{UID}/documents/delete-batch"
    assert deletion.body == ["news-2earticle-3a1", "news-2earticle-3a2"]
    assert waited_for_every_task(fake) and len(fake.indexes[UID]["docs"]) == 2498


def test_the_first_write_configures_a_missing_index(fake, meili):
    meili.upsert([doc(1)])
    paths = [(r.method, r.path) for r in fake.requests if not r.path.startswith("/tasks/")]
    assert paths[:3] == [("GET", f"/indexes/{UID}"), ("POST", "/indexes"), ("PATCH", f"/indexes/{UID}/settings")]
    assert paths[3] == ("POST", f"/indexes/{UID}/documents")


@pytest.mark.parametrize(
    ("visibility", "expected"),
    [
        (Visibility.anonymous(), 'audience = "public"'),
        (Visibility(authenticated=True), '(audience = "public" OR audience = "internal")'),
        (
            Visibility(authenticated=True, workspace_ids=frozenset({7, 3})),
            '(audience = "public" OR audience = "internal" OR (audience = "workspace" AND workspace_ids IN [3, 7]))',
        ),
        (
            Visibility(department_ids=frozenset({4})),
            '(audience = "public" OR (audience = "internal" AND department_ids IN [4]))',
        ),
        (
            Visibility(authenticated=True, workspace_ids=frozenset({2}), department_ids=frozenset({4})),
            '(audience = "public" OR audience = "internal" OR (audience = "workspace" AND workspace_ids IN [2]))',
        ),
        (Visibility(everything=True), None),
    ],
    ids=["anonymous", "employee", "member", "department-only", "employee-department", "everything"],
)
def test_visibility_becomes_a_filter_expression(fake, meili, visibility, expected):
    assert visibility_filter(visibility) == expected
    meili.ensure_index()
    fake.reset()
    meili.search(SearchQuery("obras", visibility=visibility))
    search, suggestion = fake.searches()  # nothing found: a second search looks for a suggestion
    assert search["filter"] == suggestion["filter"] == ([expected] if expected else [])


def test_search_request_and_response(fake, meili):
    meili.upsert(
        [
            doc(1, title="Obras na escola", summary='Obras <script>alert("x")</script> na escola', category="obras"),
            doc(2, title="Obras na ponte", summary="Ponte fechada", category="mobilidade", language="en"),
        ]
    )
    fake.reset()
    query = SearchQuery(
        "obras",
        visibility=Visibility(authenticated=True),
        filters={"type": ["news.article", 'we"ird'], "language": ["pt"]},
        limit=5,
        offset=10,
    )
    meili.search(query)
    body = fake.searches()[0]
    assert body["q"] == "obras" and body["limit"] == 5 and body["offset"] == 10
    assert body["filter"] == [
        '(audience = "public" OR audience = "internal")',
        'type IN ["news.article", "we\\"ird"]',
        'language IN ["pt"]',
    ]
    assert body["facets"] == ["type", "category", "section", "language"]
    assert body["attributesToHighlight"] == ["title", "summary", "body"]
    assert body["attributesToCrop"] == ["summary", "body"] and "sort" not in body

    fake.reset()
    result = meili.search(SearchQuery("obras", sort="recent"))
    assert fake.searches()[0]["sort"] == ["published_at:desc"]
    assert result.total == 2 and [h.id for h in result.hits] == ["news.article:1", "news.article:2"]
    first = result.hits[0]
    assert first.snippet == "<mark>Obras</mark> &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; na escola"
    assert first.published_at == datetime(2026, 1, 1, 12, tzinfo=UTC) and first.category == "obras"
    assert result.facets["category"] == {"obras": 1, "mobilidade": 1}
    assert result.suggestion is None
    assert query_filters(SearchQuery("x", visibility=Visibility(everything=True))) == []


def test_no_hits_asks_for_a_suggestion(fake, meili):
    meili.upsert([doc(1, title="Biblioteca municipal")])
    fake.reset()
    result = meili.search(SearchQuery("bibliotecca municipl"))
    assert result.total == 0
    first, second = fake.searches()
    assert "matchingStrategy" not in first
    assert second["matchingStrategy"] == "frequency" and second["showMatchesPosition"] is True
    assert second["filter"] == ['audience = "public"']
    # No document shares a word with the query (the fake knows no typos): no suggestion …
    assert result.suggestion is None
    # … a document matching some of the words: those words are offered (never the query itself).
    assert meili.search(SearchQuery("biblioteka municipal")).suggestion == "municipal"
    assert meili._suggest(SearchQuery("municipal")) is None


def test_counts(fake, meili):
    meili.upsert([doc(1), doc(2), doc(3, type="services.service", id="services.service:3")])
    fake.reset()
    assert meili.counts_by_type() == {"news.article": 2, "services.service": 1}
    assert fake.searches()[0] == {"q": "", "limit": 0, "facets": ["type"]}
    fake.reset()
    assert meili.count(Visibility.anonymous(), "news.article") == 3  # the fake does not evaluate filters
    assert fake.searches()[0] == {
        "q": "", "filter": ['audience = "public"', 'type = "news.article"'], "hitsPerPage": 0, "page": 1,
    }  # fmt: skip


def test_rebuild_fills_a_new_index_and_swaps_it_in(fake, meili):
    meili.upsert([doc(1), doc(2)])
    fake.reset()
    meili.rebuild([doc(3), doc(4), doc(5)])
    calls = [(r.method, r.path) for r in fake.requests if not r.path.startswith("/tasks/")]
    create = fake.calls("POST", path="/indexes")[0].body
    fresh = create["uid"]
    assert fresh.startswith(f"{UID}_rebuild_") and create["primaryKey"] == "key"
    assert calls == [
        ("POST", "/indexes"),
        ("PATCH", f"/indexes/{fresh}/settings"),
        ("POST", f"/indexes/{fresh}/documents"),
        ("GET", f"/indexes/{UID}"),
        ("POST", "/swap-indexes"),
        ("DELETE", f"/indexes/{fresh}"),
    ]
    assert fake.calls("POST", path="/swap-indexes")[0].body == [{"indexes": [UID, fresh]}]
    assert waited_for_every_task(fake)
    assert sorted(fake.indexes[UID]["docs"]) == sorted(encode_key(f"news.article:{n}") for n in (3, 4, 5))
    assert fresh not in fake.indexes  # the old documents went with the temporary index


def test_rebuild_creates_the_live_index_when_missing(fake, meili):
    meili.rebuild([doc(1)])
    paths = [(r.method, r.path) for r in fake.requests if not r.path.startswith("/tasks/")]
    assert ("POST", "/indexes") in paths[3:]  # the live index, created before the swap
    assert fake.calls("POST", path="/indexes")[1].body == {"uid": UID, "primaryKey": "key"}
    assert len(fake.indexes[UID]["docs"]) == 1


def test_synonyms_replace_the_sites_own_over_the_defaults(fake, meili):
    meili.ensure_index()
    fake.reset()
    meili.configure_synonyms({"monos": ["monstros"], "lixo": ["contentor"]})
    [put] = fake.calls("PUT")
    assert put.path == f"/indexes/{UID}/settings/synonyms"
    assert put.body == {"lixo": ["resíduos", "contentor"], "monos": ["monstros"]}
    assert waited_for_every_task(fake)
    meili.configure_synonyms({})
    assert fake.calls("PUT")[-1].body == {"lixo": ["resíduos"]}


def test_a_failed_task_raises_search_unavailable(fake, meili):
    meili.ensure_index()
    fake.fail_types["documentAdditionOrUpdate"] = "the document is invalid"
    with pytest.raises(SearchUnavailable, match="failed: the document is invalid"):
        meili.upsert([doc(1)])


def test_a_wrong_api_key_and_an_unreachable_server_raise_search_unavailable(fake):
    wrong = MeilisearchBackend(fake.url, "not-the-key", "concelho")
    with pytest.raises(SearchUnavailable, match="invalid_api_key"):
        wrong.ensure_index()
    assert fake.requests[-1].headers["authorization"] == "Bearer not-the-key"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the with ends: nothing listens there
    dead = MeilisearchBackend(f"http://127.0.0.1:{port}", KEY, "concelho", timeout=2)
    for call in (dead.health, dead.ensure_index, lambda: dead.upsert([doc(1)]), lambda: dead.search(SearchQuery("x"))):
        with pytest.raises(SearchUnavailable, match="unreachable"):
            call()


def test_health_and_prefix(fake):
    backend = MeilisearchBackend(fake.url, KEY, "my site!")
    assert backend.uid == "my_site__documents"
    assert "available" in backend.health()
    assert fake.requests[-1].path == "/health"


def test_keys_round_trip():
    for value in ("news.article:42", "workspaces.page:a-b_c", "x:ç/é ü", "intranet.news:news-001"):
        key = encode_key(value)
        assert all(c.isalnum() or c in "-_" for c in key) and decode_key(key) == value
