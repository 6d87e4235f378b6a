"""Portuguese text analysis shared by the embedded engine: analyzers, query parsing, highlighting.

Every text field is indexed twice (see ``docs/ARCHITECTURE.md``, "Search"):

* ``*_f`` (folded): lowercase + ASCII folding, no stemming.  Exact words, typos and prefixes
  are matched here, so ``ruido`` finds "ruído" and ``licen`` finds "licença".
* ``*_s`` (stemmed): lowercase + ASCII folding + Portuguese Snowball stemmer.  The stemmer runs
  on the *folded* word on both sides (document and query), so a query typed without accents
  gets the same stem as the accented text ("licitacao" and "licitação" both give ``licitaca``).

Folding before stemming weakens the stemmer on plurals such as -ão/-ões ("licitacao" →
``licitaca`` but "licitacoes" → ``licitaco``; "obra" and "obras" are too short to be stemmed at
all).  Stemming the accented word instead would break accent-less queries, so plurals are
handled where it is cheap: at query time each word is expanded into its singular and plural
forms (:func:`number_variants`, the rules of a Portuguese "light" stemmer) and each form is
stemmed, so "certidões", "certidoes", "certidão" and "certidao" all reach the same documents.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import tantivy

FOLD_TOKENIZER = "pt_fold"
STEM_TOKENIZER = "pt_stem"
#: Longer tokens are dropped (hashes, base64, pasted URLs): they never help and bloat the index.
MAX_TOKEN_CHARS = 40


def _builder() -> tantivy.TextAnalyzerBuilder:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_CHARS))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )


def fold_analyzer() -> tantivy.TextAnalyzer:
    return _builder().build()


def stem_analyzer() -> tantivy.TextAnalyzer:
    return _builder().filter(tantivy.Filter.stemmer("portuguese")).build()


def register_analyzers(index: tantivy.Index) -> None:
    """Analyzers live in the process, not in the index files: register them on every open."""
    index.register_tokenizer(FOLD_TOKENIZER, fold_analyzer())
    index.register_tokenizer(STEM_TOKENIZER, stem_analyzer())


FOLD = fold_analyzer()
STEM = stem_analyzer()

# --------------------------------------------------------------------------------------------
# Stop words (folded).  They stay in the index (phrases, snippets) but never in a query.
# --------------------------------------------------------------------------------------------
_PT_STOP = """
a o as os um uma uns umas de do da dos das d em no na nos nas num numa nuns numas ao aos
por pelo pela pelos pelas para pra pro com sem sob sobre entre ate apos desde contra
e ou nem mas que se como onde quando qual quais quem cujo cuja porque porque pois
eu tu ele ela eles elas voce voces me te lhe lhes nos vos se mim ti si
meu minha meus minhas teu tua teus tuas seu sua seus suas nosso nossa nossos nossas
este esta estes estas isto esse essa esses essas isso aquele aquela aqueles aquelas aquilo
ser sao e era foi estar esta estao ha tem ter
ja mais muito muita muitos muitas tambem so nao sim la aqui ai
"""
_EN_STOP = """
the of for to in on at by with from and or an is are be my i how what where when do does can
"""
STOP_WORDS = frozenset((_PT_STOP + _EN_STOP).split())


# --------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------
#: One-to-one accent folding of Latin letters (keeps offsets): "licença" -> "licenca".
_FOLD_TABLE = {
    code: base
    for code in range(0xC0, 0x250)
    if len(base := "".join(c for c in unicodedata.normalize("NFKD", chr(code)) if not unicodedata.combining(c))) == 1
}


def fold(text: str) -> str:
    """Lowercase and strip accents like the index does (used for highlighting and synonyms)."""
    text = text.lower()
    if text.isascii():
        return text
    text = text.translate(_FOLD_TABLE)
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_WORD = re.compile(r"[^\W_]+")


def words_with_offsets(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, folded word)`` for every word, like tantivy's simple tokenizer."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a rare letter whose lower case is longer: fold word by word
        for m in _WORD.finditer(text):
            yield m.start(), m.end(), fold(m.group())
        return
    folded = lowered.translate(_FOLD_TABLE)
    for m in _WORD.finditer(folded):
        word = m.group()
        yield m.start(), m.end(), word if word.isascii() else fold(word)


def allowed_typos(word: str) -> int:
    """Meilisearch's defaults: one typo from 5 letters, two from 9."""
    if word.isdigit():
        return 0
    return 2 if len(word) >= 9 else 1 if len(word) >= 5 else 0


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, or ``limit + 1`` when larger."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    return _osa(a, b, limit, prefix=False)


