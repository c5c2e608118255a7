"""Where an inventory problem is and how to say it: lines, field names, pydantic errors in the user's terms.

Shared by the loader and every validator that reports on the inventory's YAML (the overlay, the
``budgets:`` and ``vips:`` sections, budget flags), so a problem reads the same wherever it is found.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from hybridctl.core.errors import Problem

Path_ = tuple[str | int, ...]


def line_for(lines: dict[Path_, int], loc: Sequence[str | int]) -> int | None:
    """Line of the deepest known prefix of ``loc``."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def field_name(raw: Any, loc: Sequence[str | int]) -> str:
    """Render a location with list items named by their ``name`` key when they have one."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            label = str(item)
            if isinstance(node, list) and item < len(node):
                element = node[item]
                if isinstance(element, dict) and isinstance(element.get("name"), str):
                    label = element["name"]
                node = element
            else:
                node = None
            parts.append(f"[{label}]")
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def fix_for(error: dict[str, Any], value: Any) -> tuple[str, str]:
    """Message and fix for one pydantic error, in the user's terms."""
    kind = error["type"]
    message = error["msg"]
    # Feature validators (budgets, vips) raise errors that carry their own fix.
    fix = (error.get("ctx") or {}).get("fix")
    if isinstance(fix, str):
        return message.removeprefix("Value error, "), fix
    if kind == "extra_forbidden":
        return "unknown field", "remove it or correct its spelling (`hybridctl schema` lists the fields)"
    if kind == "missing":
        return "required field is missing", "add it"
    if kind in {"ip_v4_network", "ip_v4_interface", "value_error"} and isinstance(value, str) and "/" in value:
        try:
            proper = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"'{value}' is not a valid IPv4 CIDR", "write it as a.b.c.d/len, e.g. 192.168.1.0/24"
        if str(proper) != value:
            return f"'{value}' has host bits set", f"use {proper}"
    if kind in {"ip_v4_network", "ip_v4_interface"}:
        return f"'{value}' is not a valid IPv4 CIDR", "write it as a.b.c.d/len, e.g. 192.168.1.0/24"
    if kind == "ip_v4_address":
        return f"'{value}' is not a valid IPv4 address", "write a dotted quad such as 192.168.20.100"
    if kind == "string_pattern_mismatch" and "generate|env:" in str(error.get("ctx", {}).get("pattern", "")):
        return (
            "secrets must be references, not values",
            "use 'generate', 'env:VARIABLE' or 'file:/path' (never the secret itself)",
        )
    if kind == "string_pattern_mismatch" and str(error.get("ctx", {}).get("pattern", "")).startswith("^(env:"):
        return (
            "this secret exists elsewhere: it must be a reference to it (hybridctl cannot generate it)",
            "use 'env:VARIABLE' or 'file:/path' (never the secret itself)",
        )
    if kind == "string_pattern_mismatch":
        return f"'{value}' has characters that are not allowed", "use letters, digits, '-', '_' and '.'"
    if kind == "literal_error":
        return message, "use one of the listed values"
    if kind == "too_short":
        return message, "declare at least the minimum number of items"
    if kind.startswith("int") or kind.startswith("greater") or kind.startswith("less"):
        return message, "use a whole number in the allowed range"
    if kind == "value_error":
        return message.removeprefix("Value error, "), "correct the value"
    return message, "see `hybridctl schema` for the expected form"


def value_at(raw: Any, loc: Sequence[str | int]) -> Any:
    node = raw
    for item in loc:
        if isinstance(node, dict) and item in node:
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = node[item]
        else:
            return None
    return node


def model_loc(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    # Pydantic inserts the union member / tag name in some locations; drop anything that is
    # not a real key so the path matches the YAML.
    return tuple(item for item in loc if not (isinstance(item, str) and item.startswith("function-")))


def problems_from_error(error: ValidationError, *, file: str, raw: Any, lines: dict[Path_, int]) -> list[Problem]:
    """One :class:`Problem` per pydantic error, named and located in the YAML ``raw`` was read from."""
    problems = []
    for item in error.errors():
        loc = model_loc(item["loc"])
        message, fix = fix_for(dict(item), value_at(raw, loc))
        problems.append(Problem(file, field_name(raw, loc), message, fix, line_for(lines, loc)))
    return problems
