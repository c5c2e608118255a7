"""`vip`, `endpoint` and `doctor`: route tables per VIP, moves, endpoint state, checks.

The result objects come from hybridctl.features.vip (imported for types only: rendering must not
load the AWS SDK for commands that never touch a VIP).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hybridctl.features.vip.checks import Check, Status, UnsafeError

if TYPE_CHECKING:
    from hybridctl.features.vip.doctor import DoctorReport
    from hybridctl.features.vip.endpoint import EndpointResult
    from hybridctl.features.vip.ops import MoveResult, VipStatus

STATUS = {Status.ok: "[green]ok[/]", Status.warn: "[yellow]warn[/]", Status.fail: "[red]fail[/]"}


def checks_table(checks: Sequence[Check], title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("check", "on", "", "what", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        what = escape(check.message) + "".join(f"\n  {escape(d)}" for d in check.details)
        table.add_row(check.id, escape(check.subject), STATUS[check.status], what, escape(check.fix))
    return table


def checks_document(checks: Sequence[Check]) -> dict[str, Any]:
    """`endpoint status -o json`."""
    return {"checks": [c.as_dict() for c in checks]}


def refused_document(error: UnsafeError) -> dict[str, Any]:
    """`vip move` / `vip ensure -o json` when a safety check refuses: nothing was changed."""
    return {"error": "refused", "vip": error.vip, "checks": [c.as_dict() for c in error.checks]}


def render_refused(console: Console, error: UnsafeError) -> None:
    # Plain lines, not a table: ids of offending route tables must survive any terminal width.
    console.print(f"[red]refused[/]: {escape(str(error))}", highlight=False, soft_wrap=True)


def move_document(result: MoveResult) -> dict[str, Any]:
    """`vip move -o json`: one VIP's move (``vip ensure``: a list of these under ``vips``)."""
    return dict(result.as_dict())


def vips_document(results: Sequence[MoveResult | VipStatus]) -> dict[str, Any]:
    """`vip ensure` / `vip status -o json`."""
    return {"vips": [r.as_dict() for r in results]}


def render_move(console: Console, result: MoveResult, verb: str) -> None:
    rows = result.tables + result.onprem
    if rows:
        table = Table(title=f"vip {result.vip}: {verb} -> {result.node} ({result.eni_id})")
        for column in ("route table", "destination", "was", "now", "", "s"):
            table.add_column(column)
        for row in rows:
            mark = f"[green]{row.op}d[/]" if row.ok else f"[red]failed[/] {escape(row.error)}"
            table.add_row(
                escape(row.label), row.destination, row.before or "-", row.after or "-", mark, f"{row.seconds:.3f}"
            )
        console.print(table)
    else:
        console.print(f"vip {result.vip}: every route table already points at {result.node} ({result.eni_id})")
    if result.tgw is not None:
        tgw = result.tgw
        state = "[green]ok[/]" if tgw.ok else f"[red]failed[/] {escape(tgw.error)}"
        console.print(f"transit gateway {tgw.route_table_id}: {result.vip} -> {tgw.attachment_id} ({tgw.op}) {state}")
    for eni, outcome in result.source_dest_check.items():
        console.print(f"{eni}: source/dest check {escape(outcome)}")
    notes = [c for c in result.checks if c.status is not Status.ok]
    if notes:
        console.print(checks_table(notes))
    console.print(
        f"[dim]reads {result.read_seconds:.3f}s, writes+read-back {result.write_seconds:.3f}s, "
        f"calls {sum(result.calls.values())}[/]"
    )


def render_status(console: Console, results: Sequence[VipStatus]) -> None:
    for result in results:
        table = Table(
            title=f"vip {result.vip} {result.address} in {result.vpc_id} ({result.region}): "
            + (f"active on {result.active_node}" if result.active_node else "on no node")
            + ("" if result.in_sync else " [red]not in sync[/]")
        )
        for column in ("route table", "name", "main", "declared", "VIP ->", "node", "state"):
            table.add_column(column)
        for row in result.tables:
            table.add_row(
                row.table_id,
                escape(row.name or ""),
                "yes" if row.main else "",
                "yes" if row.wanted else "",
                row.target or "[red]missing[/]" if row.wanted else row.target or "-",
                row.node or "",
                row.state,
            )
        console.print(table)
        if result.tgw is not None:
            console.print(f"transit gateway: {escape(json.dumps(result.tgw))}")
        console.print(checks_table(result.checks))


def agent_document(path: Path, command: str) -> dict[str, Any]:
    """`vip install-agent -o json`."""
    return {"agent": str(path), "exec": command}


def render_agent(console: Console, path: Path, command: str) -> None:
    console.print(f"{escape(str(path))}: {escape(command)}")


def endpoints_document(results: Sequence[EndpointResult]) -> dict[str, Any]:
    """`endpoint ensure -o json`."""
    return {"endpoints": [r.as_dict() for r in results]}


def render_endpoints(console: Console, results: Sequence[EndpointResult]) -> None:
    for result in results:
        console.print(
            f"{result.vpc_id} ({result.region}): endpoint {result.endpoint_id}, "
            f"security group {result.security_group_id}"
        )
        for change in result.changes or ["nothing to change"]:
            console.print(f"  {escape(change)}")
        for note in result.notes:
            console.print(f"  [yellow]note[/]: {escape(note)}")
        for dns in result.dns_names:
            console.print(f"  [dim]{escape(dns)}[/]")


def doctor_document(report: DoctorReport) -> dict[str, Any]:
    """`doctor -o json`: overall status, counts per status, every check."""
    return dict(report.as_dict())


def render_doctor(console: Console, report: DoctorReport) -> None:
    console.print(checks_table(report.checks, title="hybridctl doctor"))
    counts = report.as_dict()["counts"]
    console.print(f"{STATUS[report.status]}: {counts}")
