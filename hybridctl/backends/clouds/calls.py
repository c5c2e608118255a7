"""Counting calls: every AWS call (each page) and every ARM request once, read or mutating; retries are not calls."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

OnCall = Callable[[str, bool], None]
"""Told of each API call: its action (``ec2:DescribeVpcs``, ``arm:PUT``) and whether it mutates."""

READ_PREFIXES = ("Describe", "Get", "List", "Search", "Simulate")
MUTATING_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})


class CallLog:
    """Calls made, per action, read vs mutating (each page and each request once, retries not)."""

    def __init__(self) -> None:
        self.by_action: Counter[str] = Counter()
        self.reads = 0
        self.mutations = 0
        self._lock = threading.Lock()

    def add(self, action: str, mutating: bool) -> None:
        """An :data:`OnCall`; thread-safe (clients are shared between threads)."""
        with self._lock:
            if mutating:
                self.mutations += 1
            else:
                self.reads += 1
            self.by_action[action] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.reads, "mutating": self.mutations, "by_action": dict(sorted(self.by_action.items()))}
