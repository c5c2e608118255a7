"""What a command reads and writes besides its arguments: consoles, stdin and the tty flags.

One :class:`Environment` is made per run (``hybridctl.cli.exit.run``) and reaches every command
through click's context object, so nothing in the CLI prints to or reads from a module global and
a test can hand in its own consoles and stdin (as httpie's ``Environment`` does).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console
from typer._click import Context as ClickContext  # typer vendors click
from typer.core import TyperGroup


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or non-file stream is no terminal
        return False


@dataclass
class Environment:
    stdout: Console = field(default_factory=Console)
    stderr: Console = field(default_factory=lambda: Console(stderr=True))
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdin_isatty: bool | None = None  # None: ask stdin
    argv: list[str] = field(default_factory=list)
    # Recorded while click parses, for the runner: how to render an error that escapes the
    # command (-o json: as JSON on stdout) and which command ran (its exit policy).
    json_errors: bool = False
    command: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.stdin_isatty is None:
            self.stdin_isatty = _isatty(self.stdin)

    @property
    def stdout_isatty(self) -> bool:
        return self.stdout.is_terminal

    @classmethod
    def of(cls, ctx: ClickContext) -> Environment:
        """The run's environment (a default one when the app was invoked without the runner)."""
        return ctx.ensure_object(cls)

    def confirm(self, question: str) -> bool:
        """Ask on the terminal; without one, refuse rather than guess (scripts pass --yes)."""
        from hybridctl.core.errors import HybridctlError

        if not self.stdin_isatty:
            raise HybridctlError("no terminal to confirm on: pass --yes to apply, or --dry-run to only look")
        self.stderr.print(f"{question} [y/N]: ", end="", markup=False, highlight=False)
        answer = self.stdin.readline().strip().lower()
        return answer in ("y", "yes")


class CommandGroup(TyperGroup):
    """A group that records, in the run's environment, each command word click resolves."""

    def resolve_command(self, ctx: ClickContext, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and not ctx.resilient_parsing:
            environment = Environment.of(ctx)
            environment.command = (*environment.command, command.name or name or "")
        return name, command, rest
