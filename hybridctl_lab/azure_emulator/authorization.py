"""Microsoft.Authorization ``permissions`` for the ARM emulator: what the caller may do on a scope.

ARM answers ``GET {scope}/providers/Microsoft.Authorization/permissions`` with the union of the
caller's role assignments at that scope as ``{"value": [{"actions": [...], "notActions": [...],
"dataActions": [], "notDataActions": []}]}``; ``az role assignment`` and the portal's "check
access" read the same. The emulator has one service principal, so it keeps one list of
permission blocks per resource group (default: the subscription's, Owner-like ``*``), set by tests
and the lab through :meth:`Permissions.set`. Actions are matched by clients (``hybridctl doctor``
evaluates wildcards and notActions itself, as ARM's callers must).
"""

from __future__ import annotations

import threading
from typing import Any

API_VERSIONS = ("2015-07-01", "2018-01-01-preview", "2022-04-01", "2022-05-01-preview")
PROVIDER = "Microsoft.Authorization"
OWNER: tuple[dict[str, list[str]], ...] = (
    {"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []},
)


def block(actions: list[str], not_actions: list[str] | None = None) -> dict[str, list[str]]:
    """One permission block, as a role definition's ``permissions`` item."""
    return {"actions": list(actions), "notActions": list(not_actions or []), "dataActions": [], "notDataActions": []}


class Permissions:
    """Permission blocks per resource group (lower-cased name); ``None``: the subscription's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_scope: dict[str | None, list[dict[str, list[str]]]] = {}

    def set(self, blocks: list[dict[str, list[str]]], resource_group: str | None = None) -> None:
        with self._lock:
            self._by_scope[resource_group.lower() if resource_group else None] = [dict(b) for b in blocks]

    def reset(self) -> None:
        with self._lock:
            self._by_scope.clear()

    def at(self, resource_group: str | None) -> list[dict[str, Any]]:
        """What the caller holds at the scope: the group's own blocks, else the subscription's, else Owner."""
        with self._lock:
            if resource_group and resource_group.lower() in self._by_scope:
                return [dict(b) for b in self._by_scope[resource_group.lower()]]
            return [dict(b) for b in self._by_scope.get(None, list(OWNER))]

    def response(self, resource_group: str | None) -> dict[str, Any]:
        return {"value": self.at(resource_group)}
