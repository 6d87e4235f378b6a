"""What every search backend must do, checked on the same small pt-PT documents.

The ``backend`` fixture gives an empty index of each backend (the embedded engine always, a live
Meilisearch when ``SUITE_TEST_MEILI_URL`` is set).
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from concelho.search.contract import SearchBackend, SearchDocument, SearchQuery, SearchResult, Visibility

ANON = Visibility.anonymous()
EMPLOYEE = Visibility(authenticated=True)
EVERYTHING = Visibility(everything=True)
MEMBER = Visibility(authenticated=True, workspace_ids=frozenset({7}))
OTHER_MEMBER = Visibility(authenticated=True, workspace_ids=frozenset({8}))


def doc(
    id: str,
    title: str,
    summary: str = "",
    body: str = "",
    *,
    published: str | None = None,
    **fields: object,
) -> SearchDocument:
    type_ = id.split(":")[0]
    return SearchDocument(
        id=id,
        type=type_,
        title=title,
        url="/" + id.replace(":", "/").replace(".", "/"),
        summary=summary,
        body=body,
        published_at=datetime.fromisoformat(published) if published else None,
        **fields,  # type: ignore[arg-type]
    )


DOCS = [
    doc(
        "services.service:ruido",
        "Licença Especial de Ruído",
        "Pedido de licença para festas, arraiais e concertos com música ao ar livre.",
        "Para atividades ruidosas temporárias é necessária uma licença especial de ruído, pedida com 15 dias.",
        tags=["licença", "ruído", "eventos"],
        category="Licenciamento",
    ),
    doc(
        "services.service:certidao",
        "Certidão de Residência",
        "Emissão de certidão de residência no concelho.",
        "A certidão comprova a morada e o tempo de residência; é pedida na Loja do Munícipe.",
        tags=["certidão", "residência"],
        category="Certidões",
    ),
    doc(
        "news.article:licitacoes",
        "Abertas novas licitações para a frente ribeirinha",
        "Concurso público para a requalificação do cais.",
        "As licitações decorrem até março e as propostas são abertas em sessão pública.",
        category="obras",
        published="2025-03-01",
    ),
    doc(
        "news.article:praias",
        "Sete praias com Bandeira Azul",
        "As praias do concelho voltam a ter qualidade de água excelente.",
        "A época balnear começa a 1 de junho com nadadores-salvadores em todas as zonas vigiadas.",
        category="ambiente",
        published="2025-05-02",
    ),
    doc(
        "places.place:praia-grande",
        "Praia Grande",
        "O maior areal do concelho, com voleibol.",
        "Acessos pedonais e estacionamento gratuito junto ao areal.",
        category="praias",
    ),
    doc(
        "places.place:praca",
        "Praça da República",
        "Praça central com esplanadas e coreto.",
        "Ponto de encontro no centro histórico.",
        category="praças",
    ),
    doc(
        "pages.page:estacionamento",
        "Estacionamento",
        "Zonas tarifadas, parquímetros e dístico de residente.",
        "Os moradores podem pedir o dístico de residente online.",
        section="concelho",
    ),
    doc(
        "pages.page:camara",
        "A Câmara Municipal",
        "O órgão executivo do município: presidente e vereadores.",
        "A Câmara reúne duas vezes por mês em sessão pública.",
        section="camara",
    ),
    doc(
        "news.article:orcamento",
        "Orçamento Participativo: votação aberta",
        "Escolha as propostas para o seu bairro até 15 de outubro.",
        "A votação do Orçamento Participativo decorre online e na Loja do Munícipe.",
        category="orçamento",
        published="2025-09-15",
    ),
    doc(
        "events.event:feira-2024",
        "Feira do Livro",
        "Livros, autores e sessões de autógrafos no jardim.",
        published="2024-06-01",
        category="feiras",
    ),
    doc(
        "events.event:feira-2025",
        "Feira do Livro",
        "Livros, autores e sessões de autógrafos no jardim.",
        published="2025-06-01",
        category="feiras",
    ),
    doc("events.event:fado", "Noite de Fado", "Fado no forte com guitarra portuguesa.", category="concertos"),
    doc(
        "pages.page:beach",
        "Beach safety",
        "Lifeguards watch the beaches from June to September.",
        language="en",
        section="concelho",
    ),
    doc(
        "news.article:aviso",
        "Aviso sobre obras",
        "Aviso <script>alert('x')</script> sobre obras & taxas",
        "<b>Aviso</b> importante: <script>alert(1)</script> obras na rua <img src=x onerror=alert(2)>.",
        published="2025-01-10",
        category="obras",
    ),
    doc(
        "intranet.news:ciber",
        "Formação em cibersegurança",
        "Formação obrigatória para todos os trabalhadores.",
        audience="internal",
        published="2025-02-01",
    ),
    doc(
        "intranet.news:circular",
        "Circular interna sobre fardamento",
        "Regras do fardamento das equipas de obras.",
        audience="internal",
        department_ids=[3],
        published="2025-02-02",
    ),
    doc(
        "workspaces.document:lynx",
        "Plano reservado do lynx",
        "Documento reservado sobre xilografia e pergaminhos.",
        "Só para membros: xilografia, pergaminhos e o lynx.",
        audience="workspace",
        workspace_ids=[7],
        category="reservados",
        published="2025-04-01",
    ),
    doc(
        "workspaces.document:ata",
        "Ata da reunião de obras",
        "Decisões sobre as obras do armazém.",
        audience="workspace",
        workspace_ids=[8],
        published="2025-04-02",
    ),
]
PRIVATE = "workspaces.document:lynx"


@pytest.fixture
def docs(backend: SearchBackend) -> SearchBackend:
    backend.upsert(DOCS)
    return backend


def search(backend: SearchBackend, text: str, visibility: Visibility = ANON, **options: object) -> SearchResult:
    options.setdefault("limit", 20)
    return backend.search(SearchQuery(text, visibility=visibility, **options))  # type: ignore[arg-type]


def ids(result: SearchResult) -> list[str]:
    return [h.id for h in result.hits]


# --------------------------------------------------------------------------------------------
# Accents, plurals, typos, prefixes
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ruido", "services.service:ruido"),
        ("RUÍDO", "services.service:ruido"),
        ("licenca", "services.service:ruido"),
        ("certidao residencia", "services.service:certidao"),
        ("orcamento participativo", "news.article:orcamento"),
        ("camara municipal", "pages.page:camara"),
        ("distico", "pages.page:estacionamento"),
    ],
)
def test_queries_without_accents_find_accented_words(docs: SearchBackend, text: str, expected: str):
    assert ids(search(docs, text, prefix=False))[:1] == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("licitação", "news.article:licitacoes"),
        ("licitacao", "news.article:licitacoes"),
        ("licitações", "news.article:licitacoes"),
        ("licitacoes", "news.article:licitacoes"),
        ("certidões", "services.service:certidao"),
        ("certidoes", "services.service:certidao"),
        ("licenças", "services.service:ruido"),
        ("ruídos", "services.service:ruido"),
        ("feiras", "events.event:feira-2025"),
        ("parquímetro", "pages.page:estacionamento"),
    ],
)
def test_singular_and_plural_match_each_other(docs: SearchBackend, text: str, expected: str):
    assert expected in ids(search(docs, text, prefix=False))


def test_plural_query_finds_singular_and_plural_documents(docs: SearchBackend):
    found = ids(search(docs, "praias", prefix=False))
    assert {"news.article:praias", "places.place:praia-grande"} <= set(found)
    found = ids(search(docs, "praia", prefix=False))
    assert {"news.article:praias", "places.place:praia-grande"} <= set(found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("licensa", "services.service:ruido"),  # 7 letters, 1 typo
        ("certidao residensia", "services.service:certidao"),  # 1 typo
        ("rezidensia", "services.service:certidao"),  # 10 letters, 2 typos
        ("estacionamneto", "pages.page:estacionamento"),  # transposition = 1 typo
        ("partisipativo", "news.article:orcamento"),
    ],
)
def test_typos_are_tolerated(docs: SearchBackend, text: str, expected: str):
    assert ids(search(docs, text, prefix=False))[:1] == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "lisensa",  # 7 letters: only one typo allowed
        "rezidensya",  # 10 letters: three typos
        "fadu",  # 4 letters: no typo allowed
    ],
)
def test_too_many_typos_do_not_match(docs: SearchBackend, text: str):
    assert search(docs, text, prefix=False).total == 0


def test_exact_matches_rank_above_typo_matches(docs: SearchBackend):
    assert ids(search(docs, "praia", prefix=False))[0] in {"places.place:praia-grande", "news.article:praias"}
    assert "places.place:praca" in ids(search(docs, "praia", prefix=False))  # praça: one typo away
    assert ids(search(docs, "praca", prefix=False))[0] == "places.place:praca"
    found = ids(search(docs, "praca", prefix=False))
    assert found.index("places.place:praca") < found.index("places.place:praia-grande")


def test_last_word_is_a_prefix_while_typing(docs: SearchBackend):
    assert "services.service:ruido" in ids(search(docs, "licen"))
    assert "services.service:certidao" in ids(search(docs, "certidao de resid"))
    assert "news.article:orcamento" in ids(search(docs, "orçamento partic"))
    assert search(docs, "licen", prefix=False).total == 0
    assert search(docs, "licen ").total == 0  # a space ends the word


# --------------------------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------------------------
def test_field_weights_title_summary_tags_body(backend: SearchBackend):
    backend.upsert(
        [
            doc("pages.page:body", "Menu do dia", "Um prato do dia.", "Hoje servimos amêijoas ao almoço."),
            doc("pages.page:tags", "Receita da casa", "Um prato do dia.", "Texto.", tags=["amêijoas"]),
            doc("pages.page:summary", "Prato do dia", "Amêijoas com coentros.", "Texto."),
            doc("pages.page:title", "Amêijoas da ria", "Um prato do dia.", "Texto."),
        ]
    )
    assert ids(search(backend, "amêijoas")) == [
        "pages.page:title",
        "pages.page:summary",
        "pages.page:tags",
        "pages.page:body",
    ]


def test_recency_breaks_ties(docs: SearchBackend):
    found = ids(search(docs, "feira do livro"))
    assert found[:2] == ["events.event:feira-2025", "events.event:feira-2024"]


def test_stop_words_never_decide_the_ranking(backend: SearchBackend):
    backend.upsert(
        [
            doc("services.service:para", "Licença para obras", "Pedido.", published="2024-01-01"),
            doc("services.service:de", "Licença de obras", "Pedido.", published="2025-01-01"),
            doc("pages.page:stop", "O de para a da do", "Para a de o da do os as."),
        ]
    )
    with_stop = ids(search(backend, "licença para obras"))
    assert with_stop == ids(search(backend, "licença de obras")) == ids(search(backend, "licença obras"))
    assert with_stop == ["services.service:de", "services.service:para"]  # the newer first: a tie
    assert "pages.page:stop" not in ids(search(backend, "o licença da obras para"))


def test_a_missing_stop_word_does_not_hide_a_document(docs: SearchBackend):
    assert ids(search(docs, "a certidão da residência", prefix=False))[:1] == ["services.service:certidao"]


# --------------------------------------------------------------------------------------------
# Filters, facets, pagination, sorting
# --------------------------------------------------------------------------------------------
def test_filters_on_facet_fields(docs: SearchBackend):
    found = search(docs, "obras", filters={"type": ["news.article"]})
    assert found.hits and {h.type for h in found.hits} == {"news.article"}
    assert found.total == len(found.hits)
    assert ids(search(docs, "livro", filters={"category": ["feiras"]}))
    assert not search(docs, "livro", filters={"category": ["concertos"]}).hits
    assert ids(search(docs, "estacionamento", filters={"section": ["concelho"]})) == ["pages.page:estacionamento"]
    assert search(docs, "estacionamento", filters={"section": ["camara"]}).total == 0
    assert ids(search(docs, "beaches lifeguards", filters={"language": ["en"]})) == ["pages.page:beach"]
    assert search(docs, "beaches lifeguards", filters={"language": ["pt"]}).total == 0
    # several values of one field: any; several fields: all
    both = search(docs, "obras praias", filters={"type": ["news.article", "places.place"]})
    assert {h.type for h in both.hits} <= {"news.article", "places.place"}
    narrowed = search(docs, "aviso", filters={"type": ["news.article"], "category": ["ambiente"]})
    assert narrowed.total == 0


def test_facets_count_the_filtered_result_set(docs: SearchBackend):
    result = search(docs, "obras", visibility=EVERYTHING, facets=("type", "category"))
    by_type = result.facets["type"]
    assert sum(by_type.values()) == result.total
    assert by_type.get("news.article") == len([h for h in result.hits if h.type == "news.article"])
    assert by_type.get("workspaces.document") == 1  # the ata (the lynx plan is not about obras)
    filtered = search(docs, "obras", visibility=EVERYTHING, facets=("type",), filters={"type": ["news.article"]})
    assert set(filtered.facets["type"]) == {"news.article"}
    assert filtered.facets["type"]["news.article"] == filtered.total


def test_pagination_limit_offset_and_total(backend: SearchBackend):
    backend.upsert(
        [doc(f"news.article:t{i}", f"Cortes de trânsito {i}", "Trânsito.", published=f"2025-01-{i + 1:02d}")
         for i in range(7)]
    )  # fmt: skip
    everything = search(backend, "trânsito", limit=50)
    assert everything.total == 7
    assert ids(everything) == [f"news.article:t{i}" for i in reversed(range(7))]  # a tie: newest first
    pages = [search(backend, "trânsito", limit=3, offset=o) for o in (0, 3, 6)]
    assert [len(p.hits) for p in pages] == [3, 3, 1]
    assert all(p.total == 7 for p in pages)
    assert [h for p in pages for h in ids(p)] == ids(everything)
    assert search(backend, "trânsito", limit=3, offset=7).hits == []


def test_sort_recent(docs: SearchBackend):
    result = search(docs, "obras", visibility=EVERYTHING, sort="recent")
    dates = [h.published_at for h in result.hits if h.published_at]
    assert len(dates) >= 3
    assert dates == sorted(dates, reverse=True)
    assert result.hits[0].id == "workspaces.document:ata"  # 2025-04-02, the newest about obras


# --------------------------------------------------------------------------------------------
# Highlighting
# --------------------------------------------------------------------------------------------
def test_snippets_mark_matches(docs: SearchBackend):
    hit = search(docs, "ruido")
    snippet = next(h.snippet for h in hit.hits if h.id == "services.service:ruido")
    assert re.search(r"<mark>ru[ií]d", snippet, re.I)
    hit = search(docs, "certidoes")
    snippet = next(h.snippet for h in hit.hits if h.id == "services.service:certidao")
    assert re.search(r"<mark>certid[aã]o</mark>", snippet, re.I)


def test_snippets_are_html_safe(docs: SearchBackend):
    for text in ("aviso", "obras taxas", "alert", "script"):
        for hit in search(docs, text, visibility=EVERYTHING).hits:
            tags = set(re.findall(r"<[^>]*>", hit.snippet))
            assert tags <= {"<mark>", "</mark>"}, (text, hit.id, hit.snippet)
            assert "<script" not in hit.snippet.lower()
    aviso = next(h for h in search(docs, "aviso").hits if h.id == "news.article:aviso")
    assert "<mark>" in aviso.snippet
    assert "&lt;" in aviso.snippet or "script" not in aviso.snippet


# --------------------------------------------------------------------------------------------
# Visibility: hits, totals, facets, snippets, suggestions
# --------------------------------------------------------------------------------------------
def _everything_said(result: SearchResult) -> str:
    parts = [result.suggestion or ""]
    for hit in result.hits:
        parts += [hit.id, hit.title, hit.snippet, hit.url, hit.category]
    parts += [f"{k}" for counts in result.facets.values() for k in counts]
    return " ".join(parts).lower()


@pytest.mark.parametrize("visibility", [ANON, EMPLOYEE, OTHER_MEMBER], ids=["anonymous", "employee", "other-member"])
@pytest.mark.parametrize("text", ["lynx", "xilografia", "reservado", "pergaminhos xilografia", "xilografya", "lynk"])
def test_a_private_workspace_document_never_leaks(docs: SearchBackend, visibility: Visibility, text: str):
    result = search(docs, text, visibility=visibility, facets=("type", "category"))
    assert PRIVATE not in ids(result)
    assert result.total == 0
    said = _everything_said(result)
    for secret in ("lynx", "xilografia", "pergaminho", "reservad"):
        assert secret not in said, (text, said)


def test_a_private_workspace_document_is_found_by_its_members(docs: SearchBackend):
    for text in ("lynx", "xilografia", "xilografya", "reservado"):
        result = search(docs, text, visibility=MEMBER, facets=("category",))
        assert ids(result)[:1] == [PRIVATE], text
        assert result.facets["category"].get("reservados") == 1
    assert search(docs, "lynx", visibility=EVERYTHING).total == 1


def test_totals_and_facets_only_count_what_the_caller_may_see(docs: SearchBackend):
    anonymous = search(docs, "obras", facets=("type",))
    employee = search(docs, "obras", visibility=EMPLOYEE, facets=("type",))
    member = search(docs, "obras", visibility=OTHER_MEMBER, facets=("type",))
    assert ids(anonymous) == ["news.article:aviso"]
    assert all(not h.type.startswith(("intranet", "workspaces")) for h in anonymous.hits)
    assert "intranet.news" not in anonymous.facets["type"]
    assert employee.facets["type"].get("intranet.news") == 1  # the circular
    assert "workspaces.document" not in employee.facets["type"]
    assert member.facets["type"].get("workspaces.document") == 1  # the ata, workspace 8
    assert anonymous.total < employee.total < member.total
    assert sum(anonymous.facets["type"].values()) == anonymous.total


def test_visibility_rules(docs: SearchBackend):
    public = {d.id for d in DOCS if d.audience == "public"}
    internal = {d.id for d in DOCS if d.audience == "internal"}
    assert docs.count(ANON) == len(public)
    assert docs.count(EMPLOYEE) == len(public | internal)
    assert docs.count(MEMBER) == len(public | internal) + 1
    assert docs.count(EVERYTHING) == len(DOCS)
    assert docs.count() == len(DOCS)
    assert docs.count(ANON, type_="news.article") == 4
    # a department sees its internal documents even without intranet access
    department = Visibility(department_ids=frozenset({3}))
    assert ids(search(docs, "fardamento", visibility=department)) == ["intranet.news:circular"]
    assert search(docs, "fardamento").total == 0
    assert search(docs, "cibersegurança", visibility=department).total == 0
    assert ids(search(docs, "cibersegurança", visibility=EMPLOYEE)) == ["intranet.news:ciber"]


def test_counts_by_type(docs: SearchBackend):
    counts = docs.counts_by_type()
    assert counts["news.article"] == 4
    assert counts["workspaces.document"] == 2
    assert sum(counts.values()) == len(DOCS)


def test_did_you_mean_uses_only_visible_documents(docs: SearchBackend):
    anonymous = search(docs, "fadu")
    assert anonymous.total == 0
    assert anonymous.suggestion == "fado"
    assert search(docs, "lynk", visibility=MEMBER).suggestion == "lynx"
    assert search(docs, "lynk").suggestion != "lynx"


# --------------------------------------------------------------------------------------------
# Synonyms
# --------------------------------------------------------------------------------------------
def test_synonyms_expand_queries(docs: SearchBackend):
    docs.upsert([doc("pages.page:marina", "Marina parking", "Parking for boat owners.", language="en")])
    assert "pages.page:estacionamento" not in ids(search(docs, "parking"))
    docs.configure_synonyms({"parking": ["estacionamento"], "lixo": ["resíduos"]})
    found = ids(search(docs, "parking"))
    assert {"pages.page:estacionamento", "pages.page:marina"} <= set(found)
    assert found[0] == "pages.page:marina"  # the word itself first
    # one way, as configured
    assert "pages.page:marina" not in ids(search(docs, "estacionamento"))
    docs.configure_synonyms({"parking permit": ["dístico de residente"]})
    assert ids(search(docs, "parking permit"))[:1] == ["pages.page:estacionamento"]
    docs.configure_synonyms({})
    assert "pages.page:estacionamento" not in ids(search(docs, "parking"))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def test_upsert_replaces_by_id(docs: SearchBackend):
    docs.upsert([doc("events.event:fado", "Noite de Guitarradas", "Guitarra portuguesa no forte.")])
    assert search(docs, "fado", prefix=False).total == 0
    assert ids(search(docs, "guitarradas")) == ["events.event:fado"]
    assert docs.count() == len(DOCS)


def test_delete(docs: SearchBackend):
    docs.delete(["services.service:ruido", "does.not:exist"])
    assert "services.service:ruido" not in ids(search(docs, "licença ruído"))
    assert docs.count() == len(DOCS) - 1
    docs.delete([])


def test_rebuild_replaces_everything(docs: SearchBackend):
    fresh = [doc("pages.page:novo", "Página nova", "Conteúdo novo."), DOCS[0]]
    docs.rebuild(fresh)
    assert docs.count() == 2
    assert search(docs, "certidão", prefix=False).total == 0
    assert ids(search(docs, "página nova")) == ["pages.page:novo"]
    assert ids(search(docs, "ruído")) == ["services.service:ruido"]


def test_health_reports_the_engine(backend: SearchBackend):
    assert isinstance(backend.health(), str) and backend.health()
