"""Judged pt-PT queries over the shared corpus: what a resident (or an employee) expects to find.

Each entry: ``(query, expected row ids, who asks)``.  The expected ids are the documents a person
would want in the first results (any order); the metric code reads the *first* relevant rank for
MRR and the share of expected ids within the top 5 for recall@5.  Many entries are built on the
corpus README's ranking traps (five certidões, two licenças de ruído, esplanada vs the taxas
table, residents' parking, Orçamento Participativo on three levels, monos vs resíduos verdes,
queimas), then repeated without accents, with typos and in visitors' English.
"""

from __future__ import annotations

from .corpus import ANONYMOUS, EMPLOYEE, member_of

Q = tuple[str, tuple[str, ...], object]

QUERIES: list[Q] = [
    # --- certidões (five near-duplicates + the Junta's atestado + the certificado news)
    ("certidão de residência", ("service-001",), ANONYMOUS),
    ("certidao de residencia", ("service-001",), ANONYMOUS),
    ("certidões", ("service-001", "service-002", "service-003", "service-004", "service-005"), ANONYMOUS),
    ("certidao de teor processo de obras", ("service-002",), ANONYMOUS),
    ("certidão isenção licença de utilização", ("service-003",), ANONYMOUS),
    ("certidao destaque parcela", ("service-004",), ANONYMOUS),
    ("compropriedade", ("service-005",), ANONYMOUS),
    ("atestado de residência junta de freguesia", ("page-023", "service-001"), ANONYMOUS),
    ("certidao de residensia", ("service-001",), ANONYMOUS),  # one typo
    # --- licenças de ruído (events vs works) and the other urbanism licences
    ("licença de ruído", ("service-006", "service-007"), ANONYMOUS),
    ("licencas de ruido", ("service-006", "service-007"), ANONYMOUS),
    ("licença especial de ruído para obras", ("service-007",), ANONYMOUS),
    ("licença ruído festa arraial", ("service-006",), ANONYMOUS),
    ("lisença de ruido", ("service-006", "service-007"), ANONYMOUS),  # one typo
    ("licença de obras", ("service-008",), ANONYMOUS),
    ("comunicação prévia de obras", ("service-009",), ANONYMOUS),
    ("pedido de informação prévia", ("service-010",), ANONYMOUS),
    ("autorização de utilização", ("service-011",), ANONYMOUS),
    ("propriedade horizontal", ("service-012",), ANONYMOUS),
    # --- esplanada vs the taxa table vs occupying the road for works
    ("licença de esplanada", ("service-013",), ANONYMOUS),
    ("esplanadas", ("service-013",), ANONYMOUS),
    ("esplanda", ("service-013",), ANONYMOUS),  # one typo (a missing letter)
    ("tabela de taxas municipais", ("page-017",), ANONYMOUS),
    ("taxas", ("page-017",), ANONYMOUS),
    ("andaimes na via pública", ("service-014",), ANONYMOUS),
    ("publicidade", ("service-015",), ANONYMOUS),
    # --- residents' parking
    ("estacionamento para residentes", ("service-018", "news-044", "page-035"), ANONYMOUS),
    ("dístico de residente", ("service-018", "news-044"), ANONYMOUS),
    ("distico residente", ("service-018", "news-044"), ANONYMOUS),
    ("estacionamneto residentes", ("service-018", "news-044", "page-035"), ANONYMOUS),  # transposition
    ("estacionamento mobilidade condicionada", ("service-019",), ANONYMOUS),
    ("parquímetros aplicação", ("news-043",), ANONYMOUS),
    # --- Orçamento Participativo on three levels
    ("orçamento participativo", ("service-035", "news-037"), ANONYMOUS),
    ("orcamento participativo", ("service-035", "news-037"), ANONYMOUS),
    ("propostas orçamento participativo", ("service-035",), ANONYMOUS),
    ("votação orçamento participativo", ("news-037",), ANONYMOUS),
    ("orçamento municipal 2026", ("news-039",), ANONYMOUS),
    ("orcamento partisipativo", ("service-035", "news-037"), ANONYMOUS),  # typo
    # --- monos vs resíduos verdes
    ("recolha de monos", ("service-021",), ANONYMOUS),
    ("monos", ("service-021",), ANONYMOUS),
    ("móveis velhos", ("service-021",), ANONYMOUS),
    ("resíduos verdes", ("service-022",), ANONYMOUS),
    ("recolha de residuos verdes", ("service-022",), ANONYMOUS),
    ("ecocentro reciclagem", ("page-029",), ANONYMOUS),
    # --- queimas
    ("queimas", ("service-025", "news-029", "page-037"), ANONYMOUS),
    ("queima de sobrantes", ("service-025",), ANONYMOUS),
    ("queimadas período crítico", ("news-029",), ANONYMOUS),
    # --- everyday services
    ("praias bandeira azul", ("news-011", "page-038"), ANONYMOUS),
    ("praia", ("poi-004", "poi-005", "poi-006", "poi-007", "page-038"), ANONYMOUS),
    ("nadadores-salvadores", ("page-039",), ANONYMOUS),
    ("biblioteca municipal", ("poi-020", "page-027"), ANONYMOUS),
    ("bolsas de estudo ensino superior", ("service-028", "news-017"), ANONYMOUS),
    ("refeições escolares", ("page-031", "news-016"), ANONYMOUS),
    ("transporte escolar", ("service-030", "news-020"), ANONYMOUS),
    ("alojamento local", ("service-017",), ANONYMOUS),
    ("vendedor ambulante", ("service-016",), ANONYMOUS),
    ("adotar um cão", ("service-027",), ANONYMOUS),
    ("cartão sénior", ("service-032",), ANONYMOUS),
    ("renda acessível", ("service-033",), ANONYMOUS),
    ("isenção de IMI", ("service-034",), ANONYMOUS),
    ("poda de árvores", ("service-023",), ANONYMOUS),
    ("buracos na estrada", ("service-024",), ANONYMOUS),
    ("plano diretor municipal", ("page-033",), ANONYMOUS),
    ("PDM", ("page-033",), ANONYMOUS),
    ("piscinas municipais", ("poi-011", "news-022"), ANONYMOUS),
    ("proteção de dados", ("service-039", "page-020"), ANONYMOUS),
    ("concursos emprego", ("page-012", "page-013"), ANONYMOUS),
    ("licen", ("service-006", "service-007", "service-008", "service-013"), ANONYMOUS),  # typing
    # --- visitors' English (default synonyms)
    ("parking permit", ("service-018",), ANONYMOUS),
    ("noise permit", ("service-006", "service-007"), ANONYMOUS),
    ("bulky waste collection", ("service-021",), ANONYMOUS),
    ("garden waste", ("service-022",), ANONYMOUS),
    ("beach", ("poi-004", "poi-005", "poi-006", "poi-007", "page-038"), ANONYMOUS),
    ("library", ("poi-020", "page-027"), ANONYMOUS),
    ("residence certificate", ("service-001",), ANONYMOUS),
    ("swimming pool", ("poi-011",), ANONYMOUS),
    ("lifeguards", ("page-039",), ANONYMOUS),
    ("participatory budget", ("service-035", "news-037"), ANONYMOUS),
    # --- the intranet: employees and workspace members
    ("teletrabalho", ("internal-007",), EMPLOYEE),
    ("teletrabalho vpn", ("workspace-015",), member_of("informatica")),
    ("phishing", ("internal-014",), EMPLOYEE),
    ("phishing", ("workspace-014", "internal-014"), member_of("informatica")),
    ("siadap", ("internal-004",), EMPLOYEE),
    ("siadap", ("internal-004", "workspace-009"), member_of("recursos-humanos")),
    ("subsídio de refeição", ("internal-008",), EMPLOYEE),
    ("marcação de férias", ("internal-011",), EMPLOYEE),
    ("depressão Olímpia", ("news-030",), ANONYMOUS),
    ("depressão Olímpia", ("news-030", "workspace-024"), member_of("protecao-civil")),
    ("tabela remuneratória", ("workspace-006",), member_of("recursos-humanos")),
]
