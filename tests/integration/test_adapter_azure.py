"""The Azure backend against the lab's ARM emulator over HTTPS, with the real SDKs.

The reference site's Azure objects (resource group, VNet with two subnets, NSG, bridge NIC)
are built with plain azure-mgmt-network calls; the backend authenticates with
ClientSecretCredential (secret read from a file through the SecretStore), reads, the pure diff
plans, the backend applies, and the emulator's request log checks the calls. One emulator
serves the module (port 0); each test starts from an empty store.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.rest import HttpRequest
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as nm

from hybridctl.backends.azure import AzureBackend
from hybridctl.backends.base import NoProgress, Outcome
from hybridctl.backends.journal import Journal
from hybridctl.core.diff import diff
from hybridctl.core.inventory.load import LoadedInventory, load_inventory
from hybridctl.core.secrets import SecretStore
from hybridctl_lab.azure_emulator import AzureEmulator
from tests.conftest import FIXTURES
from tests.support.backends import BackendRun, by_key
from tests.support.emulators import azure_credential, azure_template_values, network_client, write_client_secret

# Each test starts from an empty emulator (one serves the module).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_azure")]

RG = "hybrid-rg"
LOCATION = "japaneast"
BRIDGE = "192.168.30.100"


@pytest.fixture
def net(azure_emulator: AzureEmulator) -> Iterator[NetworkManagementClient]:
    credential = azure_credential(azure_emulator)
    client = network_client(azure_emulator, credential)
    yield client
    client.close()
    credential.close()


def _subnet(name: str, prefix: str) -> dict[str, Any]:
    return {"name": name, "properties": {"addressPrefix": prefix}}


def _user_table(net: NetworkManagementClient, routes: list[dict[str, Any]]) -> None:
    """The user's own route table ``Hybrid-RT`` holding ``routes``, written with the SDK before hybridctl runs."""
    net.route_tables.begin_create_or_update(
        RG, "Hybrid-RT", nm.RouteTable({"location": LOCATION, "properties": {"routes": routes}})
    ).result()


def _rule(name: str, priority: int, source: str, port: str = "*", protocol: str = "*") -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "protocol": protocol,
            "access": "Allow",
            "direction": "Inbound",
            "priority": priority,
            "sourcePortRange": "*",
            "destinationPortRange": port,
            "sourceAddressPrefix": source,
            "destinationAddressPrefix": "*",
        },
    }


@pytest.fixture
def cloud(azure_emulator: AzureEmulator, net: NetworkManagementClient) -> dict[str, str]:
    """The reference Azure site, as a user would have built it before running hybridctl."""
    return build_reference_site(azure_emulator, net)


def build_reference_site(azure_emulator: AzureEmulator, net: NetworkManagementClient) -> dict[str, str]:
    """The reference Azure site's resource group, VNet, NSG and NICs; subnet name -> id."""
    rg_path = f"/subscriptions/{azure_emulator.subscription_id}/resourcegroups/{RG}?api-version=2021-04-01"
    net.send_request(HttpRequest("PUT", rg_path, json={"location": LOCATION})).raise_for_status()
    vnet = net.virtual_networks.begin_create_or_update(
        RG,
        "Hybrid-VNet",
        nm.VirtualNetwork(
            {
                "location": LOCATION,
                "properties": {
                    "addressSpace": {"addressPrefixes": ["192.168.30.0/23"]},
                    "subnets": [
                        _subnet("Hybrid_Subnet", "192.168.30.0/24"),
                        _subnet("Hybrid_Subnet_Dammy", "192.168.31.0/24"),
                    ],
                },
            }
        ),
    ).result()
    subnets = {s["name"]: s["id"] for s in vnet.as_dict()["properties"]["subnets"]}
    net.network_security_groups.begin_create_or_update(
        RG,
        "azure-bridge-nsg",
        nm.NetworkSecurityGroup(
            {"location": LOCATION, "properties": {"securityRules": [_rule("allow-ssh", 1000, "*", "22", "Tcp")]}}
        ),
    ).result()
    for name, ip in (("azure-bridge-nic", BRIDGE), ("other-nic", "192.168.30.50")):
        config = {
            "subnet": {"id": subnets["Hybrid_Subnet"]},
            "privateIPAllocationMethod": "Static",
            "privateIPAddress": ip,
        }
        net.network_interfaces.begin_create_or_update(
            RG,
            name,
            nm.NetworkInterface(
                {
                    "location": LOCATION,
                    "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": config}]},
                }
            ),
        ).result()
    return subnets


