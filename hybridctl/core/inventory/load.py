"""Load an inventory file: YAML -> pydantic model -> cross-field validation.

Every problem becomes a :class:`~hybridctl.core.errors.Problem` naming the file, the line, the
field (by names where the list items have them: ``sites[aws].networks[Hybrid-Subnet].cidr``)
and the fix. All problems are collected and raised together as one ``InputError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hybridctl.core.errors import InputError, Problem
from hybridctl.core.inventory.models import Inventory
from hybridctl.core.inventory.placeholders import placeholders
from hybridctl.core.inventory.problems import Path_, field_name, line_for, problems_from_error
from hybridctl.core.inventory.validate import validate_inventory

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
        raise InputError(problems_from_error(error, file=file, raw=raw, lines=lines)) from None

    loaded = LoadedInventory(inventory=inventory, path=Path(file), lines=lines, raw=raw)
    problems = validate_inventory(loaded)
    if problems:
        raise InputError(problems)
    return loaded


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
