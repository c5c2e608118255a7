"""Pieces every command module shares: consoles, common options, the output switch."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hybridctl.core.planner.desired import LAYERS
from hybridctl.render import dump_json

stdout = Console()
stderr = Console(stderr=True)


class Output(StrEnum):
    table = "table"
    json = "json"


InventoryOpt = Annotated[Path, typer.Option("--inventory", "-i", help="Inventory YAML file.")]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="table (human) or json (machine).")]
LayerOpt = Annotated[
    list[str] | None,
    typer.Option("--layer", help=f"Only these layers (repeatable): {', '.join(LAYERS)}."),
]


def check_layers(layers: list[str] | None) -> list[str] | None:
    if not layers:
        return None
    unknown = [layer for layer in layers if layer not in LAYERS]
    if unknown:
        raise typer.BadParameter(f"unknown layer {', '.join(unknown)}; choose from {', '.join(LAYERS)}")
    return layers


def print_json(document: Any) -> None:
    stdout.print_json(dump_json(document))


class ConsoleProgress:
    """Progress lines on stderr (so `-o json` on stdout stays clean)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def step(self, target: str, message: str) -> None:
        if self.enabled:
            stderr.print(f"[dim]·[/] [bold]{target}[/]: {message}", highlight=False)
