"""Where a run's time went, per host: connect, read, each apply step, waits, verify. Data only.

The SSH host backend records one :class:`Span` per step (``up --timings`` renders them with
hybridctl/render/timeline.py, ``up -o json`` lists them). Steps that run inside a host script
are timed by the host itself (``date +%s.%N`` between steps, hostscript's ``t:`` markers) and
placed on this process's clock from the start of their exec, so a span is what the host spent
on the step, not a round trip.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# What a span belongs to: the first read, the changes, the read after them.
PHASES = ("connect", "read", "apply", "verify")


@dataclass(frozen=True)
class Span:
    """One step on one host: ``start_s`` seconds after the timeline's start, lasting ``seconds``."""

    host: str
    phase: str
    step: str
    start_s: float
    seconds: float
    detail: str = ""  # e.g. a vpncmd batch's commands

    @property
    def end_s(self) -> float:
        return self.start_s + self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "phase": self.phase,
            "step": self.step,
            "start_s": round(self.start_s, 3),
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }


class Timeline:
    """Thread-safe list of spans on one monotonic clock (hosts run in parallel threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._t0 = clock()
        self._spans: list[Span] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the timeline started."""
        return self._clock() - self._t0

    def since(self, clock_value: float) -> float:
        """A value of the clock (``time.monotonic()``) as seconds since the timeline started."""
        return clock_value - self._t0

    def add(self, host: str, phase: str, step: str, start_s: float, seconds: float, detail: str = "") -> None:
        with self._lock:
            self._spans.append(Span(host, phase, step, start_s, max(0.0, seconds), detail))

    @contextmanager
    def span(self, host: str, phase: str, step: str) -> Iterator[None]:
        start = self.now()
        try:
            yield
        finally:
            self.add(host, phase, step, start, self.now() - start)

    def add_remote(
        self,
        host: str,
        phase: str,
        exec_start_s: float,
        origin: float | None,
        steps: Sequence[tuple[str, float, float]],
        details: Mapping[str, str] | None = None,
    ) -> None:
        """Steps timed by the host (name, start, end on the host's clock), placed from the start
        of their exec: the host's first timestamp (``origin``) is taken as the exec's start."""
        if not steps:
            return
        first = origin if origin is not None else min(start for _, start, _ in steps)
        for name, start, end in steps:
            self.add(host, phase, name, exec_start_s + (start - first), end - start, (details or {}).get(name, ""))

    def spans(self) -> list[Span]:
        with self._lock:
            return sorted(self._spans, key=lambda s: (s.host, s.start_s))


def host_totals(spans: Sequence[Span]) -> dict[str, float]:
    """Per host: when its last span ended (the critical path is the largest)."""
    out: dict[str, float] = {}
    for span in spans:
        out[span.host] = max(out.get(span.host, 0.0), span.end_s)
    return out


__all__ = ["PHASES", "Span", "Timeline", "host_totals"]
