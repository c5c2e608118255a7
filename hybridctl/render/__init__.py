"""Rendering of core results for the terminal (rich) and for machines (JSON). No logic here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hybridctl.core.diff import Change, summary
from hybridctl.core.errors import HybridctlError, InputError, RemoteError
from hybridctl.core.planner.desired import LAYERS, DesiredState

STYLE = {"create": "green", "update": "yellow", "delete": "red", "conflict": "magenta"}


def dump_json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False, default=str)


def _attrs_text(attrs: Iterable[tuple[str, str]] | None) -> str:
    if not attrs:
        return ""
    return " ".join(f"{k}={v}" for k, v in attrs)


def changes_table(layer: str, changes: Sequence[Change], show_actual: bool = False) -> Table:
    table = Table(title=layer, title_justify="left", show_lines=False, expand=False)
    table.add_column("", no_wrap=True)
    table.add_column("object")
    table.add_column("expected")
    if show_actual:
        table.add_column("actual")
    table.add_column("why", style="dim")
    for change in changes:
        row = [
            f"[{STYLE[change.action]}]{change.symbol}[/]",
            escape(" ".join(change.key)),
            escape(_attrs_text(change.desired)),
        ]
        if show_actual:
            row.append(escape(_attrs_text(change.actual)))
        row.append(escape(change.why))
        table.add_row(*row)
    return table


def render_changes(console: Console, changes: Sequence[Change], show_actual: bool = False) -> None:
    if not changes:
        console.print("[green]Nothing to do: every layer is in sync.[/]")
        return
    for layer in LAYERS:
        layer_changes = [c for c in changes if c.layer == layer]
        if layer_changes:
            console.print(changes_table(layer, layer_changes, show_actual))
    counts = summary(changes)
    parts = []
    for action in ("create", "update", "delete", "conflict"):
        total = sum(c[action] for c in counts.values())
        if total:
            parts.append(
                f"[{STYLE[action]}]{total} to {action}[/]"
                if action != "conflict"
                else f"[{STYLE[action]}]{total} conflicts (left alone)[/]"
            )
    console.print("Plan: " + ", ".join(parts))


def render_plan_extras(console: Console, desired: DesiredState) -> None:
    """What the plan decided that is not a change: transit addresses, manual steps."""
    table = Table(title="transit addresses", title_justify="left")
    table.add_column("holder")
    table.add_column("address")
    table.add_row("L3 switch", f"{desired.switch_address}/{desired.transit_network.prefixlen}")
    for site, address in desired.transit_addresses.items():
        table.add_row(f"bridge of {site}", f"{address}/{desired.transit_network.prefixlen}")
    console.print(table)
    manual_clients = [c for c in desired.clients if not c.managed]
    if manual_clients:
        console.print("[bold]LAN clients hybridctl cannot reach; add these routes (or push DHCP option 121):[/]")
        for client in manual_clients:
            for prefix in client.prefixes:
                console.print(escape(f"  {client.client} ({client.address}): ip route add {prefix} via {client.via}"))
            console.print(escape(f"  DHCP option 121: {client.dhcp_option_121}"))
            console.print(escape(f"  dnsmasq: {client.dnsmasq_option}"))
    manual_rules = [r for r in desired.security_rules if r.provider == "manual"]
    if manual_rules:
        console.print("[bold]Rules for devices hybridctl does not manage:[/]")
        for rule in manual_rules:
            console.print(escape(f"  {rule.group}: allow {rule.protocol}/{rule.port} from {rule.peer} — {rule.why}"))


def plan_document(desired: DesiredState, changes: Sequence[Change]) -> dict[str, Any]:
    return {
        "inventory": desired.inventory,
        "changes": [c.as_dict() for c in changes],
        "summary": summary(changes),
        "transit": {
            "network": str(desired.transit_network),
            "switch": str(desired.switch_address),
            "bridges": {k: str(v) for k, v in desired.transit_addresses.items()},
        },
        "clients": [
            {
                "client": c.client,
                "address": str(c.address),
                "via": str(c.via),
                "managed": c.managed,
                "routes": [str(p) for p in c.prefixes],
                "dhcp_option_121": c.dhcp_option_121,
            }
            for c in desired.clients
        ],
        "secrets": [{"name": s.name, "source": s.spec} for s in desired.secrets],
    }


def render_error(console: Console, error: BaseException, as_json: bool) -> None:
    if as_json:
        if isinstance(error, InputError):
            document: dict[str, Any] = {"error": "bad input", "problems": [p.as_dict() for p in error.problems]}
        elif isinstance(error, RemoteError):
            document = {"error": error.message, "target": error.target, "hint": error.hint}
        else:
            document = {"error": str(error)}
        console.print_json(dump_json(document))
        return
    if isinstance(error, InputError):
        for problem in error.problems:
            console.print(f"[red]error[/]: {escape(problem.render())}", highlight=False, soft_wrap=True)
        return
    label = "error" if isinstance(error, HybridctlError) else "internal error"
    console.print(f"[red]{label}[/]: {escape(str(error))}", highlight=False, soft_wrap=True)
