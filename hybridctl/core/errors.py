"""Every error hybridctl raises, and :class:`ExitStatus`, how a command ended.

The core raises these; only the CLI's runner (``hybridctl.cli.exit``) catches them, renders
them and turns the :class:`ExitStatus` of each into a process exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class ExitStatus(IntEnum):
    """How a command ended: what commands return and what each error stands for.

    One member per outcome, so a script-facing distinction never depends on a number: bad input
    and drift are different members although most commands exit 2 for both. The value only
    identifies the member; the process exit code of each, per command, is chosen in one place,
    ``hybridctl.cli.exit.exit_code`` (``routes diff`` exits 1 on bad input, so 2 there always
    means drift, as ``terraform plan -detailed-exitcode`` does).
    """

    OK = 0
    ERROR = 1  # a cloud, host or VPN server refused or failed; a target unreachable
    BAD_INPUT = 2  # inventory or flags wrong: nothing remote was touched
    DRIFT = 3  # what runs differs from the plan (routes diff, vip status, endpoint status)
    THRESHOLD = 4  # budget status: an alert threshold is crossed
    INTERRUPTED = 5  # Ctrl-C


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
    """Base class; ``status`` says how the command ended when this escapes."""

    status: ExitStatus = ExitStatus.ERROR


@dataclass
class InputError(HybridctlError):
    """Bad input (inventory, flags). Raised before anything remote is touched."""

    problems: list[Problem] = field(default_factory=list)
    status: ExitStatus = ExitStatus.BAD_INPUT

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
