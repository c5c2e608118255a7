"""The per-host timeline of a run (`up --timings`): one table, hosts in the order they finished."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

from hybridctl.backends.timeline import Span, host_totals

BAR_WIDTH = 24  # characters of the bar that shows where in the run a step happened


def _bar(span: Span, total: float) -> str:
    if total <= 0:
        return ""
    scale = BAR_WIDTH / total
    left = min(BAR_WIDTH - 1, int(span.start_s * scale))
    width = max(1, min(BAR_WIDTH - left, round(span.seconds * scale)))
    return " " * left + "█" * width


def timeline_lines(spans: Sequence[Span], width: int = 120) -> list[str]:
    """Fixed columns, hosts in the order they finished, each host's steps in time order; the
    detail (a vpncmd batch's commands, an exec's steps) is cut to fit ``width``."""
    totals = host_totals(spans)
    total = max(totals.values(), default=0.0)
    host_w = max([4, *(len(s.host) for s in spans)])
    step_w = max([4, *(len(s.step) for s in spans)])
    head = f"{'host':{host_w}}  {'phase':7}  {'step':{step_w}}  {'start':>6}  {'took':>6}  {'when':{BAR_WIDTH}}  "
    lines = [head + "detail"]
    room = max(8, width - len(head))
    for host in sorted(totals, key=lambda h: (totals[h], h)):
        mine = sorted((s for s in spans if s.host == host), key=lambda s: (s.start_s, -s.seconds))
        for index, span in enumerate(mine):
            detail = span.detail if len(span.detail) <= room else span.detail[: room - 1] + "…"
            lines.append(
                f"{host if index == 0 else '':{host_w}}  {span.phase:7}  {span.step:{step_w}}  "
                f"{span.start_s:6.2f}  {span.seconds:6.2f}  {_bar(span, total):{BAR_WIDTH}}  {detail}".rstrip()
            )
    return lines


def render_timeline(console: Console, spans: Sequence[Span]) -> None:
    if not spans:
        console.print("timeline: no host was connected to")
        return
    # Rows named after a backend (aws, azure, hosts) are its whole read / apply / verify.
    console.print("timeline (seconds from the start of the backends)", highlight=False)
    for line in timeline_lines(spans, console.width):
        console.print(escape(line), highlight=False, soft_wrap=True)
    totals = host_totals(spans)
    last = max(totals, key=lambda h: totals[h])
    console.print(f"last host done: {escape(last)} at {totals[last]:.2f} s", highlight=False)


def timeline_document(spans: Sequence[Span]) -> list[dict[str, Any]]:
    return [s.as_dict() for s in sorted(spans, key=lambda s: (s.start_s, s.host))]


__all__ = ["render_timeline", "timeline_document", "timeline_lines"]
