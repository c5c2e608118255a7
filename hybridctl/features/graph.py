"""`hybridctl graph`: the overlay as a picture, coloured by a saved `check` / `routes diff` result.

Pure: :func:`build` turns the inventory and its plan into :class:`Graph` (sites, networks,
gateways, route tables, the transit, cascades), :func:`apply_results` colours it from saved JSON
documents, :func:`to_dot` makes a ``graphviz.Digraph`` (graphviz is an optional extra; rendering
svg/png also needs Debian's ``graphviz`` package for the ``dot`` binary).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridctl.core.errors import InputError, Problem
from hybridctl.core.inventory.models import Inventory
from hybridctl.core.planner.desired import DesiredState

OK, FAIL, DRIFT, UNKNOWN = "ok", "fail", "drift", "unknown"
COLOURS = {OK: "#2e7d32", FAIL: "#c62828", DRIFT: "#ef6c00", UNKNOWN: "#455a64"}
KIND_FILL = {"onprem": "#eef3f8", "aws": "#fff4e5", "azure": "#e8f1fb"}


@dataclass
class Node:
    id: str
    label: str
    kind: str  # network | gateway | route-table | transit
    site: str | None
    status: str = UNKNOWN
    notes: list[str] = field(default_factory=list)


@dataclass
class Edge:
    source: str
    target: str
    label: str
    kind: str  # lan | association | route | cascade | transit | probe
    status: str = UNKNOWN


@dataclass
class Graph:
    name: str
    sites: dict[str, str]  # site -> kind
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    site_status: dict[str, str] = field(default_factory=dict)


def _gw(site: str) -> str:
    return f"gw:{site}"


def build(inventory: Inventory, desired: DesiredState) -> Graph:
    graph = Graph(inventory.name, {s.name: s.kind for s in inventory.sites})
    transit = "transit"
    graph.nodes[transit] = Node(
        transit,
        f"transit {inventory.transit.cidr}\nhub {inventory.transit.hub}, L3 switch {desired.switch_address}",
        "transit",
        None,
    )
    server = inventory.server_site
    for site in inventory.sites:
        gateway = site.gateway
        tap = desired.transit_addresses.get(site.name)
        label = f"{gateway.name}\n{gateway.role} {gateway.private_ip}" + (f"\ntap {tap}" if tap else "")
        graph.nodes[_gw(site.name)] = Node(_gw(site.name), label, "gateway", site.name)
        for network in site.networks:
            nid = f"net:{site.name}:{network.name}"
            graph.nodes[nid] = Node(nid, f"{network.name}\n{network.cidr}", "network", site.name)
            graph.edges.append(Edge(nid, _gw(site.name), "", "lan"))
        if site is server:
            graph.edges.append(Edge(_gw(site.name), transit, "local bridge + L3 switch", "transit"))
        else:
            port = server.gateway.vpn_port
            graph.edges.append(Edge(_gw(site.name), _gw(server.name), f"cascade :{port}", "cascade"))
            graph.edges.append(Edge(_gw(site.name), transit, f"tap {tap}" if tap else "tap", "transit"))
    for table in desired.route_tables:
        tid = f"rt:{table.site}:{table.name}"
        graph.nodes[tid] = Node(
            tid,
            f"route table {table.name}\n{len(table.routes)} overlay routes"
            + (" (summarized)" if table.summarized else ""),
            "route-table",
            table.site,
        )
        for subnet in table.subnets:
            graph.edges.append(Edge(f"net:{table.site}:{subnet}", tid, "", "association"))
        if table.routes:
            prefixes = ", ".join(str(r.prefix) for r in table.routes[:3]) + (" ..." if len(table.routes) > 3 else "")
            graph.edges.append(Edge(tid, _gw(table.site), prefixes, "route"))
    return graph


def load_results(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Saved `check -o json` / `routes diff -o json` documents; a bad file is bad input."""
    out = []
    for path in paths:
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(
                [Problem(str(path), "--from-check", f"cannot read it as JSON: {exc}", "pass a file saved from -o json")]
            ) from None
        if not isinstance(document, dict) or not ({"probes"} <= set(document) or {"drift"} <= set(document)):
            raise InputError(
                [
                    Problem(
                        str(path),
                        "--from-check",
                        "neither a `check -o json` nor a `routes diff -o json` document",
                        "save one with `hybridctl check -i INV -o json > FILE`",
                    )
                ]
            )
        out.append(document)
    return out


