"""Command line: parse, call the core, render (hybridctl.render); hybridctl.cli.exit maps the outcome to
the exit code."""

from __future__ import annotations

import json
import sys
from typing import ClassVar

import typer

from hybridctl.cli.common import InventoryOpt, LayerOpt, Output, OutputOpt, check_layers
from hybridctl.cli.environment import Environment
from hybridctl.cli.exit import run
from hybridctl.cli.plugins import CommandGroup
from hybridctl.core.diff import diff
from hybridctl.core.errors import ExitStatus
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.inventory.models import Inventory
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.render.base import print_json
from hybridctl.render.plan import plan_document, render_plan


class _Commands(CommandGroup):
    # Feature command groups live in their own modules, each exposing ``register(app)``: module
    # -> the names it registers, in help order. A module is imported when one of its commands
    # runs or the help lists them (`plan` needs none); one still being built is simply absent.
    modules: ClassVar[dict[str, tuple[str, ...]]] = {
        "hybridctl.cli.ops": ("up", "down", "check", "routes"),
        "hybridctl.cli.budget": ("budget",),
        "hybridctl.cli.vip": ("vip", "endpoint", "doctor", "iam-policy"),
        "hybridctl.cli.cost": ("cost", "leaks"),
        "hybridctl.cli.graph": ("graph",),
        "hybridctl.cli.init": ("init",),
    }


app = typer.Typer(
    name="hybridctl",
    help="Build and guard a private multi-cloud L3 overlay (on-prem + AWS + Azure over SoftEther).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Command modules, and add-ons (the lab) from the `hybridctl.plugins` entry points, load when named.
    cls=_Commands,
)


@app.command()
def plan(
    ctx: typer.Context, inventory: InventoryOpt, output: OutputOpt = Output.table, layer: LayerOpt = None
) -> ExitStatus:
    """Show every change `up` would make, derived from the inventory (against nothing existing yet)."""
    env = Environment.of(ctx)
    layers = check_layers(layer)
    loaded = load_inventory(inventory)
    desired = plan_loaded(loaded)
    changes = diff(desired.resources(), [], layers)
    if output is Output.json:
        print_json(env.stdout, plan_document(desired, changes))
    else:
        render_plan(env.stdout, desired, changes)
    return ExitStatus.OK


@app.command()
def schema(ctx: typer.Context) -> ExitStatus:
    """Print the inventory's JSON Schema (point your editor's YAML language server at it)."""
    document = Inventory.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "hybridctl inventory"
    Environment.of(ctx).stdout.file.write(json.dumps(document, indent=2) + "\n")
    return ExitStatus.OK


def main(argv: list[str] | None = None, env: Environment | None = None) -> None:
    """Entry point: run the app (hybridctl.cli.exit maps every result and error to its exit code)."""
    args = sys.argv[1:] if argv is None else argv
    sys.exit(run(app, args, env or Environment()))


def console_main() -> None:
    """The installed ``hybridctl`` command: :func:`main`, then a quick exit.

    By the time a command returns, hybridctl has closed every connection and every file it
    wrote. What the interpreter would still do is tear itself down (modules, the SDKs' objects,
    the daemon threads of closed SSH transports): 0.2-0.7 s per command on a busy 2-core machine.
    So once the exit handlers have run and the output is flushed, the process ends with
    ``os._exit``. If a thread that is not a daemon still runs, the normal exit waits for it.
    """
    import atexit
    import contextlib
    import os
    import threading

    code = run(app, sys.argv[1:], Environment())
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # logging's flush and whatever a library registered
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said on it
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
