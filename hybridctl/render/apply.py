"""`up`, `down` and `routes diff`: the changes against what runs, what applying did, the drift.

`up -o json` is the plan document (render/plan.py) of the changes against what runs, plus what
happened; `down -o json` has the same keys without the plan's extras; `routes diff -o json`
lists the same change documents, with what differs, as ``drift`` (docs/output.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hybridctl.backends.base import Outcome
from hybridctl.core.diff import Change, summary
from hybridctl.core.planner.desired import DesiredState
from hybridctl.features.engine import ApplyReport
from hybridctl.render.plan import change_document, plan_document, render_changes, render_plan_extras


def per_target(outcomes: Sequence[Outcome]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        row = counts.setdefault(outcome.target, {"ok": 0, "failed": 0})
        row["ok" if outcome.ok else "failed"] += 1
    return counts


def render_unreachable(console: Console, unreachable: Mapping[str, str]) -> None:
    for target, error in sorted(unreachable.items()):
        console.print(f"[red]unreachable[/] {escape(target)}: {escape(error)}")


def render_proposed(
    out: Console, err: Console, changes: Sequence[Change], unreachable: Mapping[str, str], desired: DesiredState | None
) -> None:
    """Before applying: every change against what runs (``desired``: also the plan's extras)."""
    render_changes(out, changes, show_actual=True)
    if desired is not None:
        render_plan_extras(out, desired)
    render_unreachable(err, unreachable)


def render_report(console: Console, report: ApplyReport) -> None:
    table = Table(title="result per target", title_justify="left")
    table.add_column("target")
    table.add_column("applied", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("error")
    errors: dict[str, str] = {}
    for outcome in report.failed:
        errors.setdefault(outcome.target, outcome.error)
    for target, counts in sorted(per_target(report.outcomes).items()):
        table.add_row(escape(target), str(counts["ok"]), str(counts["failed"]), escape(errors.get(target, "")))
    for target, error in sorted(report.unreachable.items()):
        table.add_row(escape(target), "0", "-", escape(f"unreachable: {error}"))
    console.print(table)
    if report.remaining:
        console.print("[yellow]Still different after applying (re-run `hybridctl up` to converge):[/]")
        render_changes(console, report.remaining, show_actual=True)
    if report.ok:
        console.print("[green]Done: every layer matches the plan.[/]")


def apply_document(
    changes: Sequence[Change],
    unreachable: Mapping[str, str],
    calls: Mapping[str, Mapping[str, int]],
    report: ApplyReport | None = None,
    desired: DesiredState | None = None,
) -> dict[str, Any]:
    """`up` / `down -o json`. ``report``: None when nothing was applied (dry run, nothing to do,
    declined). ``desired``: `up`'s plan, whose extras (transit, clients, secrets) join the document."""
    if desired is not None:
        document = plan_document(desired, changes)
    else:
        document = {"changes": [change_document(c) for c in changes], "summary": summary(changes)}
    document["unreachable"] = dict(report.unreachable if report is not None else unreachable)
    document["calls"] = {name: dict(counts) for name, counts in calls.items()}
    if report is not None:
        document["ok"] = report.ok
        document["failed"] = [
            {"target": o.target, "change": change_document(o.change) if o.change else None, "error": o.error}
            for o in report.failed
        ]
        document["remaining"] = [change_document(c) for c in report.remaining]
        document["per_target"] = per_target(report.outcomes)
    return document


# -- routes diff ----------------------------------------------------------------------------------


def drift_document(change: Change) -> dict[str, Any]:
    """A change found by `routes diff`: the change document, its symbol and what differs."""
    return {
        "symbol": change.symbol,
        **change_document(change),
        "differs": {k: {"expected": e, "actual": a} for k, (e, a) in change.differing().items()},
    }


def diff_document(layers: Sequence[str], drift: Sequence[Change], unreachable: Mapping[str, str]) -> dict[str, Any]:
    return {
        "in_sync": not drift and not unreachable,
        "layers": list(layers),
        "drift": [drift_document(c) for c in drift],
        "unreachable": dict(unreachable),
    }


def render_diff(out: Console, err: Console, drift: Sequence[Change], unreachable: Mapping[str, str]) -> None:
    if drift:
        render_changes(out, drift, show_actual=True)
    else:
        out.print("[green]In sync: every layer matches the plan.[/]")
    render_unreachable(err, unreachable)
