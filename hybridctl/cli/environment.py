"""What a command reads and writes besides its arguments: consoles, stdin and the tty flags.

One :class:`Environment` is made per run (``hybridctl.cli.exit.run``) and reaches every command
through click's context object, so nothing in the CLI prints to or reads from a module global and
a test can hand in its own consoles and stdin (as httpie's ``Environment`` does).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from typer._click import Context as ClickContext  # typer vendors click


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
    # Recorded for the runner while the command starts: how to render an error that escapes it
    # (-o json: as JSON on stdout) and which command runs (its exit policy).
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
        """The run's environment (a default one when the app was invoked without the runner).

        Every command calls this first, so it also notes which command runs (its words, e.g.
        ``("routes", "diff")``): the runner picks that command's exit policy from them.
        """
        environment = ctx.ensure_object(cls)
        if not ctx.resilient_parsing:
            environment.command = command_words(ctx)
        return environment

    def confirm(self, question: str) -> bool:
        """Ask on the terminal; without one, refuse rather than guess (scripts pass --yes)."""
        from hybridctl.core.errors import HybridctlError

        if not self.stdin_isatty:
            raise HybridctlError("no terminal to confirm on: pass --yes to apply, or --dry-run to only look")
        self.stderr.print(f"{question} [y/N]: ", end="", markup=False, highlight=False)
        answer = self.stdin.readline().strip().lower()
        return answer in ("y", "yes")


def command_words(ctx: ClickContext) -> tuple[str, ...]:
    """The command's words as click resolved them (``routes diff``), without the program name."""
    words: list[str] = []
    while ctx.parent is not None:
        words.append(ctx.info_name or "")
        ctx = ctx.parent
    return tuple(reversed(words))
