"""`hybridctl graph`: draw the overlay (graphviz), coloured from saved check / routes diff results."""

from __future__ import annotations

import importlib.util
import shutil
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from hybridctl.cli.common import InventoryOpt
from hybridctl.cli.environment import Environment
from hybridctl.core.errors import ExitStatus, InputError, PreconditionError, Problem
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.features.graph import apply_results, build, load_results, to_dot
from hybridctl.render.base import dump_json, print_json
from hybridctl.render.graph import graph_document


class GraphFormat(StrEnum):
    svg = "svg"
    png = "png"
    dot = "dot"
    json = "json"


def _record_output(ctx: typer.Context, value: GraphFormat) -> GraphFormat:
    """``-o json``: an error that ends the command is a JSON document on stdout too."""
    if not ctx.resilient_parsing:
        Environment.of(ctx).json_errors = value is GraphFormat.json
    return value


def graph(
    ctx: typer.Context,
    inventory: InventoryOpt,
    output: Annotated[
        GraphFormat,
        typer.Option("--output", "-o", help="svg, png, dot (graphviz source) or json.", callback=_record_output),
    ] = GraphFormat.svg,
    from_check: Annotated[
        list[Path] | None,
        typer.Option("--from-check", help="A saved `check -o json` or `routes diff -o json` to colour by; repeatable."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Where to write (default: INVENTORY-NAME.svg/png; dot/json: stdout)."),
    ] = None,
) -> ExitStatus:
    """Draw sites, networks, gateways, the transit, cascades and route tables (graphviz)."""
    env = Environment.of(ctx)
    loaded = load_inventory(inventory)
    documents = load_results(from_check or [])
    if output in (GraphFormat.svg, GraphFormat.png, GraphFormat.dot) and importlib.util.find_spec("graphviz") is None:
        raise PreconditionError("graph needs the graphviz package: pip install 'hybridctl[graph]'")
    if output in (GraphFormat.svg, GraphFormat.png) and shutil.which("dot") is None:
        raise PreconditionError("rendering svg/png needs graphviz's dot program: apt-get install graphviz")
    if file is not None and not file.parent.exists():
        raise InputError([Problem("command line", "--file", f"directory {file.parent} does not exist", "create it")])
    model = apply_results(build(loaded.inventory, plan_loaded(loaded)), documents)
    if output is GraphFormat.json:
        if file is not None:
            file.write_text(dump_json(graph_document(model)) + "\n")
        else:
            print_json(env.stdout, graph_document(model))
        return ExitStatus.OK
    dot = to_dot(model)
    if output is GraphFormat.dot:
        if file is not None:
            file.write_text(dot.source)
        else:
            env.stdout.file.write(dot.source)
        return ExitStatus.OK
    target = file or Path(f"{loaded.inventory.name}.{output.value}")
    target.write_bytes(dot.pipe(format=output.value))
    env.stderr.print(f"wrote {target}")
    return ExitStatus.OK


def register(app: typer.Typer) -> None:
    app.command()(graph)
