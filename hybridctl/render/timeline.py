"""The per-host timeline of a run (`up --timings`): one table, hosts in the order they finished."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hybridctl.backends.timeline import Span, host_totals

BAR_WIDTH = 32  # characters of the bar that shows where in the run a step happened


def _bar(span: Span, total: float) -> str:
    if total <= 0:
        return ""
    scale = BAR_WIDTH / total
    left = min(BAR_WIDTH - 1, int(span.start_s * scale))
    width = max(1, min(BAR_WIDTH - left, round(span.seconds * scale)))
    return " " * left + "█" * width


def timeline_table(spans: Sequence[Span]) -> Table:
    totals = host_totals(spans)
    total = max(totals.values(), default=0.0)
    table = Table(title="timeline (seconds from the start of the host backend)", title_justify="left")
    table.add_column("host")
    table.add_column("phase")
    table.add_column("step")
    table.add_column("start", justify="right")
    table.add_column("took", justify="right")
    table.add_column("when", no_wrap=True)
    table.add_column("detail", style="dim")
    for host in sorted(totals, key=lambda h: (totals[h], h)):
        mine = sorted((s for s in spans if s.host == host), key=lambda s: (s.start_s, -s.seconds))
        for index, span in enumerate(mine):
            table.add_row(
                escape(host) if index == 0 else "",
                span.phase,
                escape(span.step),
                f"{span.start_s:.2f}",
                f"{span.seconds:.2f}",
                _bar(span, total),
                escape(span.detail),
            )
        table.add_section()
    return table


def render_timeline(console: Console, spans: Sequence[Span]) -> None:
    if not spans:
        console.print("timeline: no host was connected to")
        return
    console.print(timeline_table(spans))
    totals = host_totals(spans)
    last = max(totals, key=lambda h: totals[h])
    console.print(f"last host done: {escape(last)} at {totals[last]:.2f} s")


def timeline_document(spans: Sequence[Span]) -> list[dict[str, Any]]:
    return [s.as_dict() for s in sorted(spans, key=lambda s: (s.start_s, s.host))]


__all__ = ["render_timeline", "timeline_document", "timeline_table"]