def _worse(a: str, b: str) -> str:
    order = [UNKNOWN, OK, DRIFT, FAIL]
    return a if order.index(a) >= order.index(b) else b


def apply_results(graph: Graph, documents: Iterable[dict[str, Any]]) -> Graph:
    """Colour sites, gateways and route tables; add a red edge per failed probe pair."""
    for document in documents:
        if "probes" in document:
            failed: dict[tuple[str, str], list[str]] = {}
            for probe in document["probes"]:
                src, dst = str(probe.get("source_site")), str(probe.get("target_site"))
                status = OK if probe.get("ok") else FAIL
                for site in (src, dst):
                    if site in graph.sites:
                        graph.site_status[site] = _worse(graph.site_status.get(site, UNKNOWN), status)
                if status == FAIL:
                    failed.setdefault((src, dst), []).append(str(probe.get("suspect") or "?"))
            for (src, dst), suspects in sorted(failed.items()):
                if src in graph.sites and dst in graph.sites:
                    label = f"{len(suspects)} failed; suspect {sorted(set(suspects))[0]}"
                    graph.edges.append(Edge(_gw(src), _gw(dst), label, "probe", FAIL))
            for node in graph.nodes.values():
                if node.kind == "gateway" and node.site in graph.site_status:
                    node.status = _worse(node.status, graph.site_status[node.site])
        if "drift" in document:
            for item in document["drift"]:
                key = [str(k) for k in item.get("key") or []]
                site = key[0] if key else ""
                if site not in graph.sites:
                    continue
                graph.site_status[site] = _worse(graph.site_status.get(site, UNKNOWN), DRIFT)
                targets = [n for n in graph.nodes.values() if n.site == site and n.kind == "route-table"]
                if str(item.get("layer", "")).startswith("cloud-") and len(key) > 1:
                    targets = [n for n in targets if n.id == f"rt:{site}:{key[1]}"] or targets
                else:
                    targets = [graph.nodes[_gw(site)]]
                for node in targets:
                    node.status = _worse(node.status, DRIFT)
                    node.notes.append(f"{item.get('symbol', '~')} {item.get('layer')} {' '.join(key[1:])}")
    for edge in graph.edges:
        if edge.kind in ("cascade", "transit"):
            statuses = [graph.site_status.get(graph.nodes[edge.source].site or "", UNKNOWN)]
            edge.status = statuses[0]
    return graph


def _dot_id(node_id: str) -> str:
    # graphviz reads "a:b" in an edge as node a, port b.
    return node_id.replace(":", "__")


def to_dot(graph: Graph) -> Any:
    """A ``graphviz.Digraph`` of the graph (import on use: an optional extra)."""
    import graphviz

    dot = graphviz.Digraph(graph.name, graph_attr={"rankdir": "LR", "fontname": "Helvetica", "fontsize": "11"})
    dot.attr("node", fontname="Helvetica", fontsize="10")
    dot.attr("edge", fontname="Helvetica", fontsize="9")
    for site, kind in graph.sites.items():
        with dot.subgraph(name=f"cluster_{site}") as sub:
            status = graph.site_status.get(site, UNKNOWN)
            sub.attr(
                label=f"{site} ({kind})" + ("" if status == UNKNOWN else f": {status}"),
                style="filled,rounded",
                fillcolor=KIND_FILL.get(kind, "#f5f5f5"),
                color=COLOURS[status],
                penwidth="2" if status != UNKNOWN else "1",
            )
            for node in graph.nodes.values():
                if node.site != site:
                    continue
                shape = {"network": "box", "gateway": "ellipse", "route-table": "note"}.get(node.kind, "box")
                label = node.label + "".join(f"\n{n}" for n in node.notes[:3])
                sub.node(
                    _dot_id(node.id), label, shape=shape, color=COLOURS[node.status], style="filled", fillcolor="white"
                )
    transit = graph.nodes["transit"]
    dot.node(_dot_id(transit.id), transit.label, shape="doubleoctagon", color=COLOURS[transit.status])
    styles = {
        "lan": "solid",
        "association": "dashed",
        "route": "bold",
        "cascade": "bold",
        "transit": "dotted",
        "probe": "dashed",
    }
    for edge in graph.edges:
        dot.edge(
            _dot_id(edge.source),
            _dot_id(edge.target),
            edge.label,
            style=styles.get(edge.kind, "solid"),
            color=COLOURS[edge.status],
            constraint="false" if edge.kind == "probe" else "true",
        )
    return dot


__all__ = ["Edge", "Graph", "Node", "apply_results", "build", "load_results", "to_dot"]
