"""The AWS parser (backends/aws_parse.py) on reads captured from the lab's AWS emulator.

tests/fixtures/aws/read_bare.json is the reference AWS site before hybridctl, read_configured.json
the same site after `up` (tests/fixtures/aws/capture.py re-captures both). No emulator here: the
parser is pure, so what it makes of a read is checked on the read itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.backends.aws_parse import AwsRead, parse_region
from hybridctl.backends.journal import Journal
from hybridctl.core.diff import diff
from hybridctl.core.inventory.load import LoadedInventory, parse_inventory
from hybridctl.core.planner.desired import DesiredState, Flag, Resource, RouteItem, RuleItem
from hybridctl.core.planner.plan import plan
from tests.conftest import FIXTURES

CLOUD_LAYERS = ("security-rule", "cloud-route", "cloud-association")


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "aws" / name).read_text()))


def inventory(edit: Any = None) -> LoadedInventory:
    # Endpoint and credentials only matter to the read, not to the parser.
    text = (FIXTURES / "aws" / "inventory.yaml").read_text()
    text = text.replace("${endpoint_url}", "http://127.0.0.1:1").replace("${credentials_file}", "/nonexistent")
    if edit is None:
        return parse_inventory(text)
    raw = yaml.safe_load(text)
    edit(raw)
    return parse_inventory(yaml.safe_dump(raw))


def journal_of(document: dict[str, Any], tmp_path: Path) -> Journal:
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(document.get("_journal", {"created": {}, "found": {}})))
    return Journal(path)


def parse(name: str, tmp_path: Path, loaded: LoadedInventory | None = None) -> tuple[DesiredState, Any]:
    loaded = loaded or inventory()
    desired = plan(loaded.inventory)
    document = fixture(name)
    sites = [s for s in loaded.inventory.sites if s.kind == "aws"]
    parsed = parse_region(AwsRead.from_json(document), sites, desired, journal_of(document, tmp_path).was_created)
    return desired, parsed


def aws_wanted(desired: DesiredState) -> list[Resource]:
    return [
        r
        for r in desired.resources()
        if r.key[0] == "aws"
        and (
            r.layer in CLOUD_LAYERS
            or (r.layer == "flag" and isinstance(r.item, Flag) and r.item.name != "net.ipv4.ip_forward")
        )
    ]


def test_a_bare_site_needs_every_planned_item(tmp_path: Path) -> None:
    desired, parsed = parse("read_bare.json", tmp_path)
    assert parsed.failures == {}
    changes = diff(aws_wanted(desired), parsed.resources)
    creates = {c.key for c in changes if c.action == "create"}
    assert creates == {r.key for r in aws_wanted(desired) if r.layer != "flag"}
    (flag,) = [c for c in changes if c.layer == "flag"]
    assert flag.action == "update" and flag.differing() == {"value": ("false", "true")}
    assert isinstance(flag.found, Flag) and flag.found.value is True  # the check is on, as AWS makes it
    # Subnets use the VPC's main table implicitly: nobody's creation, never deleted.
    implicit = [r for r in parsed.resources if r.layer == "cloud-association"]
    assert implicit and all(not r.owned and r.get("implicit") == "true" for r in implicit)


def test_a_configured_site_is_in_sync(tmp_path: Path) -> None:
    desired, parsed = parse("read_configured.json", tmp_path)
    assert parsed.failures == {}
    assert diff(aws_wanted(desired), parsed.resources) == []


def test_gateway_routes_read_back_with_the_planners_label_and_typed(tmp_path: Path) -> None:
    desired, parsed = parse("read_configured.json", tmp_path)
    (table,) = [t for t in desired.route_tables if t.site == "aws"]
    planned_labels = {r.target_label for r in table.routes}
    ours = [r for r in parsed.resources if r.layer == "cloud-route" and r.owned]
    assert {r.key[2] for r in ours} == {str(r.prefix) for r in table.routes}
    for resource in ours:
        assert isinstance(resource.item, RouteItem) and resource.item.route is None  # read, not planned
        assert {resource.get("target"), resource.item.target} <= planned_labels
    local = [r for r in parsed.resources if r.layer == "cloud-route" and r.get("target") == "local:"]
    assert local and not any(r.owned for r in local)  # the VPC's own route is never hybridctl's


def test_rules_read_with_their_names_from_the_description(tmp_path: Path) -> None:
    desired, parsed = parse("read_configured.json", tmp_path)
    planned = {r.item.name for r in desired.resources() if isinstance(r.item, RuleItem) and r.item.site == "aws"}
    ours = [r.item for r in parsed.resources if r.layer == "security-rule" and r.owned]
    assert all(isinstance(i, RuleItem) for i in ours)
    assert {i.name for i in ours if isinstance(i, RuleItem)} == planned


def test_the_state_apply_needs_is_resolved(tmp_path: Path) -> None:
    _, parsed = parse("read_configured.json", tmp_path)
    state = parsed.states["aws"]
    assert state.eni is not None and state.gateway_ref == "aws-bridge-eni"
    assert set(state.subnets) == {"Hybrid-Subnet", "Hybrid-Subnet-Dammy"}
    assert state.tables["Hybrid-RT"] is not None
    # Both subnets explicitly use the overlay's table (association ids kept for a later down).
    assert {table_id for _, table_id in state.assoc.values()} == {state.tables["Hybrid-RT"]["RouteTableId"]}


@pytest.mark.parametrize(
    ("edit", "field", "text"),
    [
        (lambda raw: raw["sites"][1].update(vpc="No-Such-VPC"), "sites[aws].vpc", "no VPC 'No-Such-VPC'"),
        (
            lambda raw: raw["sites"][1]["gateway"].update(eni="no-such-eni"),
            "sites[aws].gateway.eni",
            "no network interface 'no-such-eni'",
        ),
        (
            lambda raw: raw["sites"][1]["networks"][1].update(cidr="192.168.22.0/24"),
            "sites[aws].networks[Hybrid-Subnet-Dammy].cidr",
            "192.168.22.0/24",
        ),
    ],
    ids=["vpc", "eni", "subnet cidr"],
)
def test_names_that_do_not_resolve_fail_the_site_with_the_field(
    tmp_path: Path, edit: Any, field: str, text: str
) -> None:
    _, parsed = parse("read_bare.json", tmp_path, inventory(edit))
    assert set(parsed.failures) == {"aws"} and parsed.resources == []
    assert field in parsed.failures["aws"] and text in parsed.failures["aws"]
