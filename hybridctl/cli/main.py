"""Command line: parse, call the core, render. The only place that prints or exits."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys

import typer

from hybridctl.cli.common import InventoryOpt, LayerOpt, Output, OutputOpt, check_layers, stderr, stdout
from hybridctl.core.diff import diff
from hybridctl.core.errors import EXIT_ERROR, HybridctlError, exit_code_for
from hybridctl.core.inventory.load import load_inventory, plan_loaded
from hybridctl.core.inventory.models import Inventory
from hybridctl.render import dump_json, plan_document, render_changes, render_error, render_plan_extras

app = typer.Typer(
    name="hybridctl",
    help="Build and guard a private multi-cloud L3 overlay (on-prem + AWS + Azure over SoftEther).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def plan(inventory: InventoryOpt, output: OutputOpt = Output.table, layer: LayerOpt = None) -> None:
    """Show every change `up` would make, derived from the inventory (against nothing existing yet)."""
    layers = check_layers(layer)
    loaded = load_inventory(inventory)
    desired = plan_loaded(loaded)
    changes = diff(desired.resources(), [], layers)
    if output is Output.json:
        stdout.print_json(dump_json(plan_document(desired, changes)))
        return
    render_changes(stdout, changes)
    render_plan_extras(stdout, desired)


@app.command()
def schema() -> None:
    """Print the inventory's JSON Schema (point your editor's YAML language server at it)."""
    document = Inventory.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "hybridctl inventory"
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


# Feature command groups live in their own modules, each exposing ``register(app)``.
# (Resolved at import; a group still being built is simply absent.)
_FEATURE_MODULES = (
    "hybridctl_lab.cli",
    "hybridctl.cli.ops",
    "hybridctl.cli.budget",
    "hybridctl.cli.vip",
    "hybridctl.cli.cost",
    "hybridctl.cli.graph",
    "hybridctl.cli.init",
)
for _module_name in _FEATURE_MODULES:
    if importlib.util.find_spec(_module_name) is not None:
        importlib.import_module(_module_name).register(app)


def _wants_json(argv: list[str]) -> bool:
    for index, arg in enumerate(argv):
        if arg in ("-o", "--output") and index + 1 < len(argv) and argv[index + 1] == "json":
            return True
        if arg in ("--output=json", "-ojson"):
            return True
    return False


def _command_of(argv: list[str]) -> tuple[str, ...]:
    """The command's words (``routes diff``): the arguments before the first option."""
    words: list[str] = []
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
    return tuple(words)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and map every error to its exit code in one place."""
    args = sys.argv[1:] if argv is None else argv
    try:
        # Standalone mode: typer handles --help, usage errors (exit 2) and normal exits itself.
        app(args=args)
    except HybridctlError as error:
        render_error(stdout if _wants_json(args) else stderr, error, _wants_json(args))
        sys.exit(exit_code_for(error, _command_of(args)))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # a bug: say so plainly, keep the traceback for reports
        import traceback

        stderr.print(f"[red]internal error[/]: {error!r}")
        stderr.print(traceback.format_exc(), markup=False, highlight=False)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