def prefix_distance(word: str, prefix: str, limit: int) -> int:
    """Smallest distance between ``prefix`` and any start of ``word`` (typo-tolerant prefix match)."""
    if len(word) < len(prefix) - limit:
        return limit + 1
    return _osa(prefix, word[: len(prefix) + limit], limit, prefix=True)


def _osa(a: str, b: str, limit: int, prefix: bool) -> int:
    over = limit + 1
    n = len(b)
    prev2: list[int] = []
    prev = list(range(n + 1))
    for i in range(1, len(a) + 1):
        ca = a[i - 1]
        cur = [i] * (n + 1)
        for j in range(1, n + 1):
            cb = b[j - 1]
            value = prev[j - 1] if ca == cb else prev[j - 1] + 1
            if prev[j] + 1 < value:
                value = prev[j] + 1
            if cur[j - 1] + 1 < value:
                value = cur[j - 1] + 1
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb and prev2[j - 2] + 1 < value:
                value = prev2[j - 2] + 1
            cur[j] = value
        if min(cur) > limit:
            return over
        prev2, prev = prev, cur
    result = min(prev) if prefix else prev[n]
    return result if result <= limit else over


def number_variants(word: str) -> set[str]:
    """Singular and plural forms of a folded Portuguese word (over-generation is harmless)."""
    out = {word}
    if len(word) < 3 or not word.isalpha():
        return out
    # plural -> singular
    for suffix, replacements in _PLURAL_RULES:
        if word.endswith(suffix) and len(word) > len(suffix):
            stem = word[: -len(suffix)]
            out.update(stem + r for r in replacements)
            break
    # singular -> plural
    if word.endswith("ao"):
        out.update((word[:-2] + "oes", word[:-2] + "aes", word + "s"))
    elif word.endswith("il"):
        out.update((word[:-1] + "s", word[:-2] + "eis"))
    elif word[-2:] in ("al", "el", "ol", "ul"):
        out.add(word[:-1] + "is")
    elif word.endswith("m"):
        out.add(word[:-1] + "ns")
    elif word[-1] in "rzs":
        out.add(word + "es")
    elif word[-1] in "aeiou":
        out.add(word + "s")
    return {w for w in out if len(w) >= 3}


_PLURAL_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("oes", ("ao",)),
    ("aes", ("ao",)),
    ("aos", ("ao",)),
    ("ais", ("al",)),
    ("eis", ("el", "il")),
    ("ois", ("ol",)),
    ("uis", ("ul",)),
    ("is", ("il",)),
    ("ns", ("m",)),
    ("res", ("r",)),
    ("zes", ("z",)),
    ("ses", ("s", "se")),
    ("s", ("",)),
)


@lru_cache(maxsize=4096)
def stems_of(word: str) -> frozenset[str]:
    """Stems of a folded word and of its singular/plural forms (what to look up in ``*_s``)."""
    out: set[str] = set()
    for variant in number_variants(word):
        out.update(STEM.analyze(variant))
    return frozenset(out)


@lru_cache(maxsize=65536)
def stem_of(word: str) -> str:
    tokens = STEM.analyze(word)
    return tokens[0] if tokens else word


# --------------------------------------------------------------------------------------------
# Markdown to plain text (bodies are Markdown; snippets and the index want words)
# --------------------------------------------------------------------------------------------
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$", re.M)
_MD_LINE_MARK = re.compile(r"^[ \t]{0,3}(#{1,6}|>|[-*+]|\d+[.)])[ \t]+", re.M)
_MD_EMPHASIS = re.compile(r"(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)")
_MD_CELL = re.compile(r"[ \t]*\|[ \t]*")


