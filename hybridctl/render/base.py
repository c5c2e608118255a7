"""What every renderer shares: the JSON encoding and the styles of change actions."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

STYLE = {"create": "green", "update": "yellow", "delete": "red", "conflict": "magenta"}


def dump_json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False, default=str)


def print_json(console: Console, document: Any) -> None:
    """One JSON document on ``console`` (soft-wrapped: long strings are never broken)."""
    console.print_json(dump_json(document))
