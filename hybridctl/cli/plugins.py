"""Command groups that add-on packages contribute: the entry point group ``hybridctl.plugins``.

An add-on declares one entry point per subcommand in its distribution's metadata::

    [project.entry-points."hybridctl.plugins"]
    lab = "some_addon.cli:plugin"

The entry point's name is the subcommand; its object is a callable taking no arguments that
returns the add-on's ``typer.Typer``, or raises :class:`ImportError` naming what is missing when
the add-on's own dependencies are not installed.

Nothing of an add-on is imported until its subcommand runs or the top-level help lists the
commands: :class:`PluginGroup` only looks at entry points for a name it does not know, so
`hybridctl plan` never reads them and loads no add-on module. An add-on hybridctl ships an extra
for (:data:`KNOWN`) still shows up when it is missing, as a stand-in that says how to install it
and exits 2, instead of click's "No such command".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from hybridctl.cli.common import stderr
from hybridctl.core.errors import EXIT_BAD_INPUT

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
    def missing(ctx: typer.Context) -> None:
        stderr.print(message, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT)

    return typer.main.get_command(stub)


class PluginGroup(TyperGroup):
    """The top-level group: built-in commands first, then add-ons, loaded on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._points: dict[str, EntryPoint] | None = None

    def _plugin_points(self) -> dict[str, EntryPoint]:
        if self._points is None:
            self._points = _entry_points()
        return self._points

    def _load(self, name: str) -> Any | None:
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
        command = self._load(cmd_name)
        if command is not None:
            # Loaded once per process: help and invocation see the same object.
            self.add_command(command, cmd_name)
        return command

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        extra = sorted((set(self._plugin_points()) | set(KNOWN)) - set(names))
        return [*names, *extra]
