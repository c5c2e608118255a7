"""`hybridctl graph`: the model built from the reference overlay, coloured from saved results, as DOT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hybridctl.core.errors import InputError
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.plan import plan
from hybridctl.features.graph import FAIL, OK, apply_results, build, load_results, to_dot
from tests.conftest import REPO, require


def _graph():  # type: ignore[no-untyped-def]
    inventory = load_inventory(REPO / "inventory" / "reference.yaml").inventory
    return build(inventory, plan(inventory))


def test_the_reference_overlay_as_a_graph() -> None:
    graph = _graph()
    assert graph.sites == {"home": "onprem", "aws": "aws", "azure": "azure"}
    kinds = sorted(n.kind for n in graph.nodes.values())
    assert kinds.count("network") == 5 and kinds.count("gateway") == 3 and kinds.count("route-table") == 2
    cascades = {(e.source, e.target) for e in graph.edges if e.kind == "cascade"}
    assert cascades == {("gw:aws", "gw:home"), ("gw:azure", "gw:home")}
    route = next(e for e in graph.edges if e.kind == "route" and e.source == "rt:aws:Hybrid-RT")
    assert "192.168.30.0/24" in route.label and "192.168.31.0/24" in route.label


def test_coloured_from_check_and_routes_diff() -> None:
    check = {
        "ok": False,
        "probes": [
            {"source_site": "home", "target_site": "aws", "ok": True, "suspect": None},
            {"source_site": "home", "target_site": "azure", "ok": False, "suspect": "cloud-route"},
        ],
    }
    drift = {"in_sync": False, "drift": [{"symbol": "+", "layer": "cloud-route", "key": ["azure", "Hybrid-RT", "x"]}]}
    graph = apply_results(_graph(), [check, drift])
    assert graph.site_status == {"home": FAIL, "aws": OK, "azure": FAIL}
    probe = next(e for e in graph.edges if e.kind == "probe")
    assert (probe.source, probe.target, probe.status) == ("gw:home", "gw:azure", FAIL)
    assert "cloud-route" in probe.label
    assert graph.nodes["rt:azure:Hybrid-RT"].notes == ["+ cloud-route Hybrid-RT x"]


def test_saved_results_must_be_check_or_diff_documents(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"changes": []}))
    with pytest.raises(InputError) as caught:
        load_results([bad])
    assert caught.value.problems[0].field == "--from-check"


def test_dot_source_renders() -> None:
    require(shutil.which("dot") is not None, "graphviz's dot (apt-get install graphviz)")
    dot = to_dot(_graph())
    assert "cluster_aws" in dot.source and "gw__aws -> gw__home" in dot.source
    assert dot.pipe(format="svg").startswith(b"<?xml")


def test_coloured_from_a_check_captured_on_the_lab() -> None:
    (document,) = load_results([REPO / "tests" / "fixtures" / "cost" / "check-lab.json"])
    graph = apply_results(_graph(), [document])
    assert graph.site_status == {"home": OK, "aws": OK, "azure": OK}
    assert not [e for e in graph.edges if e.kind == "probe"]
    assert {e.status for e in graph.edges if e.kind == "cascade"} == {OK}