def make_inventory(
    tmp_path: Path, emulator: AzureEmulator, extra_networks: int = 0, edit: Any = None, name: str = "inventory.yaml"
) -> LoadedInventory:
    """tests/fixtures/azure/inventory.yaml, pointed at the emulator, optionally grown or edited."""
    secret = write_client_secret(tmp_path / "client-secret", emulator.client_secret)
    text = string.Template((FIXTURES / "azure" / "inventory.yaml").read_text()).substitute(
        azure_template_values(emulator, secret)
    )
    raw = yaml.safe_load(text)
    for i in range(extra_networks):
        raw["sites"][0]["networks"].append({"name": f"lan{i}", "cidr": f"10.10.{i}.0/24"})
    if edit is not None:
        edit(raw)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return load_inventory(path)


class Run(BackendRun[AzureBackend]):
    """The Azure backend of one inventory; journal and secrets under ``tmp_path`` (``tag``: more than one)."""

    def __init__(self, loaded: LoadedInventory, tmp_path: Path, tag: str = "") -> None:
        journal = Journal(tmp_path / f"journal{tag}.json")
        super().__init__(
            loaded, journal, AzureBackend(loaded.inventory, journal, SecretStore(tmp_path / f"secrets{tag}.json"))
        )

    def up(self) -> list[Outcome]:
        return self.apply([c for c in self.changes() if c.action != "conflict"])


@pytest.fixture
def run(tmp_path: Path, azure_emulator: AzureEmulator, cloud: dict[str, str]) -> Iterator[Run]:
    runner = Run(make_inventory(tmp_path, azure_emulator), tmp_path)
    yield runner
    runner.backend.close()


def add_user_route(net: NetworkManagementClient) -> None:
    """A route someone else adds to Hybrid-RT (outside the overlay), with plain azure-mgmt-network."""
    net.routes.begin_create_or_update(
        RG,
        "Hybrid-RT",
        "user-route",
        nm.Route({"properties": {"addressPrefix": "10.99.0.0/16", "nextHopType": "Internet"}}),
    ).result()


def routes_of(net: NetworkManagementClient, table: str = "Hybrid-RT") -> dict[str, dict[str, Any]]:
    got = net.route_tables.get(RG, table).as_dict()
    return {r["properties"]["addressPrefix"]: r for r in got["properties"].get("routes", [])}


def subnet_table(net: NetworkManagementClient, subnet: str) -> str | None:
    props = net.subnets.get(RG, "Hybrid-VNet", subnet).as_dict()["properties"]
    ref = props.get("routeTable")
    return str(ref["id"]).rsplit("/", 1)[-1] if ref else None


# --------------------------------------------------------------------------- tests


def test_bare_read_plans_every_create_in_four_list_calls(run: Run, azure_emulator: AzureEmulator) -> None:
    azure_emulator.requests.reset()
    changes = run.changes()
    assert {c.key for c in changes if c.action == "create"} == {r.key for r in run.want if r.layer != "flag"}
    (flag,) = [c for c in changes if c.layer == "flag"]
    assert (flag.action, flag.differing()) == ("update", {"value": ("true", "false")})
    assert run.backend.counter.reads == azure_emulator.requests.count(kind="read") == 4
    assert azure_emulator.requests.count(kind="mutating") == 0


