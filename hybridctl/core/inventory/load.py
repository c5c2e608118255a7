"""Load an inventory file: YAML -> pydantic model -> cross-field validation.

Every problem becomes a :class:`~hybridctl.core.errors.Problem` naming the file, the line, the
field (by names where the list items have them: ``sites[aws].networks[Hybrid-Subnet].cidr``)
and the fix. All problems are collected and raised together as one ``InputError``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from hybridctl.core.errors import InputError, Problem
from hybridctl.core.inventory.models import Inventory

if TYPE_CHECKING:
    from hybridctl.core.planner.desired import DesiredState

Path_ = tuple[str | int, ...]
# libyaml's loader when PyYAML was built with it (pip wheels are): ~10x faster on big inventories.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# How many nodes aliases may add when the document is read as a tree. An inventory's legitimate
# anchors (shared ssh settings, a repeated network list) add tens to hundreds; a "billion laughs"
# document adds 10**9. Everything after composing (line map, construction, pydantic, the
# checks) walks the tree, so the bound is checked first, on the composed node graph.
MAX_ALIAS_EXPANSION = 10_000


@dataclass(frozen=True)
class LoadedInventory:
    inventory: Inventory
    path: Path
    lines: dict[Path_, int]
    raw: dict[str, Any]

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        return line_for(self.lines, loc)


def _line_map(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), out)
            # The key's own line is the most useful place to point at.
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), out)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def distinct_nodes(root: yaml.Node) -> int:
    """Nodes in the document as written: each anchored node once, however often it is aliased."""
    seen = {id(root)}
    stack = [root]
    while stack:
        for child in _children(stack.pop()):
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)


def expanded_nodes(root: yaml.Node, limit: int) -> tuple[int, yaml.Node | None]:
    """Nodes in the document read as a tree (every alias expanded), counting at most ``limit + 1``.

    Returns the count and, when it passed ``limit``, the aliased node being expanded then (its
    anchor's position is the best place to point at). The walk stops at ``limit + 1`` visits, so
    an alias bomb costs no more than a document of ``limit`` nodes.
    """
    seen: set[int] = set()
    stack = [root]
    visits = 0
    last_alias: yaml.Node | None = None
    while stack:
        node = stack.pop()
        visits += 1
        if id(node) in seen and not isinstance(node, yaml.ScalarNode):
            last_alias = node  # a collection seen before: reached through an alias
        seen.add(id(node))
        if visits > limit:
            return visits, last_alias or node
        stack.extend(_children(node))
    return visits, None


def _check_aliases(root: yaml.Node, file: str) -> None:
    limit = distinct_nodes(root) + MAX_ALIAS_EXPANSION
    _, culprit = expanded_nodes(root, limit)
    if culprit is not None:
        raise InputError(
            [
                Problem(
                    file=file,
                    line=culprit.start_mark.line + 1,
                    field="(yaml aliases)",
                    message=(
                        f"YAML aliases expand the document past {limit} nodes (more than {MAX_ALIAS_EXPANSION} "
                        "beyond what is written; nested anchors each aliased many times, a 'billion laughs' "
                        "document); the anchor at this line is one of those expanded"
                    ),
                    fix="write the repeated data out, or alias it from fewer places (anchors of anchors multiply)",
                )
            ]
        )


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


def _fix_for(error: dict[str, Any], value: Any) -> tuple[str, str]:
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


def _value_at(raw: Any, loc: Sequence[str | int]) -> Any:
    node = raw
    for item in loc:
        if isinstance(node, dict) and item in node:
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = node[item]
        else:
            return None
    return node


def _model_loc(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    # Pydantic inserts the union member / tag name in some locations; drop anything that is
    # not a real key so the path matches the YAML.
    return tuple(item for item in loc if not (isinstance(item, str) and item.startswith("function-")))


def parse_inventory(text: str, file: str = "<inventory>") -> LoadedInventory:
    """Parse and validate inventory text. Raises InputError with every problem found."""
    # One parse: compose the node tree (for line numbers), then construct data from it.
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            # Composing shares aliased nodes (linear); constructing and everything after walks
            # the expanded tree, so refuse an alias bomb here.
            _check_aliases(node, file)
        raw = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InputError(
            [
                Problem(
                    file=file,
                    line=None if mark is None else mark.line + 1,
                    field="(yaml)",
                    message=str(getattr(error, "problem", error)),
                    fix="correct the YAML syntax",
                )
            ]
        ) from None
    finally:
        loader.dispose()
    if not isinstance(raw, dict) or node is None:
        raise InputError(
            [Problem(file, "(top level)", "the inventory must be a mapping", "start with 'version: 1'", 1)]
        )
    lines: dict[Path_, int] = {}
    _line_map(node, (), lines)
    # Placeholders `hybridctl init` left: each is the only problem worth naming at its place.
    from hybridctl.features.draft import placeholders

    left = placeholders(raw)
    if left:
        raise InputError(
            [
                Problem(
                    file,
                    field_name(raw, loc),
                    f"placeholder left by `hybridctl init`: {text}",
                    "replace it with the real value (the comment above it says what)",
                    line_for(lines, loc),
                )
                for loc, text in left
            ]
        )
    try:
        inventory = Inventory.model_validate(raw)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            loc = _model_loc(item["loc"])
            value = _value_at(raw, loc)
            message, fix = _fix_for(dict(item), value)
            problems.append(Problem(file, field_name(raw, loc), message, fix, line_for(lines, loc)))
        raise InputError(problems) from None

    # Imported here: validate imports the planner's address helpers, which import models.
    from hybridctl.core.inventory.validate import validate_inventory

    loaded = LoadedInventory(inventory=inventory, path=Path(file), lines=lines, raw=raw)
    problems = validate_inventory(loaded)
    if problems:
        raise InputError(problems)
    return loaded


def plan_loaded(loaded: LoadedInventory) -> DesiredState:
    """Plan a loaded inventory; a table that cannot fit its route limit is bad input (exit 2)."""
    from hybridctl.core.planner.addressing import AddressingError
    from hybridctl.core.planner.plan import plan

    try:
        return plan(loaded.inventory)
    except AddressingError as error:
        index = next((i for i, s in enumerate(loaded.inventory.sites) if s.name == error.site), None)
        loc: tuple[str | int, ...] = ("sites", index, "route_limit") if index is not None else ("sites",)
        raise InputError(
            [Problem(str(loaded.path), field_name(loaded.raw, loc), str(error), error.fix, loaded.line_of(loc))]
        ) from None


def load_inventory(path: str | Path) -> LoadedInventory:
    """Read and validate an inventory file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            [Problem(str(file), "(file)", "inventory file not found", "pass an existing file with -i")]
        ) from None
    except OSError as error:
        raise InputError([Problem(str(file), "(file)", f"cannot read: {error.strerror}", "check the path")]) from None
    return parse_inventory(text, str(file))
