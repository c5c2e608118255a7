"""Placeholders: the ``<FILL: what to write>`` strings a draft inventory carries where discovery could not know.

`hybridctl init` writes them (:mod:`hybridctl.features.draft`); the loader refuses every one left,
all at once, so a half-filled draft never plans. Pure: only the string form and the search.
"""

from __future__ import annotations

from typing import Any

PLACEHOLDER_PREFIX = "<FILL:"


def placeholder(what: str) -> str:
    return f"{PLACEHOLDER_PREFIX} {what}>"


def is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX)


def placeholders(raw: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Every placeholder left in a parsed document, with its path."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            out += placeholders(value, (*path, key))
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            out += placeholders(value, (*path, index))
    elif is_placeholder(raw):
        out.append((path, str(raw)))
    return out
