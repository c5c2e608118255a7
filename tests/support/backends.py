"""The engine's read / diff / apply loop around one cloud backend, for backend integration tests."""

from __future__ import annotations

from typing import Generic, TypeVar

from hybridctl.backends.base import Backend, NoProgress, Outcome
from hybridctl.backends.journal import Journal
from hybridctl.core.diff import Change, diff
from hybridctl.core.inventory.load import LoadedInventory
from hybridctl.core.planner.desired import DesiredState, Resource
from hybridctl.core.planner.loaded import plan_loaded

B = TypeVar("B", bound=Backend)


class BackendRun(Generic[B]):
    """One inventory + journal + backend; ``want`` is the part of the plan the backend owns.

    Every read must reach all sites and every apply must succeed (tests that expect failures
    call ``backend`` directly).
    """

    def __init__(self, loaded: LoadedInventory, journal: Journal, backend: B) -> None:
        self.loaded = loaded
        self.desired: DesiredState = plan_loaded(loaded)
        self.journal = journal
        self.backend = backend
        self.want = [r for r in self.desired.resources() if backend.owns(r)]

    def read(self) -> list[Resource]:
        result = self.backend.read(self.desired)
        assert result.unreachable == {}
        return result.resources

    def changes(self) -> list[Change]:
        return diff(self.want, self.read())

    def apply(self, changes: list[Change]) -> list[Outcome]:
        outcomes = self.backend.apply(changes, self.desired, NoProgress())
        assert [o.error for o in outcomes if not o.ok] == []
        return outcomes

    def up(self) -> list[Outcome]:
        return self.apply(self.changes())

    def down(self) -> list[Outcome]:
        return self.apply(diff([], self.read()))


def by_key(changes: list[Change]) -> dict[tuple[str, ...], Change]:
    return {c.key: c for c in changes}
