"""The Azure parser (backends/azure_parse.py) on reads captured from the project's ARM emulator.

tests/fixtures/azure/read_bare.json is the reference Azure site before hybridctl,
read_configured.json the same site after `up` (tests/fixtures/azure/capture.py re-captures both).
No emulator here: the parser is pure, so what it makes of a read is checked on the read itself.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.backends.azure_parse import AzureRead, parse_group
from hybridctl.backends.journal import Journal
from hybridctl.core.diff import diff
from hybridctl.core.inventory.load import LoadedInventory, parse_inventory
from hybridctl.core.planner.desired import DesiredState, Flag, Resource, RouteItem, RuleItem
from hybridctl.core.planner.plan import plan
from tests.conftest import FIXTURES

CLOUD_LAYERS = ("security-rule", "cloud-route", "cloud-association")


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "azure" / name).read_text()))


def inventory(tmp_path: Path, edit: Any = None) -> LoadedInventory:
    # The ARM section only matters to the read, not to the parser; the secret file must exist.
    secret = tmp_path / "client-secret"
    secret.write_text("unused\n")
    values = {
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "tenant_id": "11111111-1111-1111-1111-111111111111",
        "client_id": "22222222-2222-2222-2222-222222222222",
        "secret_file": str(secret),
        "arm_endpoint": "https://127.0.0.1:1",
        "authority": "https://127.0.0.1:1",
        "ca_bundle": str(secret),
    }
    raw = yaml.safe_load(string.Template((FIXTURES / "azure" / "inventory.yaml").read_text()).substitute(values))
    if edit is not None:
        edit(raw)
    return parse_inventory(yaml.safe_dump(raw))


def parse(name: str, tmp_path: Path, edit: Any = None) -> tuple[DesiredState, Any]:
    loaded = inventory(tmp_path, edit)
    desired = plan(loaded.inventory)
    document = fixture(name)
    journal_path = tmp_path / "journal.json"
    journal_path.write_text(json.dumps(document.get("_journal", {"created": {}, "found": {}})))
    sites = [s for s in loaded.inventory.sites if s.kind == "azure"]
    parsed = parse_group(AzureRead.from_json(document), sites, desired, Journal(journal_path).was_created)
    return desired, parsed


def azure_wanted(desired: DesiredState) -> list[Resource]:
    """The planned items the Azure backend owns (its cloud layers and the NIC's IP forwarding)."""

    def cloud(r: Resource) -> bool:
        return r.layer in CLOUD_LAYERS or (isinstance(r.item, Flag) and r.item.name == "ip_forwarding")

    return [r for r in desired.resources() if r.key[0] == "azure" and cloud(r)]


def test_a_bare_site_needs_every_planned_item(tmp_path: Path) -> None:
    desired, parsed = parse("read_bare.json", tmp_path)
    assert parsed.failures == {}
    changes = diff(azure_wanted(desired), parsed.resources)
    assert {c.key for c in changes if c.action == "create"} == {
        r.key for r in azure_wanted(desired) if r.layer != "flag"
    }
    (flag,) = [c for c in changes if c.layer == "flag"]
    assert flag.action == "update" and flag.differing() == {"value": ("true", "false")}
    # The user's own NSG rule is read, typed, and not hybridctl's.
    (ssh,) = [r for r in parsed.resources if r.layer == "security-rule"]
    assert not ssh.owned and isinstance(ssh.item, RuleItem) and ssh.item.name == "allow-ssh"
    assert (ssh.item.protocol, ssh.item.port) == ("tcp", "22")
    # The route table does not exist yet (Azure tables are created by hybridctl).
    assert parsed.states["azure"].tables == {"Hybrid-RT": None}


def test_a_configured_site_is_in_sync(tmp_path: Path) -> None:
    desired, parsed = parse("read_configured.json", tmp_path)
    assert parsed.failures == {}
    assert diff(azure_wanted(desired), parsed.resources) == []


def test_routes_read_back_under_the_planners_names(tmp_path: Path) -> None:
    desired, parsed = parse("read_configured.json", tmp_path)
    (table,) = [t for t in desired.route_tables if t.site == "azure"]
    planned = {str(r.prefix): r for r in table.routes}
    ours = [r.item for r in parsed.resources if r.layer == "cloud-route" and r.owned]
    assert {i.destination for i in ours if isinstance(i, RouteItem)} == set(planned)
    for item in ours:
        assert isinstance(item, RouteItem) and item.route is None  # read, not planned
        assert item.name == planned[item.destination].name  # names.azure_route_name, via the planner
        assert item.target == planned[item.destination].target_label


def test_the_state_apply_needs_is_resolved(tmp_path: Path) -> None:
    _, parsed = parse("read_configured.json", tmp_path)
    state = parsed.states["azure"]
    assert state.nic is not None and state.vnet is not None and state.location == "japaneast"
    assert set(state.subnets) == {"Hybrid_Subnet", "Hybrid_Subnet_Dammy"}
    assert all(s["_vnet"] == state.vnet["name"] for s in state.subnets.values())
    table = state.tables["Hybrid-RT"]
    assert table is not None and str(table["id"]).lower() in state.rg_tables


@pytest.mark.parametrize(
    ("edit", "field", "text"),
    [
        (lambda raw: raw["sites"][2].update(vnet="No-Such-VNet"), "sites[azure].vnet", "no virtual network"),
        (
            lambda raw: raw["sites"][2]["gateway"].update(nic="no-such-nic"),
            "sites[azure].gateway.nic",
            "no network interface 'no-such-nic'",
        ),
        (
            lambda raw: raw["sites"][2]["networks"][1].update(cidr="192.168.32.0/24"),
            "sites[azure].networks[Hybrid_Subnet_Dammy].cidr",
            "192.168.32.0/24",
        ),
    ],
    ids=["vnet", "nic", "subnet cidr"],
)
def test_names_that_do_not_resolve_fail_the_site_with_the_field(
    tmp_path: Path, edit: Any, field: str, text: str
) -> None:
    _, parsed = parse("read_bare.json", tmp_path, edit)
    assert set(parsed.failures) == {"azure"} and parsed.resources == []
    assert field in parsed.failures["azure"] and text in parsed.failures["azure"]