def plain_text(markdown: str) -> str:
    """Markdown (or plain text) to readable plain text; cheap, no HTML is produced.

    Each rule runs only when its marker occurs: most bodies need two or three passes.
    """
    if not markdown:
        return ""
    text = markdown
    if "](" in text:
        text = _MD_LINK.sub(r"\1", _MD_IMAGE.sub(r"\1", text))
    if "---" in text:
        text = _MD_TABLE_RULE.sub("", text)
    text = _MD_LINE_MARK.sub("", text)
    for mark in ("**", "__", "~~", "`"):
        if mark in text:
            text = text.replace(mark, "")
    if "*" in text or "_" in text:
        text = _MD_EMPHASIS.sub("", text)
    if "|" in text:
        text = "\n".join(_MD_CELL.sub(" · ", line).strip(" ·") for line in text.split("\n"))
    return text.strip()


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Word:
    text: str  # folded
    prefix: bool = False

    @property
    def typos(self) -> int:
        return allowed_typos(self.text)


@dataclass
class Group:
    """One query word (or a multi-word synonym key) and its alternatives; any alternative matches.

    For a multi-word key, ``parts`` holds each of its words as a group of its own (with its own
    synonyms): the original words must all match, each in any of its forms.
    """

    original: tuple[Word, ...]
    synonyms: list[tuple[Word, ...]] = field(default_factory=list)
    parts: list[Group] = field(default_factory=list)

    @property
    def alternatives(self) -> list[tuple[Word, ...]]:
        return [self.original, *self.synonyms]

    def all_words(self) -> Iterator[Word]:
        for alternative in self.alternatives:
            yield from alternative
        for part in self.parts:
            yield from part.all_words()


def tokenize_query(text: str) -> list[str]:
    return FOLD.analyze(text) if text else []


def content_words(tokens: list[str]) -> list[str]:
    """Query tokens minus stop words and stray letters (digits stay)."""
    return [t for t in tokens if t not in STOP_WORDS and (len(t) > 1 or t.isdigit())]


class SynonymMap(dict[tuple[str, ...], list[tuple[str, ...]]]):
    """Normalised synonyms (``key words → alternatives``) from :func:`normalize_synonyms`, which also notes
    how many words the longest key has (:func:`parse_query` would otherwise scan every key per query)."""

    longest: int = 1


def normalize_synonyms(synonyms: dict[str, list[str]] | None) -> SynonymMap:
    """Fold and tokenize keys and values (stop words dropped, as in queries); keys match whole words."""
    out = SynonymMap()
    for key, values in (synonyms or {}).items():
        k = tuple(content_words(tokenize_query(key)))
        if not k:
            continue
        bucket = out.setdefault(k, [])
        for value in values:
            v = tuple(content_words(tokenize_query(value)))
            if v and v != k and v not in bucket:
                bucket.append(v)
    out.longest = max((len(k) for k in out), default=1)
    return out


def parse_query(
    text: str, synonyms: dict[tuple[str, ...], list[tuple[str, ...]]] | None = None, prefix: bool = True
) -> list[Group]:
    """Words to look for: stop words removed, last word a prefix while typing, synonyms attached."""
    tokens = tokenize_query(text)
    words = content_words(tokens)
    if not words:
        return []
    # The last word is being typed unless the text ends with a space or the word was a stop word.
    typing = prefix and bool(tokens) and tokens[-1] == words[-1] and not text[-1:].isspace()
    synonyms = synonyms or {}
    longest = synonyms.longest if isinstance(synonyms, SynonymMap) else max((len(k) for k in synonyms), default=1)

    def single(word: Word) -> Group:
        return Group((word,), [tuple(Word(w) for w in alt) for alt in synonyms.get((word.text,), [])])

    groups: list[Group] = []
    i = 0
    while i < len(words):
        size = 1
        for size in range(min(longest, len(words) - i), 1, -1):
            if tuple(words[i : i + size]) in synonyms:
                break
        else:
            size = 1
        last = i + size == len(words)
        original = tuple(Word(w, prefix=typing and last and j == size - 1) for j, w in enumerate(words[i : i + size]))
        if size == 1:
            groups.append(single(original[0]))
        else:
            key = tuple(words[i : i + size])
            alternatives = [tuple(Word(w) for w in alt) for alt in synonyms[key]]
            groups.append(Group(original, alternatives, parts=[single(w) for w in original]))
        i += size
    return groups


