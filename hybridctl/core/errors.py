"""Every error hybridctl raises, and the one place that maps them to exit codes.

The core raises these; only ``hybridctl.cli.main`` catches them, renders them and exits
with :func:`exit_code_for`. Exit codes follow ``terraform plan -detailed-exitcode``:
0 success / in sync, 1 error, 2 bad input (nothing remote touched) or drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_DRIFT = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input, located as precisely as we can."""

    file: str
    field: str
    message: str
    fix: str
    line: int | None = None

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message} (fix: {self.fix})"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "fix": self.fix,
        }


class HybridctlError(Exception):
    """Base class; ``exit_code`` says how the CLI ends when this escapes."""

    exit_code: int = EXIT_ERROR


@dataclass
class InputError(HybridctlError):
    """Bad input (inventory, flags). Raised before anything remote is touched."""

    problems: list[Problem] = field(default_factory=list)
    exit_code: int = EXIT_BAD_INPUT

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class RemoteError(HybridctlError):
    """A cloud API, SSH host or VPN server refused or failed."""

    def __init__(self, target: str, message: str, hint: str | None = None) -> None:
        self.target = target
        self.message = message
        self.hint = hint
        text = f"{target}: {message}"
        if hint:
            text += f" (hint: {hint})"
        super().__init__(text)


class HostKeyError(RemoteError):
    """An SSH host key is unknown (without --accept-new-host-keys) or has changed."""


class PreconditionError(HybridctlError):
    """The machine cannot do what was asked (not root, no namespaces, missing package)."""


class UnsupportedTargets(HybridctlError):
    """Some targets cannot be managed at all (e.g. an unsupported distribution): nothing was
    planned or changed anywhere. One line per target."""

    def __init__(self, targets: dict[str, str]) -> None:
        self.targets = dict(sorted(targets.items()))
        lines = [f"{name}: {why}" for name, why in self.targets.items()]
        lines.append("nothing was changed on any host (fix: remove these hosts' ssh blocks, or move them to a "
                     "supported distribution)")
        super().__init__("\n".join(lines))


class PartialFailure(HybridctlError):
    """Some targets failed while others succeeded; ``results`` says which."""

    def __init__(self, message: str, results: dict[str, str]) -> None:
        self.results = results
        super().__init__(message)


# Commands whose exit 2 means drift (terraform's -detailed-exitcode): bad input is an error there.
DRIFT_COMMANDS = (("routes", "diff"),)


def exit_code_for(error: BaseException, command: tuple[str, ...] = ()) -> int:
    """The single mapping from an exception to a process exit code.

    ``command`` is the command's words (``("routes", "diff")``): where 2 means drift, bad input
    exits 1 so a script never mistakes a broken inventory for drift.
    """
    if isinstance(error, InputError) and command[:2] in DRIFT_COMMANDS:
        return EXIT_ERROR
    if isinstance(error, HybridctlError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return 130
    return EXIT_ERROR
