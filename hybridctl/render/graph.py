"""`graph -o json`: the drawn model (sites, nodes, edges, each with its status)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from hybridctl.features.graph import UNKNOWN, Graph


def graph_document(graph: Graph) -> dict[str, Any]:
    return {
        "name": graph.name,
        "sites": [{"name": s, "kind": k, "status": graph.site_status.get(s, UNKNOWN)} for s, k in graph.sites.items()],
        "nodes": [asdict(n) for n in graph.nodes.values()],
        "edges": [asdict(e) for e in graph.edges],
    }