def test_apply_converges_and_a_second_apply_changes_nothing(
    run: Run, azure_emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    run.up()
    table = net.route_tables.get(RG, "Hybrid-RT").as_dict()
    assert table["tags"] == {"managed-by": "hybridctl"}
    routes = routes_of(net)
    for prefix in ("192.168.1.0/24", "192.168.20.0/24", "192.168.21.0/24"):
        props = routes[prefix]["properties"]
        assert (props["nextHopType"], props["nextHopIpAddress"]) == ("VirtualAppliance", BRIDGE)
        assert routes[prefix]["name"] == "hybridctl-" + prefix.replace(".", "-").replace("/", "-")
    assert subnet_table(net, "Hybrid_Subnet") == subnet_table(net, "Hybrid_Subnet_Dammy") == "Hybrid-RT"
    nic = net.network_interfaces.get(RG, "azure-bridge-nic").as_dict()
    assert nic["properties"]["enableIPForwarding"] is True
    rules = net.network_security_groups.get(RG, "azure-bridge-nsg").as_dict()["properties"]["securityRules"]
    ours = {r["name"]: r["properties"]["priority"] for r in rules if r["name"].startswith("hybridctl-")}
    assert set(ours) == {"hybridctl-from-Hybrid_Subnet", "hybridctl-from-Hybrid_Subnet_Dammy"}
    assert len(set(ours.values())) == 2 and min(ours.values()) > 1000  # 1000 is the user's allow-ssh
    assert run.journal.original("flag", ("azure", "azure-bridge-nic", "ip_forwarding")) == "false"

    assert run.changes() == []
    azure_emulator.requests.reset()
    mutations = run.backend.counter.mutations
    assert run.up() == []
    assert azure_emulator.requests.count(kind="mutating") == 0
    assert run.backend.counter.mutations == mutations


def test_drift_is_shown_and_repaired(run: Run, azure_emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    run.up()
    # One route missing: written back alone, under the plan's name.
    net.routes.begin_delete(RG, "Hybrid-RT", "hybridctl-192-168-21-0-24").result()
    changes = run.changes()
    assert [(c.action, c.key) for c in changes] == [("create", ("azure", "Hybrid-RT", "192.168.21.0/24"))]
    azure_emulator.requests.reset()
    run.apply(changes)
    assert [(e.method, e.path.rsplit("/", 2)[-2]) for e in azure_emulator.requests.entries(kind="mutating")] == [
        ("PUT", "routes")
    ]
    assert routes_of(net)["192.168.21.0/24"]["name"] == "hybridctl-192-168-21-0-24"

    # Several drifts at once.
    net.routes.begin_delete(RG, "Hybrid-RT", "hybridctl-192-168-1-0-24").result()
    net.routes.begin_create_or_update(
        RG,
        "Hybrid-RT",
        "hybridctl-192-168-20-0-24",
        nm.Route(
            {
                "properties": {
                    "addressPrefix": "192.168.20.0/24",
                    "nextHopType": "VirtualAppliance",
                    "nextHopIpAddress": "192.168.30.50",
                }
            }
        ),
    ).result()
    nic = net.network_interfaces.get(RG, "azure-bridge-nic").as_dict()
    nic["properties"]["enableIPForwarding"] = False
    net.network_interfaces.begin_create_or_update(RG, "azure-bridge-nic", nm.NetworkInterface(nic)).result()

    drift = by_key(run.changes())
    assert set(drift) == {
        ("azure", "Hybrid-RT", "192.168.1.0/24"),
        ("azure", "Hybrid-RT", "192.168.20.0/24"),
        ("azure", "azure-bridge-nic", "ip_forwarding"),
    }
    assert drift[("azure", "Hybrid-RT", "192.168.1.0/24")].action == "create"
    hop = drift[("azure", "Hybrid-RT", "192.168.20.0/24")]
    assert (hop.symbol, hop.differing()) == (
        "~",
        {"target": (f"virtual-appliance:{BRIDGE}", "virtual-appliance:192.168.30.50")},
    )
    assert drift[("azure", "azure-bridge-nic", "ip_forwarding")].differing() == {"value": ("true", "false")}
    azure_emulator.requests.reset()
    run.apply(list(drift.values()))
    # The two route writes of one table went out as a single table PUT.
    puts = [e.path.rsplit("/", 2)[-2] for e in azure_emulator.requests.entries(method="PUT")]
    assert sorted(puts) == ["networkInterfaces", "routeTables"]
    assert run.changes() == []
    assert routes_of(net)["192.168.20.0/24"]["properties"]["nextHopIpAddress"] == BRIDGE


def test_foreign_route_survives_apply_and_down(run: Run, net: NetworkManagementClient) -> None:
    run.up()
    add_user_route(net)
    assert run.changes() == []  # a foreign route that collides with nothing is invisible
    run.up()
    run.down()
    routes = routes_of(net)
    assert set(routes) == {"10.99.0.0/16"}
    assert routes["10.99.0.0/16"]["name"] == "user-route"
    # The table hybridctl created stays while a foreign route lives in it; subnets are released.
    assert subnet_table(net, "Hybrid_Subnet") is None and subnet_table(net, "Hybrid_Subnet_Dammy") is None
    nic = net.network_interfaces.get(RG, "azure-bridge-nic").as_dict()
    assert nic["properties"]["enableIPForwarding"] is False  # the value found before the first change
    rules = net.network_security_groups.get(RG, "azure-bridge-nsg").as_dict()["properties"]["securityRules"]
    assert [r["name"] for r in rules] == ["allow-ssh"]


def test_down_deletes_the_table_it_created_once_empty(run: Run, net: NetworkManagementClient) -> None:
    run.up()
    run.down()
    assert [t.name for t in net.route_tables.list(RG)] == []
    assert run.journal.entries() == {"created": {}, "found": {}}


def test_foreign_collisions_are_conflicts_and_left_alone(
    tmp_path: Path, azure_emulator: AzureEmulator, net: NetworkManagementClient, cloud: dict[str, str]
) -> None:
    # The user's own table and rule already hold overlay keys.
    _user_table(
        net,
        [
            {
                "name": "to-home",
                "properties": {"addressPrefix": "192.168.1.0/24", "nextHopType": "VirtualNetworkGateway"},
            },
            {"name": "half", "properties": {"addressPrefix": "192.168.20.0/25", "nextHopType": "None"}},
        ],
    )
    nsg = net.network_security_groups.get(RG, "azure-bridge-nsg").as_dict()
    nsg["properties"]["securityRules"].append(_rule("deny-dammy", 1001, "192.168.31.0/24"))
    net.network_security_groups.begin_create_or_update(RG, "azure-bridge-nsg", nm.NetworkSecurityGroup(nsg)).result()

    run = Run(make_inventory(tmp_path, azure_emulator), tmp_path)
    changes = by_key(run.changes())
    home = changes[("azure", "Hybrid-RT", "192.168.1.0/24")]
    assert home.action == "conflict"
    assert home.differing() == {"target": (f"virtual-appliance:{BRIDGE}", "virtual-network-gateway:")}
    assert changes[("azure", "Hybrid-RT", "192.168.20.0/25")].action == "conflict"
    rule = changes[("azure", "azure-bridge-nsg", "inbound", "all", "*", "192.168.31.0/24")]
    assert rule.action == "conflict"
    assert rule.differing()["name"] == ("hybridctl-from-Hybrid_Subnet_Dammy", "deny-dammy")

    run.up()
    routes = routes_of(net)
    assert routes["192.168.1.0/24"]["name"] == "to-home"
    assert routes["192.168.21.0/24"]["name"] == "hybridctl-192-168-21-0-24"
    # Associations to the user's (untagged) table are hybridctl's only by the journal.
    run.down()
    routes = routes_of(net)
    assert set(routes) == {"192.168.1.0/24", "192.168.20.0/25"}
    assert subnet_table(net, "Hybrid_Subnet") is None
    assert [t.name for t in net.route_tables.list(RG)] == ["Hybrid-RT"]


def test_throttling_is_retried_and_the_run_succeeds(
    run: Run, azure_emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    azure_emulator.faults.add(method="GET", path_regex=r"/routeTables$", status=429, count=2, retry_after=0)
    azure_emulator.faults.add(method="PUT", path_regex=r"/routeTables/Hybrid-RT$", status=429, count=1, retry_after=0)
    azure_emulator.faults.add(method="PUT", path_regex=r"/subnets/", status=429, count=1, retry_after=0)
    run.up()
    throttled = [e for e in azure_emulator.requests.entries() if e.status == 429]
    assert len(throttled) == 4
    assert len(routes_of(net)) == 3
    assert run.changes() == []


def test_read_calls_do_not_grow_with_the_number_of_routes(
    tmp_path: Path, azure_emulator: AzureEmulator, net: NetworkManagementClient, cloud: dict[str, str]
) -> None:
    counts = []
    for extra in (0, 57):
        run = Run(make_inventory(tmp_path, azure_emulator, extra_networks=extra), tmp_path, tag=str(extra))
        (table,) = [t for t in run.desired.route_tables if t.site == "azure"]
        assert len(table.routes) == 3 + extra
        # The planned routes, written in one table PUT (plain SDK), so the read has them all.
        routes = [
            {
                "name": r.name,
                "properties": {
                    "addressPrefix": str(r.prefix),
                    "nextHopType": "VirtualAppliance",
                    "nextHopIpAddress": r.target,
                },
            }
            for r in table.routes
        ]
        _user_table(net, routes)
        azure_emulator.requests.reset()
        changes = run.changes()
        assert not [c for c in changes if c.layer == "cloud-route"]
        counts.append((run.backend.counter.reads, azure_emulator.requests.count(kind="read")))
        run.backend.close()
    assert counts[0] == counts[1] == (4, 4)


def test_names_that_do_not_resolve_name_the_inventory_field(
    tmp_path: Path, azure_emulator: AzureEmulator, cloud: dict[str, str]
) -> None:
    def wrong(raw: dict[str, Any]) -> None:
        raw["sites"][2]["gateway"]["nic"] = "no-such-nic"

    run = Run(make_inventory(tmp_path, azure_emulator, edit=wrong), tmp_path)
    result = run.backend.read(run.desired)
    assert set(result.unreachable) == {"azure"}
    assert "sites[azure].gateway.nic" in result.unreachable["azure"]
    azure_emulator.requests.reset()
    outcomes = run.backend.apply(diff(run.want, result.resources), run.desired, NoProgress())
    assert outcomes and not any(o.ok for o in outcomes)
    assert azure_emulator.requests.count(kind="mutating") == 0


def test_wrong_client_secret_is_a_remote_error_with_a_hint(
    tmp_path: Path, azure_emulator: AzureEmulator, cloud: dict[str, str]
) -> None:
    run = Run(make_inventory(tmp_path, azure_emulator), tmp_path)
    (tmp_path / "client-secret").write_text("not-the-secret")
    result = run.backend.read(run.desired)
    assert "authentication failed" in result.unreachable["azure"]
    assert "client_secret" in result.unreachable["azure"]


def test_a_table_changed_since_the_read_is_not_overwritten(
    tmp_path: Path, azure_emulator: AzureEmulator, net: NetworkManagementClient, cloud: dict[str, str]
) -> None:
    _user_table(net, [])
    run = Run(make_inventory(tmp_path, azure_emulator), tmp_path)
    changes = run.changes()
    # Someone adds a route between hybridctl's read and its write.
    add_user_route(net)
    outcomes = run.backend.apply(changes, run.desired, NoProgress())
    failed = [o for o in outcomes if not o.ok]
    assert {o.change.layer for o in failed if o.change} == {"cloud-route"}
    assert all("PreconditionFailed" in o.error and "changed since it was read" in o.error for o in failed)
    assert set(routes_of(net)) == {"10.99.0.0/16"}
    # The next run reads the new state and succeeds, keeping the user's route.
    run.up()
    assert set(routes_of(net)) == {"10.99.0.0/16", "192.168.1.0/24", "192.168.20.0/24", "192.168.21.0/24"}


def test_an_owned_rule_under_another_name_is_replaced(run: Run, net: NetworkManagementClient) -> None:
    nsg = net.network_security_groups.get(RG, "azure-bridge-nsg").as_dict()
    nsg["properties"]["securityRules"].append(_rule("hybridctl-old-name", 1500, "192.168.30.0/24"))
    net.network_security_groups.begin_create_or_update(RG, "azure-bridge-nsg", nm.NetworkSecurityGroup(nsg)).result()
    changes = by_key(run.changes())
    rename = changes[("azure", "azure-bridge-nsg", "inbound", "all", "*", "192.168.30.0/24")]
    assert (rename.action, rename.differing()) == (
        "update",
        {"name": ("hybridctl-from-Hybrid_Subnet", "hybridctl-old-name")},
    )
    run.apply([c for c in changes.values() if c.action != "conflict"])
    assert run.changes() == []
    rules = net.network_security_groups.get(RG, "azure-bridge-nsg").as_dict()["properties"]["securityRules"]
    assert sorted(r["name"] for r in rules) == [
        "allow-ssh",
        "hybridctl-from-Hybrid_Subnet",
        "hybridctl-from-Hybrid_Subnet_Dammy",
    ]


def test_a_refused_call_fails_its_change_only_with_a_role_hint(run: Run, azure_emulator: AzureEmulator) -> None:
    azure_emulator.faults.add(
        method="PUT", path_regex=r"/subnets/Hybrid_Subnet_Dammy$", status=403, count=1, code="AuthorizationFailed"
    )
    outcomes = run.backend.apply(run.changes(), run.desired, NoProgress())
    failed = [o for o in outcomes if not o.ok]
    assert len(failed) == 1 and failed[0].change is not None
    assert failed[0].change.key == ("azure", "Hybrid-RT", "Hybrid_Subnet_Dammy")
    assert "AuthorizationFailed" in failed[0].error and "Network Contributor" in failed[0].error
    assert [c.key for c in run.changes()] == [failed[0].change.key]


# --------------------------------------------------------------------------- fidelity to ARM


def _ecmp_route(name: str, prefix: str, hops: list[str]) -> dict[str, Any]:
    """An ECMP route as azure-mgmt-network 33.x (api-version 2026-03-01) writes it: RouteNextHopEcmp."""
    return {
        "name": name,
        "properties": {
            "addressPrefix": prefix,
            "nextHopType": "VirtualApplianceEcmp",
            "nextHop": {"nextHopIpAddresses": hops},
        },
    }


def test_a_foreign_ecmp_route_goes_back_exactly_as_read(
    tmp_path: Path, azure_emulator: AzureEmulator, net: NetworkManagementClient, cloud: dict[str, str]
) -> None:
    # Someone else's table already holds an ECMP route (and a plain one); hybridctl's three
    # routes then go out as one table PUT that must carry both back untouched.
    _user_table(
        net,
        [
            _ecmp_route("nva-pair", "10.50.0.0/16", ["192.168.30.10", "192.168.30.11"]),
            {"name": "user-route", "properties": {"addressPrefix": "10.99.0.0/16", "nextHopType": "None"}},
        ],
    )
    before = {r["name"]: r for r in net.route_tables.get(RG, "Hybrid-RT").as_dict()["properties"]["routes"]}
    assert before["nva-pair"]["properties"]["nextHop"] == {"nextHopIpAddresses": ["192.168.30.10", "192.168.30.11"]}

    run = Run(make_inventory(tmp_path, azure_emulator), tmp_path)
    assert [c for c in run.changes() if c.action == "conflict"] == []
    azure_emulator.requests.reset()
    run.up()
    table_puts = [e for e in azure_emulator.requests.entries(method="PUT") if e.path.endswith("/routeTables/Hybrid-RT")]
    assert len(table_puts) == 1  # the batch PUT, the one that re-sends every route of the table

    after = {r["name"]: r for r in net.route_tables.get(RG, "Hybrid-RT").as_dict()["properties"]["routes"]}
    for name in ("nva-pair", "user-route"):
        assert after[name]["properties"] == before[name]["properties"]
        assert {k: v for k, v in after[name].items() if k != "etag"} == {
            k: v for k, v in before[name].items() if k != "etag"
        }
    assert len(after) == 5
    assert run.changes() == []
    run.down()
    left = {r["name"]: r for r in net.route_tables.get(RG, "Hybrid-RT").as_dict()["properties"]["routes"]}
    assert set(left) == {"nva-pair", "user-route"}
    assert left["nva-pair"]["properties"] == before["nva-pair"]["properties"]


def test_long_network_names_become_valid_azure_rule_names(
    tmp_path: Path, azure_emulator: AzureEmulator, net: NetworkManagementClient, cloud: dict[str, str]
) -> None:
    # A 64-character network name ending in '-' (the inventory allows it) would make the rule
    # 'hybridctl-from-<name>', which ends in '-': Azure refuses that (InvalidResourceName).
    long_name = "n" * 63 + "-"

    def rename(raw: dict[str, Any]) -> None:
        network = raw["sites"][2]["networks"][1]
        network["id"] = cloud["Hybrid_Subnet_Dammy"]
        network["name"] = long_name

    run = Run(make_inventory(tmp_path, azure_emulator, edit=rename), tmp_path)
    (rule,) = [r for r in run.desired.security_rules if r.provider == "azure" and r.peer == "192.168.31.0/24"]
    assert rule.name != "hybridctl-from-" + long_name and rule.name.startswith("hybridctl-from-nnn")
    run.up()
    rules = net.network_security_groups.get(RG, "azure-bridge-nsg").as_dict()["properties"]["securityRules"]
    assert rule.name in {r["name"] for r in rules}
    assert run.changes() == []


def test_a_failed_operation_fails_its_changes_and_a_rerun_converges(
    run: Run, azure_emulator: AzureEmulator, net: NetworkManagementClient, tmp_path: Path
) -> None:
    run.up()
    # Drift in two routes (one table PUT repairs both) and in the NIC's flag.
    for name in ("hybridctl-192-168-1-0-24", "hybridctl-192-168-21-0-24"):
        net.routes.begin_delete(RG, "Hybrid-RT", name).result()
    nic = net.network_interfaces.get(RG, "azure-bridge-nic").as_dict()
    nic["properties"]["enableIPForwarding"] = False
    net.network_interfaces.begin_create_or_update(RG, "azure-bridge-nic", nm.NetworkInterface(nic)).result()
    # The table PUT is accepted, but its long-running operation ends Failed.
    azure_emulator.faults.add(
        method="PUT", path_regex=r"/routeTables/Hybrid-RT$", operation_status="Failed", code="InternalServerError"
    )
    outcomes = run.backend.apply(run.changes(), run.desired, NoProgress())
    failed = [o for o in outcomes if not o.ok]
    assert len(failed) == 2 and {o.change.layer for o in failed if o.change} == {"cloud-route"}
    assert all("InternalServerError" in o.error for o in failed)
    assert [o.change.layer for o in outcomes if o.ok and o.change] == ["flag"]  # the rest went through
    # ARM kept the table's goal state in provisioningState Failed: the next run writes it again.
    again = Run(make_inventory(tmp_path, azure_emulator), tmp_path, tag="2")
    drift = again.changes()
    assert len(drift) == 3 and all(c.layer == "cloud-route" and c.action == "update" for c in drift)
    assert all("(provisioning Failed)" in str(c.differing()["target"][1]) for c in drift)
    again.up()
    assert again.changes() == []
    assert {r["properties"]["provisioningState"] for r in routes_of(net).values()} == {"Succeeded"}
    assert len(routes_of(net)) == 3
    again.backend.close()


def test_another_operation_in_progress_is_retried_then_reported(
    run: Run, azure_emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    # Without Retry-After (as ARM sends it): azure-core gives the 409 up at once, hybridctl retries.
    azure_emulator.faults.add(method="PUT", path_regex=r"/routeTables/Hybrid-RT$", status=409, count=2)
    run.up()
    assert azure_emulator.requests.summary(method="PUT", path_regex=r"/routeTables/Hybrid-RT$")["by_status"] == {
        "409": 2,
        "201": 1,
    }
    assert len(routes_of(net)) == 3

    # Past the bound (1 + 4 attempts), the change fails with the ARM code and a hint.
    net.routes.begin_delete(RG, "Hybrid-RT", "hybridctl-192-168-21-0-24").result()
    azure_emulator.faults.add(method="PUT", path_regex=r"/routes/", status=409, count=10)
    outcomes = run.backend.apply(run.changes(), run.desired, NoProgress())
    (failed,) = [o for o in outcomes if not o.ok]
    assert "AnotherOperationInProgress" in failed.error and "after 5 attempts" in failed.error
    assert "another operation holds the resource" in failed.error
    assert azure_emulator.requests.count(method="PUT", path_regex=r"/routes/") == 5


def test_plain_reads_give_what_the_sdk_lists_page_by_page(
    run: Run, azure_emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    """The read goes through a plain ARM pipeline (no network SDK import); it must hand the parser
    exactly what the SDK's pagers give, ``as_dict()`` of every item, across pages."""
    _user_table(net, [{"name": "user-route", "properties": {"addressPrefix": "10.99.0.0/16", "nextHopType": "None"}}])
    azure_emulator.configure(page_size=1)  # every list below comes one item per page, with a nextLink
    try:
        azure_emulator.requests.reset()
        read = run.backend.read_group(RG)
        # One request per page: at least two NICs and two pages of each longer list.
        assert run.backend.counter.reads == azure_emulator.requests.count(kind="read") > 4
        sdk = {
            "virtual_networks": net.virtual_networks.list(RG),
            "route_tables": net.route_tables.list(RG),
            "network_interfaces": net.network_interfaces.list(RG),
            "network_security_groups": net.network_security_groups.list(RG),
        }
        for field_name, pager in sdk.items():
            expected = [item.as_dict() for item in pager]
            assert expected, field_name
            assert getattr(read, field_name) == expected, field_name
        assert len(read.network_interfaces) == 2
    finally:
        azure_emulator.configure(page_size=50)


def test_the_plain_reads_use_the_network_sdk_api_version(azure_emulator: AzureEmulator) -> None:
    """NETWORK_API_VERSION must follow the installed azure-mgmt-network (constraints.txt) when it
    is upgraded: the plain reads and the SDK's writes speak the same API version."""
    from azure.mgmt.network.operations import _operations as sdk_operations

    from hybridctl.backends.clouds import NETWORK_API_VERSION

    for build in (
        sdk_operations.build_virtual_networks_list_request,
        sdk_operations.build_route_tables_list_request,
        sdk_operations.build_network_interfaces_list_request,
        sdk_operations.build_network_security_groups_list_request,
    ):
        request = build(RG, azure_emulator.subscription_id)
        assert f"api-version={NETWORK_API_VERSION}" in request.url, build.__name__
