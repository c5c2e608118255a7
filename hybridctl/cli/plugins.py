"""Commands loaded on first use: hybridctl's own command modules, and add-ons' entry points.

hybridctl's feature commands live in modules exposing ``register(app)`` (hybridctl/cli/ops.py,
budget.py, ...); :class:`CommandGroup` knows which names each module registers and imports it
only when one of them runs or the help lists them, so `hybridctl plan` imports none of them.

Add-on packages contribute command groups through the entry point group ``hybridctl.plugins``.

An add-on declares one entry point per subcommand in its distribution's metadata::

    [project.entry-points."hybridctl.plugins"]
    lab = "some_addon.cli:plugin"

The entry point's name is the subcommand; its object is a callable taking no arguments that
returns the add-on's ``typer.Typer``, or raises :class:`ImportError` naming what is missing when
the add-on's own dependencies are not installed.

Nothing of an add-on is imported until its subcommand runs or the top-level help lists the
commands: :class:`CommandGroup` only looks at entry points for a name it does not know, so
`hybridctl plan` never reads them and loads no add-on module. An add-on hybridctl ships an extra
for (:data:`KNOWN`) still shows up when it is missing, as a stand-in that says how to install it
and exits 2, instead of click's "No such command".
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperGroup

from hybridctl.cli.environment import Environment
from hybridctl.core.errors import ExitStatus

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

GROUP = "hybridctl.plugins"


@dataclass(frozen=True)
class KnownAddOn:
    """An add-on hybridctl has an extra for: its one-line help and how to install it."""

    help: str
    install: str


KNOWN: dict[str, KnownAddOn] = {
    "lab": KnownAddOn(
        help="The local lab: the reference network in namespaces, with AWS and Azure emulators (root, Linux).",
        install="pipx install --force 'hybridctl[lab]' (or pip install 'hybridctl[lab]' where hybridctl is installed)",
    ),
}


def _entry_points() -> dict[str, EntryPoint]:
    # Imported here: importlib.metadata costs ~10 ms, which commands named on the command line
    # (`plan`, `up`) never pay. Two distributions declaring one name: the first wins.
    from importlib.metadata import entry_points

    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=GROUP):
        found.setdefault(point.name, point)
    return found


def _stand_in(name: str, known: KnownAddOn | None, reason: str) -> Any:
    """A command that accepts anything (``--help`` too) and says how to get the real one; exit 2."""
    install = f"; install it: {known.install}" if known else ""
    message = f"hybridctl {name} is not available ({reason}){install}"
    stub = typer.Typer(add_completion=False)

    @stub.command(
        name=name,
        help=f"{known.help if known else name} (not installed)",
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def missing(ctx: typer.Context) -> ExitStatus:
        Environment.of(ctx).stderr.print(message, markup=False, highlight=False, soft_wrap=True)
        return ExitStatus.BAD_INPUT

    return typer.main.get_command(stub)


def module_commands(module_name: str) -> dict[str, Any]:
    """The click commands a command module's ``register(app)`` adds, by name."""
    holder = typer.Typer()

    @holder.callback()
    def _group() -> None:
        """Makes ``holder`` a group even when the module registers one command."""

    importlib.import_module(module_name).register(holder)
    return dict(typer.main.get_command(holder).commands)  # type: ignore[attr-defined]


class CommandGroup(TyperGroup):
    """The top-level group: the app's own commands, then command modules and add-ons, loaded on first use.

    ``modules``: command module -> the names its ``register(app)`` adds, in help order (a
    subclass sets it; tests/unit/test_lab_plugin.py checks the names against the modules).
    """

    modules: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._points: dict[str, EntryPoint] | None = None
        self._own = list(self.commands)  # defined on the app itself (plan, schema)

    def _plugin_points(self) -> dict[str, EntryPoint]:
        if self._points is None:
            self._points = _entry_points()
        return self._points

    def _present_modules(self) -> list[str]:
        # A module still being written (not importable yet) is simply absent.
        return [m for m in self.modules if importlib.util.find_spec(m) is not None]

    def _load_module(self, module_name: str) -> None:
        for name, command in module_commands(module_name).items():
            self.commands.setdefault(name, command)

    def _load_plugin(self, name: str) -> Any | None:
        point = self._plugin_points().get(name)
        known = KNOWN.get(name)
        if point is None:
            return _stand_in(name, known, "not installed") if known else None
        try:
            plugin_app = point.load()()
        except ImportError as error:
            missing = getattr(error, "name", None)
            return _stand_in(name, known, f"missing Python package {missing}" if missing else str(error))
        command = typer.main.get_command(plugin_app)
        command.name = name
        return command

    def get_command(self, ctx: Any, cmd_name: str) -> Any | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        owner = next((m for m, names in self.modules.items() if cmd_name in names), None)
        if owner is not None and importlib.util.find_spec(owner) is not None:
            self._load_module(owner)
            return super().get_command(ctx, cmd_name)
        command = self._load_plugin(cmd_name)
        if command is not None:
            # Loaded once per process: help and invocation see the same object.
            self.add_command(command, cmd_name)
        return command

    def list_commands(self, ctx: Any) -> list[str]:
        names = [*self._own]
        for module_name in self._present_modules():
            names += [n for n in self.modules[module_name] if n not in names]
        names += sorted((set(self._plugin_points()) | set(KNOWN)) - set(names))
        return names

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and self.get_command(ctx, args[0]) is None:
            # Unknown name: load every module so "Did you mean ...?" can suggest any command.
            for module_name in self._present_modules():
                self._load_module(module_name)
        return super().resolve_command(ctx, args)
