"""One folding of text for search, applied to the catalog's words and to what people type.

`sql/search.sql` matches query terms against tag text, so both sides must be folded by the same function,
or "SKU-4411" meets "sku 4411" and finds nothing. The catalog side is folded once, where the `catalog` table
is written (its `search_text` column); the query side by `search_terms` before the SQL runs. SQL only compares
what this module produced, so there is no second folding (DuckDB's `lower`/`strip_accents`) to drift from it.

Folding: Unicode NFKC (full-width letters and digits, ligatures, half-width katakana become the usual forms),
case folding (`Straße` = `strasse`), accents dropped on Latin, Greek and Cyrillic letters (`Moosgrün` =
`moosgrun`), Hebrew niqqud and Arabic harakat and tatweel dropped (vowel signs readers supply and searchers
leave out), the Arabic alef forms أ إ آ read as ا (as Arabic search engines do; teh marbuta, alef maqsura and
the hamza seats ؤ ئ stay: they tell words apart), and every punctuation mark, symbol or separator turned into a
word break (`SKU-4411`, `SKU 4411` and `sku/4411` are the same words). Written on the standard library's
`unicodedata` rather than `unidecode`/`anyascii`: those romanise every script, so `グレイシャー` would become
Latin letters that a Japanese query typed as kana no longer matches, and the marks of Japanese (dakuten) and
Indic scripts are part of the letter, not an accent, so they are kept.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# Blocks whose combining marks are accents a searcher leaves out: Latin (incl. Extended-A/B and Additional),
# Greek, Cyrillic, and Hebrew (niqqud and cantillation). Marks on any other script are part of its letters,
# except the Arabic ones below.
_ACCENTED_BLOCKS = ((0x0000, 0x024F), (0x1E00, 0x1EFF), (0x0370, 0x03FF), (0x0400, 0x04FF), (0x0590, 0x05FF))
# Arabic harakat (tashkeel: fathatan .. sukun and the rarer vowel signs up to U+065F, superscript alef U+0670).
# Maddah and hamza above/below (U+0653-U+0655) are the marks that NFD splits off أ إ آ: dropped on alef only,
# so those become ا while ؤ (waw + hamza) and ئ (yeh + hamza), letters of their own, stay.
_ARABIC_ALEF = "\u0627"
_ALEF_MARKS = frozenset("\u0653\u0654\u0655")
_HARAKAT = frozenset(chr(c) for c in [*range(0x064B, 0x0660), 0x0670]) - _ALEF_MARKS
_TATWEEL = "\u0640"  # the kashida that stretches a word: a letter (Lm) to Unicode, nothing to a searcher


def _drops_mark(mark: str, base: str) -> bool:
    """Whether combining `mark` on letter `base` is left out of search text."""
    if mark in _HARAKAT:
        return True
    if mark in _ALEF_MARKS:
        return base == _ARABIC_ALEF
    return bool(base) and any(lo <= ord(base) <= hi for lo, hi in _ACCENTED_BLOCKS)


def fold(text: str) -> str:
    """`text` as search compares it: lower-case words of letters and digits, one space between them."""
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    out: list[str] = []
    base = ""
    for ch in unicodedata.normalize("NFD", text):
        category = unicodedata.category(ch)
        if category == "Mn":
            if not _drops_mark(ch, base):
                out.append(ch)
            continue
        base = ch
        if category == "Cf" or ch == _TATWEEL:  # zero-width joiners and the like: invisible, never a word break
            continue
        out.append(" " if category[0] in "PSZ" or category == "Cc" else ch)
    return " ".join(unicodedata.normalize("NFC", "".join(out)).split())


def search_terms(text: str) -> list[str]:
    """What a person typed, as the terms `sql/search.sql` takes: one per word they typed (split on spaces and
    commas), each folded; a word with inner punctuation stays one term ("SKU-4411" -> "sku 4411", matched as
    those words in a row), so it cannot be satisfied by two different tags. Empty and repeated terms are dropped."""
    terms: list[str] = []
    for word in text.replace(",", " ").split():
        term = fold(word)
        if term and term not in terms:
            terms.append(term)
    return terms


def tag_search_text(
    tag_id: str, name: str, aliases: Iterable[str], identifiers: Iterable[str], names: Iterable[str] = ()
) -> list[str]:
    """The `catalog.search_text` column: the tag's id, name, aliases, identifiers and display names in other
    languages, each folded, in that order (kept apart so a phrase never matches across two of them)."""
    entries: list[str] = []
    for text in (tag_id, name, *aliases, *identifiers, *names):
        entry = fold(text)
        if entry and entry not in entries:
            entries.append(entry)
    return entries
