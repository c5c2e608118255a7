"""Pieces every command module shares: common options, the output switch, progress lines."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hybridctl.cli.environment import Environment
from hybridctl.core.planner.desired import LAYERS
from hybridctl.render.base import print_json as _print_json

# The process's consoles, for command modules that do not take the run's Environment yet (the
# lab's); hybridctl's own commands print only to ``Environment.of(ctx)``'s consoles.
stdout = Console()
stderr = Console(stderr=True)


class Output(StrEnum):
    table = "table"
    json = "json"


def _record_output(ctx: typer.Context, value: Output) -> Output:
    """``-o json`` also means: an error that ends the command is a JSON document on stdout."""
    if not ctx.resilient_parsing:
        Environment.of(ctx).json_errors = value is Output.json
    return value


InventoryOpt = Annotated[Path, typer.Option("--inventory", "-i", help="Inventory YAML file.")]
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table (human) or json (machine).", callback=_record_output)
]
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
    _print_json(stdout, document)


class ConsoleProgress:
    """Progress lines on stderr (so `-o json` on stdout stays clean)."""

    def __init__(self, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or stderr

    def step(self, target: str, message: str) -> None:
        if self.enabled:
            self.console.print(f"[dim]·[/] [bold]{target}[/]: {message}", highlight=False)
