"""The embedded engine's own machinery: Portuguese analysis, query parsing, index generations, locking."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from concelho.search import embedded
from concelho.search.analysis import (
    FOLD,
    Matcher,
    Word,
    allowed_typos,
    edit_distance,
    highlight,
    normalize_synonyms,
    number_variants,
    parse_query,
    plain_text,
    prefix_distance,
    stems_of,
)
from concelho.search.contract import SearchDocument, SearchQuery, SearchUnavailable, Visibility
from concelho.search.embedded import POINTER, TantivyBackend
from concelho.search.synonyms import DEFAULT_SYNONYMS, mutual


def doc(pk: str, title: str, body: str = "", **fields: object) -> SearchDocument:
    return SearchDocument(id=f"pages.page:{pk}", type="pages.page", title=title, url=f"/{pk}", body=body, **fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------
PAIRS = [
    ("licitação", "licitações"),
    ("licitação", "licitacoes"),
    ("licitações", "licitacao"),
    ("certidão", "certidões"),
    ("certidao", "certidões"),
    ("certidão", "certidoes"),
    ("praia", "praias"),
    ("ruído", "ruido"),
    ("ruído", "ruídos"),
    ("licença", "licenças"),
    ("licença", "licencas"),
    ("obra", "obras"),
    ("municipal", "municipais"),
    ("jardim", "jardins"),
    ("papel", "papéis"),
    ("mulher", "mulheres"),
    ("cidadão", "cidadãos"),
    ("pão", "pães"),
    ("barril", "barris"),
    ("fácil", "fáceis"),
    ("orçamento", "orcamentos"),
]


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_accent_and_plural_pairs_share_a_stem(a: str, b: str):
    """What the index stores for one form (its stem) is among what a query for the other looks up."""
    (fa,), (fb,) = FOLD.analyze(a), FOLD.analyze(b)
    indexed_a = embedded_stem(a)
    indexed_b = embedded_stem(b)
    assert indexed_a in stems_of(fb)
    assert indexed_b in stems_of(fa)


def embedded_stem(text: str) -> str:
    from concelho.search.analysis import STEM

    (token,) = STEM.analyze(text)
    return token


@pytest.mark.parametrize(
    ("a", "b"), [("praia", "prato"), ("certidão", "certo"), ("ruído", "rua"), ("obra", "obrigado")]
)
def test_different_words_stay_apart(a: str, b: str):
    assert embedded_stem(b) not in stems_of(FOLD.analyze(a)[0])


def test_pairs_match_through_the_index(tmp_path: Path):
    backend = TantivyBackend(tmp_path)
    backend.upsert([doc(str(i), b) for i, (_, b) in enumerate(PAIRS)])
    for i, (a, _) in enumerate(PAIRS):
        found = [h.id for h in backend.search(SearchQuery(a, prefix=False, limit=50)).hits]
        assert f"pages.page:{i}" in found, (a, PAIRS[i][1])


def test_number_variants():
    assert {"certidao", "certidoes"} <= number_variants("certidao")
    assert "certidao" in number_variants("certidoes")
    assert "municipal" in number_variants("municipais")
    assert "jardins" in number_variants("jardim")
    assert number_variants("2025") == {"2025"}


def test_allowed_typos_follow_meilisearch():
    assert [allowed_typos(w) for w in ("casa", "praia", "licencas", "certidoes", "estacionamento")] == [0, 1, 1, 2, 2]
    assert allowed_typos("123456789") == 0


def test_edit_distances():
    assert edit_distance("licenca", "licensa", 1) == 1
    assert edit_distance("estacionamento", "estacionamneto", 2) == 1  # transposition
    assert edit_distance("licenca", "lisensa", 1) == 2  # over the limit: limit + 1
    assert prefix_distance("licenciamento", "lisen", 1) == 1
    assert prefix_distance("li", "licen", 1) == 2


def test_query_parsing_drops_stop_words_and_marks_the_word_being_typed():
    groups = parse_query("a licença de ruído para as obr")
    assert [g.original[0].text for g in groups] == ["licenca", "ruido", "obr"]
    assert [g.original[0].prefix for g in groups] == [False, False, True]
    assert not parse_query("licença de ")[-1].original[0].prefix
    assert not parse_query("licença de")[-1].original[0].prefix  # a stop word ends the typing
    assert parse_query("de para o a") == []
    assert not parse_query("licen", prefix=False)[0].original[0].prefix


def test_synonym_keys_match_whole_words_and_phrases():
    synonyms = normalize_synonyms({"Parking permit": ["Dístico de residente"], "parking": ["estacionamento"]})
    (group,) = parse_query("parking permit", synonyms, prefix=False)
    assert [w.text for w in group.original] == ["parking", "permit"]
    assert [[w.text for w in alt] for alt in group.synonyms] == [["distico", "residente"]]
    assert [[w.text for w in alt] for alt in group.parts[0].synonyms] == [["estacionamento"]]
    assert len(parse_query("parking lot permit", synonyms, prefix=False)) == 3


def test_default_synonyms_shape():
    assert DEFAULT_SYNONYMS["parking"] == ["estacionamento"]
    assert "resíduos" in DEFAULT_SYNONYMS["lixo"] and "lixo" in DEFAULT_SYNONYMS["resíduos"]
    assert mutual("a", "b") == {"a": ["b"], "b": ["a"]}
    assert all(isinstance(v, list) and v and k not in v for k, v in DEFAULT_SYNONYMS.items())


def test_plain_text_from_markdown():
    text = plain_text(
        "## Como pedir\n\n- **Online**: no [portal](/servicos/x)\n| Taxa | Valor |\n|---|---|\n| A | 5 € |"
    )
    assert "##" not in text and "**" not in text and "](" not in text and "---" not in text
    assert "Como pedir" in text and "Online: no portal" in text and "5 €" in text


def test_highlight_escapes_everything_but_marks():
    matcher = Matcher(parse_query("licença ruido"))
    html, count = highlight('<a href="x">Licença</a> de ruído & LICENÇAS <script>alert(1)</script>', matcher)
    assert html == (
        "&lt;a href=&quot;x&quot;&gt;<mark>Licença</mark>&lt;/a&gt; de <mark>ruído</mark> &amp; "
        "<mark>LICENÇAS</mark> &lt;script&gt;alert(1)&lt;/script&gt;"
    )
    assert count == 3
    long = "Palavras sem interesse. " * 30 + "Aqui está a licença pedida. " + "Mais texto. " * 30
    html, _ = highlight(long, matcher, max_chars=120)
    assert html.startswith("…") and html.endswith("…") and "<mark>licença</mark>" in html
    assert len(html) < 200


def _single_pattern_spans(text: str, matcher: Matcher) -> list[tuple[int, int, str]]:
    """The candidate words as first defined: one pattern, anchored at word starts (the reference)."""
    import re

    from concelho.search.analysis import _loose, _pieces, fold

    heads = matcher.exact | matcher.stems | {t for t, _, _ in matcher.prefixes}
    pieces = {p for t, typos, _ in (*matcher.fuzzy, *matcher.prefixes) if typos for p in _pieces(t, typos)}
    branches = []
    if heads:
        branches.append("(?:" + "|".join(_loose(h) for h in sorted(heads, key=len, reverse=True)) + ")")
    if pieces:
        branches.append(r"[^\W_]*?(?:" + "|".join(_loose(p) for p in sorted(pieces)) + ")")
    pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(branches) + r")[^\W_]*", re.IGNORECASE)
    spans = []
    for m in pattern.finditer(text):
        word = fold(m.group())
        if matcher.matches(word):
            spans.append((m.start(), m.end(), word))
    return spans


def test_candidate_words_are_those_of_the_single_anchored_pattern():
    """The highlighter searches with two unanchored patterns (faster); it must find the same words."""
    import random

    from concelho.search.analysis import _matched_spans

    from .corpus import documents

    texts = [t for d in documents() for t in (d.title, d.summary, plain_text(d.body)) if t]
    words = sorted({w for t in texts for w in t.split()})
    rng = random.Random(5)
    odd = ["foo_licença", "LICENÇA_x", "_ruído_", "ŁICENCA", "ﬁnal", "x²", "café123", "İstanbul", "Ǆemal", "ßtraße"]
    odd += ["n.º", "1.ª", "µg", "Ærø", "3×4", "ÇÃO", "Ÿes", "ÿes", "½x", "«licença»"]  # Latin-1: the byte scan
    texts += [" ".join(rng.choice(words + odd) for _ in range(50)) for _ in range(40)]

    def typo(word: str) -> str:
        i = rng.randrange(1, max(2, len(word) - 1))
        return word[:i] + rng.choice("aeiorstnç") + word[i + 1 :]

    queries = [" ".join(rng.sample(words, rng.randint(1, 3))) for _ in range(60)]
    queries += [w[: rng.randint(2, 6)] for w in rng.sample(words, 40)] + [typo(w) for w in rng.sample(words, 60)]
    for query in [*queries, "licenca ruido", "obr", "ruido licen", "cafe 123"]:
        for prefix in (True, False):
            matcher = Matcher(parse_query(query, prefix=prefix))
            if not matcher:
                continue
            for text in rng.sample(texts, 15) + texts[-3:]:
                assert _matched_spans(text, matcher) == _single_pattern_spans(text, matcher), (query, text[:80])


def test_latin1_text_is_scanned_as_bytes_and_other_text_with_the_patterns(monkeypatch: pytest.MonkeyPatch):
    from concelho.search import analysis

    matcher = Matcher(parse_query("licença ruido cafe"))
    assert matcher._scan is not None  # plain ASCII query words: the byte scan applies
    text = "Licença de RUÍDO no café, «licenças» e n.º 2; ruídos_x"
    expected = [(0, 7), (11, 16), (20, 24), (27, 35), (46, 52)]  # "_" ends a word
    assert matcher.candidates(text) == expected
    patterns_only = Matcher(parse_query("licença ruido cafe"))
    patterns_only._scan = None
    assert patterns_only.candidates(text) == expected
    monkeypatch.setattr(analysis, "_scan", lambda *args: pytest.fail("not Latin-1: the patterns must answer"))
    assert matcher.candidates("Łódź: licença") == [(6, 13)]
    assert Matcher(parse_query("αθήνα"))._scan is None  # a query word outside ASCII: the patterns too


def test_the_snippet_window_is_the_first_with_the_most_distinct_words():
    import random

    from concelho.search.analysis import _best_start

    def reference(spans: list[tuple[int, int, str]], max_chars: int) -> int:  # the definition, quadratic
        best_start, best_score = spans[0][0], -1
        for i, (start, _, _) in enumerate(spans):
            inside = [w for s, _, w in spans[i:] if s < start + max_chars - 20]
            if len(set(inside)) * 100 + len(inside) > best_score:
                best_start, best_score = start, len(set(inside)) * 100 + len(inside)
        return best_start

    rng = random.Random(3)
    for _ in range(500):
        starts = sorted(rng.sample(range(2000), rng.randint(1, 40)))
        spans = [(s, s + 4, rng.choice("abcde")) for s in starts]
        max_chars = rng.choice([15, 21, 60, 120, 220, 400])
        assert _best_start(spans, max_chars) == reference(spans, max_chars), (spans, max_chars)


def test_normalized_synonyms_know_their_longest_key():
    synonyms = normalize_synonyms({"lixo": ["resíduos"], "cartão de cidadão": ["cc"], "de": ["x"]})
    assert synonyms.longest == 2
    assert normalize_synonyms({}).longest == 1
    (group,) = parse_query("cartão cidadão", synonyms, prefix=False)  # a two-word key still matches
    assert [w.text for w in group.original] == ["cartao", "cidadao"] and group.synonyms == [(Word("cc"),)]


# --------------------------------------------------------------------------------------------
# Index lifecycle
# --------------------------------------------------------------------------------------------
def test_nothing_touches_the_disk_until_used(tmp_path: Path):
    backend = TantivyBackend(tmp_path / "search")
    assert not (tmp_path / "search").exists()
    assert "no index yet" in backend.health()
    backend.ensure_index()
    backend.ensure_index()  # idempotent
    assert len(list((tmp_path / "search").glob("gen-*"))) == 1
    assert "(0 documents)" in backend.health()


def test_health_fails_on_an_unwritable_folder(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SearchUnavailable, match="not writable"):
        TantivyBackend(blocker / "search").health()


def test_search_on_a_fresh_folder_is_empty(tmp_path: Path):
    result = TantivyBackend(tmp_path).search(SearchQuery("licença"))
    assert result.total == 0 and result.hits == [] and result.suggestion is None


def test_rebuild_swaps_generations_atomically(tmp_path: Path):
    backend = TantivyBackend(tmp_path)
    backend.upsert([doc("old", "Documento antigo")])
    first = (tmp_path / POINTER).read_text()
    backend.rebuild([doc("new", "Documento novo"), doc("new2", "Outro documento novo")])
    second = (tmp_path / POINTER).read_text()
    assert first != second
    assert [p.name for p in tmp_path.glob("gen-*")] == [second]
    assert backend.count() == 2
    assert backend.search(SearchQuery("antigo")).total == 0


def test_a_failed_rebuild_keeps_the_live_index(tmp_path: Path):
    backend = TantivyBackend(tmp_path)
    backend.upsert([doc("old", "Documento antigo")])
    pointer = (tmp_path / POINTER).read_text()

    def broken():
        yield doc("new", "Documento novo")
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        backend.rebuild(broken())  # type: ignore[arg-type]
    assert (tmp_path / POINTER).read_text() == pointer
    assert [p.name for p in tmp_path.glob("gen-*")] == [pointer]
    assert [h.id for h in backend.search(SearchQuery("antigo")).hits] == ["pages.page:old"]


def test_other_instances_follow_writes_and_rebuilds(tmp_path: Path):
    """Two backends on one folder stand for two processes (web worker and ``suite`` CLI)."""
    web, cli = TantivyBackend(tmp_path), TantivyBackend(tmp_path)
    web.upsert([doc("a", "Primeiro documento")])
    assert cli.count() == 1
    cli.upsert([doc("b", "Segundo documento")])  # the writer lock is taken and released per call
    assert web.search(SearchQuery("segundo")).total == 1
    cli.rebuild([doc("c", "Terceiro documento")])
    assert web.count() == 1
    assert [h.id for h in web.search(SearchQuery("terceiro")).hits] == ["pages.page:c"]


def test_an_index_of_another_schema_version_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    backend = TantivyBackend(tmp_path)
    backend.upsert([doc("a", "Documento")])
    monkeypatch.setattr(embedded, "SCHEMA_VERSION", embedded.SCHEMA_VERSION + 1)
    fresh = TantivyBackend(tmp_path)
    assert fresh.count() == 0  # empty until the next reindex
    fresh.upsert([doc("b", "Outro")])
    assert fresh.count() == 1


def test_upsert_in_several_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(embedded, "BATCH_SIZE", 3)
    backend = TantivyBackend(tmp_path)
    backend.upsert([doc(str(i), f"Documento {i}") for i in range(10)] + [doc("3", "Substituído")])
    assert backend.count() == 10
    assert [h.id for h in backend.search(SearchQuery("substituído")).hits] == ["pages.page:3"]
    backend.delete([str(i) for i in range(10)])
    backend.delete([f"pages.page:{i}" for i in range(5)])
    assert backend.count() == 5


def test_unknown_filter_fields_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="cannot filter on 'audience'"):
        TantivyBackend(tmp_path).search(SearchQuery("x", filters={"audience": ["internal"]}))


def test_unknown_audiences_are_visible_to_nobody_but_admins(tmp_path: Path):
    backend = TantivyBackend(tmp_path)
    backend.upsert([doc("odd", "Documento estranho", audience="private", workspace_ids=[1], department_ids=[1])])
    member = Visibility(authenticated=True, workspace_ids=frozenset({1}), department_ids=frozenset({1}))
    assert backend.search(SearchQuery("estranho", visibility=member)).total == 0
    assert backend.search(SearchQuery("estranho", visibility=Visibility(everything=True))).total == 1


def test_the_index_folder_layout(tmp_path: Path):
    backend = TantivyBackend(tmp_path)
    backend.ensure_index()
    generation = (tmp_path / POINTER).read_text()
    assert (tmp_path / generation / "meta.json").exists()
    assert (tmp_path / generation / embedded.SCHEMA_FILE).read_text() == str(embedded.SCHEMA_VERSION)
    assert sorted(os.listdir(tmp_path)) == sorted([POINTER, generation, embedded.LOCK_FILE])  # nothing temporary


def test_builds_in_progress_survive_a_swap_and_crashed_ones_go(tmp_path: Path):
    backend = TantivyBackend(tmp_path)
    backend.ensure_index()
    running, crashed = tmp_path / ".building-running", tmp_path / ".building-crashed"
    running.mkdir()
    crashed.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(crashed, (two_days_ago, two_days_ago))
    backend.rebuild([doc("a", "Documento")])
    assert running.exists()
    assert not crashed.exists()


def test_configured_synonyms_sit_on_top_of_the_defaults(tmp_path: Path):
    backend = TantivyBackend(tmp_path, synonyms={"parking": ["estacionamento"]})
    backend.upsert([doc("e", "Estacionamento"), doc("r", "Resíduos urbanos")])
    assert [h.id for h in backend.search(SearchQuery("parking")).hits] == ["pages.page:e"]
    backend.configure_synonyms({"lixo": ["resíduos"]})
    assert [h.id for h in backend.search(SearchQuery("lixo")).hits] == ["pages.page:r"]
    assert [h.id for h in backend.search(SearchQuery("parking")).hits] == ["pages.page:e"]  # still there
    backend.configure_synonyms({})
    assert backend.search(SearchQuery("lixo")).total == 0
    assert backend.synonyms == {"parking": ["estacionamento"]}


def test_common_words_spelled_right_get_no_typo_tolerance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(embedded, "COMMON_MIN", 5)
    backend = TantivyBackend(tmp_path)
    backend.upsert([doc(f"p{i}", f"Praia número {i}") for i in range(6)] + [doc("c", "Praça central")])
    assert "pages.page:c" not in [h.id for h in backend.search(SearchQuery("praia", limit=20)).hits]
    rare = backend.search(SearchQuery("praça", limit=20))  # a rare word keeps its typo tolerance
    assert rare.hits[0].id == "pages.page:c" and rare.total == 7
    assert backend.search(SearchQuery("praja", prefix=False, limit=20)).total == 7  # a typo still finds all


def test_facets_counted_beside_the_search_are_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    backend = TantivyBackend(tmp_path)
    backend.upsert(
        [doc(f"o{i}", f"Obras na rua {i}", category=("obras", "ambiente")[i % 2], language=("pt", "en")[i % 3 == 0])
         for i in range(12)]
        + [doc("p", "Piscina municipal", category="desporto"), doc("x", "Obras internas", audience="internal")]
    )  # fmt: skip
    queries = [
        SearchQuery("obras"),
        SearchQuery("obras rua 3"),
        SearchQuery("obras piscina", prefix=False),  # no document has both: one word fewer
        SearchQuery("nadadisto"),  # nothing: no facet counts
        SearchQuery("", sort="recent"),
        SearchQuery("obras", filters={"category": ["obras"]}, visibility=Visibility(authenticated=True)),
    ]
    monkeypatch.setattr(embedded, "PARALLEL_FACETS_MIN_DOCS", 10**9)
    alone = [backend.search(q) for q in queries]
    monkeypatch.setattr(embedded, "PARALLEL_FACETS_MIN_DOCS", 0)
    beside = [backend.search(q) for q in queries]
    for a, b in zip(alone, beside, strict=True):
        assert (a.total, a.facets, [h.id for h in a.hits]) == (b.total, b.facets, [h.id for h in b.hits])
    assert beside[0].facets["category"] == {"obras": 6, "ambiente": 6} and beside[2].total == 13
    assert beside[3].facets == {"type": {}, "category": {}, "section": {}, "language": {}}


def test_search_now_answers_only_when_the_index_is_open_and_current(tmp_path: Path):
    web, cli = TantivyBackend(tmp_path), TantivyBackend(tmp_path)
    assert web.search_now(SearchQuery("documento")) is None  # nothing opened yet: that may wait
    web.upsert([doc("a", "Primeiro documento")])
    now = web.search_now(SearchQuery("documento"))
    assert now is not None and [h.id for h in now.hits] == ["pages.page:a"]
    cli.upsert([doc("b", "Segundo documento")])  # a commit elsewhere: followed right here
    assert web.search_now(SearchQuery("segundo")).total == 1  # type: ignore[union-attr]
    cli.rebuild([doc("c", "Terceiro documento")])  # another generation: reopening is left to search()
    assert web.search_now(SearchQuery("terceiro")) is None
    assert web.search(SearchQuery("terceiro")).total == 1
    assert web.search_now(SearchQuery("terceiro")).total == 1  # type: ignore[union-attr]


def test_engine_search_uses_a_thread_only_when_the_engine_may_wait(tmp_path: Path):
    import asyncio
    import threading

    from concelho.search.contract import SearchResult
    from concelho.search.service import engine_search

    class Engine:
        def __init__(self, now: bool) -> None:
            self.now, self.threads = now, []

        def search_now(self, query: SearchQuery) -> SearchResult | None:
            return self.search(query) if self.now else None

        def search(self, query: SearchQuery) -> SearchResult:
            self.threads.append(threading.current_thread())
            return SearchResult(hits=[], total=1)

    quick, slow = Engine(True), Engine(False)
    for engine in (quick, slow):
        assert asyncio.run(engine_search(engine, SearchQuery("x"))).total == 1
    assert quick.threads == [threading.main_thread()] and slow.threads[0] is not threading.main_thread()


def test_a_first_load_into_an_index_filled_by_another_process_still_replaces(tmp_path: Path):
    first, second = TantivyBackend(tmp_path), TantivyBackend(tmp_path)
    second.ensure_index()  # opened while empty
    first.upsert([doc("x", "Versão antiga")])
    second.upsert([doc("x", "Versão nova")])
    assert first.count() == second.count() == 1
    assert [h.title for h in first.search(SearchQuery("versão")).hits] == ["Versão nova"]
