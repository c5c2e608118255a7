"""The one call counter: API calls and host commands, read vs mutating, per action.

Every backend (cloud and hosts) and every cloud feature (budgets, costs, VIP, doctor) counts with
:class:`CallCounter`. Counts are what ``up -o json`` and ``cost -o json`` report and what the
integration tests compare with the emulators' own request logs, so each page and each request
is one call and retries are not.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class CallCounter:
    """Calls made, read vs mutating, and per action when the caller names one.

    Thread-safe: clients and backends are shared between the threads of a read or an apply.
    """

    def __init__(self) -> None:
        self.by_action: Counter[str] = Counter()
        self.reads = 0
        self.mutations = 0
        self._lock = threading.Lock()

    def add(self, action: str, mutating: bool) -> None:
        """One call of ``action`` (``ec2:DescribeVpcs``, ``arm:PUT``): a :data:`~hybridctl.backends.clouds.OnCall`."""
        with self._lock:
            if mutating:
                self.mutations += 1
            else:
                self.reads += 1
            self.by_action[action] += 1

    def read(self, n: int = 1) -> None:
        """``n`` reading calls nobody names (one host script that reads everything)."""
        with self._lock:
            self.reads += n

    def mutate(self, n: int = 1) -> None:
        """``n`` changing calls nobody names."""
        with self._lock:
            self.mutations += n

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.reads, "mutating": self.mutations, "by_action": dict(sorted(self.by_action.items()))}


__all__ = ["CallCounter"]
