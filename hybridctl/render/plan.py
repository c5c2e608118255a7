"""`plan`: the changes, the transit addresses, the clients to configure by hand; and the change,
client and plan documents every command that shows changes shares (docs/output.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hybridctl.core.diff import Change, summary
from hybridctl.core.planner.desired import LAYERS, DesiredState
from hybridctl.render.base import STYLE


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


def render_plan(console: Console, desired: DesiredState, changes: Sequence[Change]) -> None:
    render_changes(console, changes)
    render_plan_extras(console, desired)


# -- documents ------------------------------------------------------------------------------------


def change_document(change: Change) -> dict[str, Any]:
    """One change, in every document that lists changes (plan, up, down, routes diff)."""
    return {
        "action": change.action,
        "layer": change.layer,
        "key": list(change.key),
        "expected": dict(change.desired) if change.desired is not None else None,
        "actual": dict(change.actual) if change.actual is not None else None,
        "why": change.why,
    }


def clients_document(desired: DesiredState) -> list[dict[str, Any]]:
    """The LAN clients and the routes each needs (``managed``: false means configure it by hand)."""
    return [
        {
            "client": c.client,
            "address": str(c.address),
            "via": str(c.via),
            "managed": c.managed,
            "routes": [str(p) for p in c.prefixes],
            "dhcp_option_121": c.dhcp_option_121,
        }
        for c in desired.clients
    ]


def plan_document(desired: DesiredState, changes: Sequence[Change]) -> dict[str, Any]:
    """`plan -o json`; `up -o json` is this document plus what happened (render/apply.py)."""
    return {
        "inventory": desired.inventory,
        "changes": [change_document(c) for c in changes],
        "summary": summary(changes),
        "transit": {
            "network": str(desired.transit_network),
            "switch": str(desired.switch_address),
            "bridges": {k: str(v) for k, v in desired.transit_addresses.items()},
        },
        "clients": clients_document(desired),
        "secrets": [{"name": s.name, "source": s.spec} for s in desired.secrets],
    }
