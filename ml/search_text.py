"""One folding of text for search, applied to the catalog's words and to what people type.

`sql/search.sql` matches query terms against tag text, so both sides must be folded by the same function,
or "SKU-4411" meets "sku 4411" and finds nothing. The catalog side is folded once, where the `catalog` table
is written (its `search_text` column); the query side by `search_terms` before the SQL runs. SQL only compares
what this module produced, so there is no second folding (DuckDB's `lower`/`strip_accents`) to drift from it.

Folding: Unicode NFKC (full-width letters and digits, ligatures, half-width katakana become the usual forms),
case folding (`Straße` = `strasse`), accents dropped on Latin, Greek and Cyrillic letters (`Moosgrün` =
`moosgrun`), and every punctuation mark, symbol or separator turned into a word break (`SKU-4411`,
`SKU 4411` and `sku/4411` are the same words). Written on the standard library's `unicodedata` rather than
`unidecode`/`anyascii`: those romanise every script, so `グレイシャー` would become Latin letters that a
Japanese query typed as kana no longer matches, and the marks of Japanese (dakuten) and Indic scripts are
part of the letter, not an accent, so they are kept.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# Blocks whose combining marks are accents a searcher leaves out: Latin (incl. Extended-A/B and Additional),
# Greek, Cyrillic. Marks on any other script are part of its letters.
_ACCENTED_BLOCKS = ((0x0000, 0x024F), (0x1E00, 0x1EFF), (0x0370, 0x03FF), (0x0400, 0x04FF))


def _takes_accents(base: str) -> bool:
    return bool(base) and any(lo <= ord(base) <= hi for lo, hi in _ACCENTED_BLOCKS)


def fold(text: str) -> str:
    """`text` as search compares it: lower-case words of letters and digits, one space between them."""
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    out: list[str] = []
    base = ""
    for ch in unicodedata.normalize("NFD", text):
        category = unicodedata.category(ch)
        if category == "Mn":
            if not _takes_accents(base):
                out.append(ch)
            continue
        base = ch
        if category == "Cf":  # zero-width joiners and the like: invisible, never a word break
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


def tag_search_text(tag_id: str, name: str, aliases: Iterable[str], identifiers: Iterable[str]) -> list[str]:
    """The `catalog.search_text` column: the tag's id, name, aliases and identifiers, each folded, in that order
    (kept apart so a phrase never matches across two of them)."""
    entries: list[str] = []
    for text in (tag_id, name, *aliases, *identifiers):
        entry = fold(text)
        if entry and entry not in entries:
            entries.append(entry)
    return entries
