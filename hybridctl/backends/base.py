"""The small interface every backend (AWS, Azure, SSH hosts) implements.

A backend reads the actual state of the layers it owns as :class:`Resource` items keyed exactly
like the planner's (so the pure diff can compare them), and applies :class:`Change` items.
It never prints: progress goes through a :class:`Progress` callback the CLI supplies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hybridctl.backends.calls import CallCounter
from hybridctl.core.diff import Change
from hybridctl.core.planner.desired import DesiredState, Resource


class Progress(Protocol):
    def step(self, target: str, message: str) -> None:
        """A step started or finished on ``target`` (a host, a cloud, a table)."""


class NoProgress:
    def step(self, target: str, message: str) -> None:
        return None


@dataclass
class Outcome:
    """What happened to one change (or to one target when a whole target failed)."""

    target: str
    change: Change | None
    ok: bool
    error: str = ""


@dataclass
class ReadResult:
    resources: list[Resource] = field(default_factory=list)
    # Targets (hosts, resource groups) that could not be read, with why. Their layers are
    # unknown, not empty: nothing is planned against them.
    unreachable: dict[str, str] = field(default_factory=dict)
    # Targets whose state forbids changing anything anywhere (an unsupported distribution): the
    # engine plans nothing at all and reports each of them.
    blocking: dict[str, str] = field(default_factory=dict)


class Backend(Protocol):
    name: str
    counter: CallCounter

    def owns(self, thing: Resource | Change) -> bool:
        """Whether this backend reads and applies this item (read from its layer and typed item)."""

    def read(self, desired: DesiredState) -> ReadResult:
        """Actual state of everything this backend owns that the plan touches."""

    def apply(self, changes: Sequence[Change], desired: DesiredState, progress: Progress) -> list[Outcome]:
        """Apply ``changes`` (all owned by this backend). Never raises for a per-target failure."""

    def close(self) -> None: ...