# --------------------------------------------------------------------------------------------
# Highlighting
# --------------------------------------------------------------------------------------------
class Matcher:
    """Decides whether a document word matches the query (exact, stem, typo or prefix).

    :meth:`candidates` finds, in raw text, every word that *may* match (accent- and case-insensitive):
    words that start with a query word, a stem or a prefix, and words that contain a piece of a
    typo-tolerant word (cut into ``d + 1`` pieces, a word within ``d`` edits keeps one of them intact).
    Only those words are folded and checked exactly.
    """

    def __init__(self, groups: Iterable[Group], no_typos: Iterable[str] = ()) -> None:
        groups = list(groups)
        no_typos = set(no_typos)
        #: how many words the query has (a text that matches this many needs no other)
        self.words = len(groups)
        self.exact: set[str] = set()
        self.stems: set[str] = set()
        #: typo-tolerant words: (word, typos, its letters)
        self.fuzzy: list[tuple[str, int, frozenset[str]]] = []
        self.prefixes: list[tuple[str, int, frozenset[str]]] = []
        for group in groups:
            for word in group.all_words():
                self.exact.add(word.text)
                self.stems.update(stems_of(word.text))
                typos = 0 if word.text in no_typos else word.typos
                if word.prefix:
                    self.prefixes.append((word.text, typos, frozenset(word.text)))
                elif typos:
                    self.fuzzy.append((word.text, typos, frozenset(word.text)))
        self._heads = {s[:2] for s in self.stems}
        self._cache: dict[str, bool] = {}
        self._patterns: tuple[re.Pattern[str] | None, re.Pattern[str] | None] | None = None
        self._scan = self._scan_words()

    def _scan_words(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...]] | None:
        """What :meth:`candidates` looks for in folded Latin-1 text: the heads (query words, stems and
        prefixes, kept at word starts) and the pieces of typo-tolerant words (anywhere in a word), as
        bytes; ``None`` when one is not plain lower-case ASCII (then only the patterns can find it)."""
        heads = self.exact | self.stems | {text for text, _, _ in self.prefixes}
        pieces = {p for text, typos, _ in (*self.fuzzy, *self.prefixes) if typos for p in _pieces(text, typos)}
        if not all(_SCANNABLE.fullmatch(word) for word in (*heads, *pieces)):
            return None
        return tuple(w.encode() for w in heads), tuple(p.encode() for p in pieces)

    def _compile(self) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
        """Two patterns that search the whole text in C: query words, stems and prefixes (then kept only at
        the start of a word), and pieces of typo-tolerant words (anywhere in a word).  Each starts with a
        lookahead on its possible first letters, so most positions are rejected at once, and runs to the
        end of the word, so a word is found once and the search goes on with the next one."""
        heads = self.exact | self.stems | {text for text, _, _ in self.prefixes}
        pieces = {p for text, typos, _ in (*self.fuzzy, *self.prefixes) if typos for p in _pieces(text, typos)}
        head_pattern = piece_pattern = None
        if heads:
            alternatives = "|".join(_loose(h) for h in sorted(heads, key=len, reverse=True))
            head_pattern = re.compile(f"(?={_first_letters(heads)})(?:{alternatives})" + r"[^\W_]*", re.IGNORECASE)
        if pieces:
            alternatives = "|".join(_loose(p) for p in sorted(pieces))
            piece_pattern = re.compile(f"(?={_first_letters(pieces)})(?:{alternatives})" + r"[^\W_]*", re.IGNORECASE)
        return head_pattern, piece_pattern

    def candidates(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` of the words of ``text`` that may match, in order (words as ``[^\\W_]+`` runs).

        Latin-1 text (Portuguese, English…) is folded to one byte per character (:data:`_SCAN_TABLE`) and
        searched with ``bytes.find``; other text, or a query word outside plain ASCII, with two patterns.
        Both find the same words (``tests/search/test_embedded.py`` holds them to a reference pattern).
        """
        if self._scan is not None:
            try:
                folded = text.encode("latin-1").translate(_SCAN_TABLE)
            except UnicodeEncodeError:
                pass
            else:
                return _scan(folded, *self._scan)
        if self._patterns is None:
            self._patterns = self._compile()
        head_pattern, piece_pattern = self._patterns
        found: dict[int, int] = {}
        if head_pattern is not None:
            for m in head_pattern.finditer(text):  # runs to the end of its word, so never hides a word start
                start = m.start()
                if not start or not text[start - 1].isalnum():  # isalnum() is the [^\W_] of the patterns
                    found[start] = m.end()
        if piece_pattern is not None:
            for m in piece_pattern.finditer(text):  # runs to the end of its word: back up to its start
                start = m.start()
                while start and text[start - 1].isalnum():
                    start -= 1
                found.setdefault(start, m.end())
        return sorted(found.items())

    def __bool__(self) -> bool:
        return bool(self.exact)

    def matches(self, word: str) -> bool:
        hit = self._cache.get(word)
        if hit is None:
            hit = self._cache[word] = self._matches(word)
        return hit

    def _matches(self, word: str) -> bool:
        if word in self.exact:
            return True
        if word[:2] in self._heads and stem_of(word) in self.stems:
            return True
        if self.fuzzy:
            size = len(word)
            letters = set(word)
            for text, typos, text_letters in self.fuzzy:
                if (
                    abs(size - len(text)) <= typos
                    and len(letters.symmetric_difference(text_letters)) <= 2 * typos
                    and edit_distance(word, text, typos) <= typos
                ):
                    return True
        for text, typos, text_letters in self.prefixes:
            if word.startswith(text):
                return True
            if (
                typos
                and len(word) >= len(text) - typos
                and len(text_letters.difference(word[: len(text) + typos])) <= typos
                and prefix_distance(word, text, typos) <= typos
            ):
                return True
        return False


def _first_letters(words: Iterable[str]) -> str:
    """A character class of the first letters of ``words`` and of their accented forms."""
    return "[" + "".join(sorted({_VARIANTS.get(w[0], re.escape(w[0])) for w in words})) + "]"


def _pieces(word: str, typos: int) -> list[str]:
    """``word`` cut into ``typos + 1`` pieces (pigeonhole: ``typos`` edits leave one piece intact)."""
    count = typos + 1
    size, extra = divmod(len(word), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(word[start:end])
        start = end
    return [p for p in out if p]


#: Folded letter -> the Latin-1 lower-case letters that fold to it ("c" -> "cç"); matching ignores case.
_VARIANTS: dict[str, str] = {}
for _code, _base in _FOLD_TABLE.items():
    if _code <= 0xFF and chr(_code).islower() and _base.isascii() and _base.isalpha():
        _VARIANTS[_base] = _VARIANTS.get(_base, _base) + chr(_code)


def _loose(folded: str) -> str:
    """A regular expression for ``folded`` that also matches its accented spellings."""
    return "".join(f"[{_VARIANTS[c]}]" if c in _VARIANTS else re.escape(c) for c in folded)


def _scan_table() -> bytes:
    """One byte per Latin-1 character, keeping offsets: what the patterns of :meth:`Matcher._compile` see in it.

    A character the patterns match for a folded ASCII letter or digit becomes that letter ("Ç" and "ç" →
    "c", "A" → "a"); any other word character (``[^\\W_]``: "ß", "º", "²"…) becomes "Z", which no folded
    query word contains; everything else (spaces, punctuation, "_") becomes a space.
    """
    word = re.compile(r"[^\W_]")
    out = bytearray()
    for code in range(256):
        char = chr(code)
        lower = char.lower()
        base = next((b for b, variants in _VARIANTS.items() if lower in variants), None)
        if lower.isascii() and lower.isalnum():
            out.append(ord(lower))
        elif base is not None:
            out.append(ord(base))
        else:
            out.append(ord("Z") if word.match(char) else ord(" "))
    return bytes(out)


_SCAN_TABLE = _scan_table()
_SCANNABLE = re.compile(r"[a-z0-9]+")


def _scan(folded: bytes, heads: tuple[bytes, ...], pieces: tuple[bytes, ...]) -> list[tuple[int, int]]:
    """The words of ``folded`` (see :data:`_SCAN_TABLE`: words are runs of non-spaces) that start with a head
    or contain a piece, as ``(start, end)`` in order."""
    found: dict[int, int] = {}
    size = len(folded)
    find, rfind = folded.find, folded.rfind
    for head in heads:
        at = find(head)
        while at != -1:
            if not at or folded[at - 1] == 32:  # at a word start
                end = find(b" ", at + len(head))
                found[at] = size if end == -1 else end
                if end == -1:
                    break
                at = find(head, end)
            else:
                at = find(head, at + 1)
    for piece in pieces:
        at = find(piece)
        while at != -1:
            end = find(b" ", at + len(piece))
            found.setdefault(rfind(b" ", 0, at) + 1, size if end == -1 else end)
            if end == -1:
                break
            at = find(piece, end)  # the next word that has it
    return sorted(found.items())


def highlight(text: str, matcher: Matcher, max_chars: int = 220) -> tuple[str, int]:
    """An HTML-safe window of ``text`` with ``<mark>`` around matching words, and how many matched.

    Everything outside the marks is escaped, so the result can be inserted into a page as is.
    """
    window = Snippet.of(text, matcher, max_chars)
    return window.html(), window.distinct


@dataclass(frozen=True)
class Snippet:
    """The window of ``text`` a snippet shows (the one with the most distinct matched words), before it is
    made into HTML: callers that compare several texts render only the one they keep."""

    text: str
    start: int
    max_chars: int
    spans: tuple[tuple[int, int, str], ...]
    #: distinct matched words inside the window
    distinct: int

    @classmethod
    def of(cls, text: str, matcher: Matcher, max_chars: int = 220) -> Snippet:
        if not text:
            return cls("", 0, max_chars, (), 0)
        spans = _matched_spans(text, matcher) if matcher else []
        if not spans:
            return cls(text, 0, max_chars, (), 0)
        start = _backtrack(text, _best_start(spans, max_chars), max_chars // 4)
        distinct = len({w for s, e, w in spans if start <= s and e <= start + max_chars})
        return cls(text, start, max_chars, tuple(spans), distinct)

    def html(self) -> str:
        return _window(self.text, self.start, self.max_chars, self.spans) if self.text else ""


def _best_start(spans: list[tuple[int, int, str]], max_chars: int) -> int:
    """Where the window with the most distinct matched words (then the most matches) starts: the first
    such span, scanning each window ``[span start, span start + max_chars - 20)`` once (two pointers)."""
    reach = max_chars - 20
    if reach <= 0:  # no span fits in a window: the first one
        return spans[0][0]
    best_start, best_score = spans[0][0], -1
    counts: dict[str, int] = {}
    j, n = 0, len(spans)
    for i in range(n):
        start = spans[i][0]
        while j < n and spans[j][0] < start + reach:
            word = spans[j][2]
            counts[word] = counts.get(word, 0) + 1
            j += 1
        score = len(counts) * 100 + (j - i)
        if score > best_score:
            best_start, best_score = start, score
        word = spans[i][2]
        if counts[word] == 1:
            del counts[word]
        else:
            counts[word] -= 1
    return best_start


def _matched_spans(text: str, matcher: Matcher) -> list[tuple[int, int, str]]:
    """``(start, end, folded word)`` of the words of ``text`` that match, in order."""
    spans = []
    for start, end in matcher.candidates(text):
        word = fold(text[start:end])
        if matcher.matches(word):
            spans.append((start, end, word))
    return spans


def _backtrack(text: str, position: int, room: int) -> int:
    """Start a little before the first match, at a sentence or word boundary."""
    if position <= room:
        return 0
    lower = position - room
    for stop in (". ", "\n"):
        found = text.rfind(stop, lower, position)
        if found != -1:
            return found + len(stop)
    space = text.find(" ", lower, position)
    return space + 1 if space != -1 else position


def _window(text: str, start: int, max_chars: int, spans: Iterable[tuple[int, int, str]]) -> str:
    end = min(len(text), start + max_chars)
    if end < len(text):
        space = text.rfind(" ", start, end)
        if space > start + max_chars // 2:
            end = space
    out: list[str] = ["…"] if start > 0 else []
    cursor = start
    for s, e, _ in spans:
        if s < start or e > end:
            continue
        out.append(html.escape(text[cursor:s]))
        out.append("<mark>" + html.escape(text[s:e]) + "</mark>")
        cursor = e
    out.append(html.escape(text[cursor:end]))
    if end < len(text):
        out.append("…")
    return " ".join("".join(out).split())
