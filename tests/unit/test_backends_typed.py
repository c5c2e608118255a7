"""Backends act on typed items, never on keys: no ``x.key[i]`` and no ``a, b = x.key`` in them.

Keys stay what the diff compares, the CLI shows and the journal files things under (passing a
whole key along is fine); what a backend needs to know about an item it reads from the item.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

BACKENDS = sorted((REPO / "hybridctl" / "backends").glob("*.py"))


def _is_key(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "key"


def key_parsing(source: str) -> list[int]:
    """Lines that index into, slice or unpack a ``.key`` attribute."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and _is_key(node.value):
            lines.append(node.lineno)
        elif isinstance(node, ast.Assign | ast.For) and _is_key(
            node.value if isinstance(node, ast.Assign) else node.iter
        ):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Tuple | ast.List) for t in targets):
                lines.append(node.lineno)
    return sorted(lines)


def test_the_check_finds_key_parsing() -> None:
    assert len(BACKENDS) > 10  # aws, azure, their parsers, cloudcommon, hosts, hoststate...
    source = "a = change.key[0]\n_, table, prefix = change.key\nsite = r.key[:-1]\nkeep(change.key)\n"
    assert key_parsing(source) == [1, 2, 3]


@pytest.mark.parametrize("path", BACKENDS, ids=[p.name for p in BACKENDS])
def test_backends_do_not_parse_keys(path: Path) -> None:
    text = path.read_text()
    assert key_parsing(text) == [], f"{path}: read the typed item (Change.subject / Resource.item) instead"
