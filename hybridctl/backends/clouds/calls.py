"""Counting calls: every AWS call (each page) and every ARM request once, read or mutating; retries are not calls."""

from __future__ import annotations

from collections.abc import Callable

OnCall = Callable[[str, bool], None]
"""Told of each API call: its action (``ec2:DescribeVpcs``, ``arm:PUT``) and whether it mutates."""

READ_PREFIXES = ("Describe", "Get", "List", "Search", "Simulate")
MUTATING_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})
