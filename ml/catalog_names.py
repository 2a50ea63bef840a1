"""A tag's display names per language: parsed from a catalog row, validated, and looked up with a fallback.

A catalog may give a tag a name per language, as a YAML mapping (`names: {fr: Veste Aurore, ja: オーロラ}`) or as
flat keys (`name_fr: Veste Aurore`), which are also what a CSV catalog's columns (`name_fr`, `name_de`) give.
Language codes are folded to lower case with `-` (`pt_BR` -> `pt-br`), the shape of BCP 47 tags, so one
language never ends up under two keys. The names are search text too (ml/search_text.py `tag_search_text`),
and the API and CLI show a tag in a language with `display_name`: that language, else its base language
(`pt-br` -> `pt`), else the tag's `name`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

# a primary language of 2-3 letters, then subtags of 2-8 letters or digits (pt-br, zh-hant, es-419, sr-latn)
LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")
FLAT_PREFIX = "name_"
CODE_HINT = "like fr, de, ja, ar, pt-br"


class LanguageError(ValueError):
    """A language code a person typed (`--lang`, the API's `lang`) that is not one: one line, no traceback."""


def language_code(value) -> str | None:
    """`value` as a language code (lower case, `_` read as `-`), or None when it does not have that shape."""
    if not isinstance(value, str):
        return None
    code = value.strip().lower().replace("_", "-")
    return code if LANGUAGE.fullmatch(code) else None


def requested_language(lang: str | None) -> str:
    """A searcher's `lang` as the code the catalog uses ('' for none); LanguageError when it is not a code."""
    if lang is None or not lang.strip():
        return ""
    code = language_code(lang)
    if code is None:
        raise LanguageError(f"language {lang!r} is not a language code ({CODE_HINT})")
    return code


def parse_names(record: Mapping, where: str, problems: list[str]) -> dict[str, str]:
    """The display names of one catalog row by language code, from `names:` and `name_<code>` keys; each problem
    is appended to `problems` as "<where>: ..." (the catalog lists them all together). Empty values (a CSV
    row without that language) are no name."""
    entries: list[tuple[object, object, str]] = []
    mapping = record.get("names")
    if isinstance(mapping, Mapping):
        entries += [(lang, text, f"names: {lang}") for lang, text in mapping.items()]
    elif mapping not in (None, ""):
        problems.append(f"{where}: names must map language codes to names (names: {{fr: ..., ja: ...}})")
    entries += [
        (key[len(FLAT_PREFIX) :], text, key)
        for key, text in record.items()
        if isinstance(key, str) and key.startswith(FLAT_PREFIX)
    ]
    names: dict[str, str] = {}
    for lang, text, key in entries:
        code = language_code(lang)
        if code is None:
            quote = " (YAML reads no/yes/on/off as true/false: quote the code)" if isinstance(lang, bool) else ""
            problems.append(f"{where}: {key}: {lang!r} is not a language code ({CODE_HINT}){quote}")
            continue
        if text is None or (isinstance(text, str) and not text.strip()):
            continue
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            problems.append(f"{where}: {key}: the name must be text, got {text!r}")
            continue
        text = unicodedata.normalize("NFC", str(text)).strip()
        if code in names and names[code] != text:
            problems.append(f"{where}: two names in {code!r}: {names[code]!r} and {text!r}")
            continue
        names[code] = text
    return dict(sorted(names.items()))


def display_name(name: str, names: Mapping[str, str], lang: str | None) -> str:
    """The name to show in `lang`: its own, else its base language's (`pt-br` -> `pt`), else `name`."""
    code = requested_language(lang)
    if not code:
        return name
    return names.get(code) or names.get(code.split("-")[0]) or name


def names_column(names: Mapping[str, str]) -> list[dict[str, str]]:
    """The `catalog.names` cell: [{lang, name}] sorted by code (DuckDB: `map_from_entries(names)['fr']`)."""
    return [{"lang": lang, "name": text} for lang, text in sorted(names.items())]
