"""Default synonyms: everyday words and English visitors' words → the council's own terms.

The dictionary has Meilisearch's shape (``{"word": ["alternative", …]}``, one-way), so every
backend reads it the same way; :func:`mutual` builds groups that expand in every direction.
Keys and values may be several words ("parking permit"); accents and case do not matter.
Sites replace or extend it with ``configure_synonyms``.
"""

from __future__ import annotations

from collections.abc import Iterable


def mutual(*words: str) -> dict[str, list[str]]:
    """Every word of the group expands to all the others."""
    return {w: [o for o in words if o != w] for w in words}


def one_way(sources: Iterable[str], targets: Iterable[str]) -> dict[str, list[str]]:
    """Each source expands to the targets (not the other way round)."""
    targets = list(targets)
    return {s: list(targets) for s in sources}


def merge(*parts: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in parts:
        for key, values in part.items():
            bucket = out.setdefault(key, [])
            bucket.extend(v for v in values if v not in bucket and v != key)
    return out


# Portuguese: the same thing said two ways (both directions).
_PT_MUTUAL = [
    mutual("lixo", "resíduos"),
    mutual("monos", "monstros", "objetos volumosos"),
    mutual("dístico", "cartão de residente"),
    mutual("moradores", "residentes"),
    mutual("multa", "coima"),
    mutual("autocarro", "autocarros", "camioneta"),
    mutual("bicicleta", "bicicletas", "bike"),
    mutual("pdm", "plano diretor municipal"),
    mutual("imi", "imposto municipal sobre imóveis"),
    mutual("rgpd", "proteção de dados"),
    mutual("op", "orçamento participativo"),
    mutual("ase", "ação social escolar"),
    mutual("al", "alojamento local"),
    mutual("atestado", "certidão"),
    mutual("emprego", "recrutamento", "concursos"),
    mutual("canil", "centro de recolha oficial"),
]

# Portuguese: everyday words → the council's terms (one way: "barulho" finds "ruído", not back).
_PT_ONE_WAY = [
    one_way(["barulho"], ["ruído"]),
    one_way(["fogueira", "fogueiras"], ["queima", "queimada"]),
    one_way(["móveis velhos", "sofá velho", "colchão velho", "eletrodomésticos velhos"], ["monos"]),
    one_way(["relva", "ramos", "podas"], ["resíduos verdes"]),
    one_way(["entulho"], ["resíduos de construção", "contentor de entulho"]),
    one_way(["buraco", "buracos", "candeeiro avariado"], ["ocorrência", "via pública"]),
    one_way(["candeeiro", "luz da rua"], ["iluminação pública"]),
    one_way(["arrumar o carro", "parquímetro"], ["estacionamento"]),
    one_way(["morada"], ["residência"]),
    one_way(["renda"], ["arrendamento"]),
    one_way(["casa", "casas"], ["habitação"]),
    one_way(["cão", "cães", "gato", "gatos"], ["animais"]),
    one_way(["festa", "festas", "arraial"], ["eventos"]),
    one_way(["cantina", "almoço escolar"], ["refeições escolares"]),
    one_way(["nadador salvador"], ["nadadores-salvadores"]),
    one_way(["impostos"], ["imi", "taxas"]),
    one_way(["junta"], ["freguesia"]),
]

# English visitors → Portuguese council terms.
_EN = [
    one_way(["parking"], ["estacionamento"]),
    one_way(["car park", "parking lot"], ["parque de estacionamento"]),
    one_way(["parking permit", "resident permit", "residents parking"], ["dístico de residente"]),
    one_way(["disabled parking"], ["estacionamento mobilidade condicionada"]),
    one_way(["permit", "license", "licence"], ["licença", "autorização"]),
    one_way(["certificate"], ["certidão", "certificado", "atestado"]),
    one_way(["residence", "residency"], ["residência"]),
    one_way(["resident", "residents"], ["residente", "residentes"]),
    one_way(["noise"], ["ruído"]),
    one_way(["garbage", "trash", "rubbish", "waste"], ["resíduos", "lixo"]),
    one_way(["bulky waste", "bulky items", "old furniture"], ["monos"]),
    one_way(["garden waste", "green waste"], ["resíduos verdes"]),
    one_way(["recycling"], ["reciclagem"]),
    one_way(["beach", "beaches"], ["praia", "praias"]),
    one_way(["lifeguard", "lifeguards"], ["nadadores-salvadores"]),
    one_way(["library", "libraries"], ["biblioteca", "bibliotecas"]),
    one_way(["museum", "museums"], ["museu", "museus"]),
    one_way(["swimming pool", "pool", "swimming"], ["piscina", "piscinas"]),
    one_way(["bus", "buses"], ["autocarro", "autocarros"]),
    one_way(["bike", "bicycle"], ["bicicleta"]),
    one_way(["tax", "taxes", "fee", "fees"], ["taxa", "taxas"]),
    one_way(["property tax"], ["imi"]),
    one_way(["budget"], ["orçamento"]),
    one_way(["participatory budget"], ["orçamento participativo"]),
    one_way(["building permit", "construction permit"], ["licença de obras"]),
    one_way(["works", "construction", "roadworks"], ["obras"]),
    one_way(["terrace", "outdoor seating", "sidewalk cafe"], ["esplanada"]),
    one_way(["street vendor", "street trading"], ["vendedor ambulante"]),
    one_way(["holiday rental", "short term rental"], ["alojamento local"]),
    one_way(["housing", "rent"], ["habitação", "arrendamento"]),
    one_way(["scholarship", "scholarships"], ["bolsas de estudo"]),
    one_way(["school meals", "school lunch"], ["refeições escolares"]),
    one_way(["school bus", "school transport"], ["transporte escolar"]),
    one_way(["school", "schools"], ["escola", "escolas"]),
    one_way(["adoption", "adopt"], ["adoção"]),
    one_way(["dog", "dogs"], ["cão", "cães"]),
    one_way(["cat", "cats"], ["gato", "gatos"]),
    one_way(["fire", "wildfire"], ["incêndio", "incêndios"]),
    one_way(["bonfire", "burning"], ["queima", "queimada"]),
    one_way(["storm"], ["tempestade", "depressão"]),
    one_way(["flood", "flooding"], ["cheias", "inundação"]),
    one_way(["tree", "trees"], ["árvore", "árvores"]),
    one_way(["pruning"], ["poda"]),
    one_way(["pothole", "potholes"], ["buracos", "ocorrência"]),
    one_way(["report a problem", "complaint"], ["ocorrência", "reclamação"]),
    one_way(["events", "event"], ["eventos", "evento"]),
    one_way(["concert", "concerts"], ["concerto", "concertos"]),
    one_way(["fair", "market"], ["feira", "mercado"]),
    one_way(["exhibition"], ["exposição"]),
    one_way(["health", "health centre", "health center"], ["saúde", "centro de saúde"]),
    one_way(["vaccine", "vaccination", "flu shot"], ["vacinação"]),
    one_way(["heat wave", "heatwave"], ["onda de calor"]),
    one_way(["jobs", "job", "careers"], ["emprego", "recrutamento", "concursos"]),
    one_way(["opening hours", "hours"], ["horário", "horários"]),
    one_way(["contacts", "contact"], ["contactos"]),
    one_way(["privacy", "data protection"], ["privacidade", "proteção de dados"]),
    one_way(["accessibility"], ["acessibilidade"]),
    one_way(["mayor"], ["presidente da câmara"]),
    one_way(["city council", "town council", "city hall", "town hall"], ["câmara municipal", "paços do concelho"]),
    one_way(["parish"], ["freguesia"]),
    one_way(["map", "maps"], ["mapa", "mapas"]),
    one_way(["senior card", "seniors", "elderly"], ["cartão sénior", "seniores"]),
    one_way(["citizen shop", "citizen service"], ["loja do munícipe"]),
]

DEFAULT_SYNONYMS: dict[str, list[str]] = merge(*_PT_MUTUAL, *_PT_ONE_WAY, *_EN)
