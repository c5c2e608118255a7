"""The reference overlay (reference.md section 1) planned from CIDRs: exactly its routes,
plus the two the source forgot (L3 switch and Azure bridge -> 192.168.21.0/24)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.desired import DesiredState
from hybridctl.core.planner.plan import plan
from tests.conftest import REPO


@pytest.fixture(scope="module")
def desired() -> DesiredState:
    return plan(load_inventory(REPO / "inventory" / "reference.yaml").inventory)


def nets(*cidrs: str) -> set[IPv4Network]:
    return {IPv4Network(c) for c in cidrs}


def test_aws_route_table(desired: DesiredState) -> None:
    (table,) = [t for t in desired.route_tables if t.site == "aws"]
    assert {r.prefix for r in table.routes} == nets("192.168.1.0/24", "192.168.30.0/24", "192.168.31.0/24")
    assert {r.target_label for r in table.routes} == {"eni:aws-bridge-eni"}
    assert set(table.subnets) == {"Hybrid-Subnet", "Hybrid-Subnet-Dammy"}


def test_azure_route_table_on_both_subnets(desired: DesiredState) -> None:
    (table,) = [t for t in desired.route_tables if t.site == "azure"]
    assert {r.prefix for r in table.routes} == nets("192.168.1.0/24", "192.168.20.0/24", "192.168.21.0/24")
    assert {r.target_label for r in table.routes} == {"virtual-appliance:192.168.30.100"}
    assert set(table.subnets) == {"Hybrid_Subnet", "Hybrid_Subnet_Dammy"}


def test_l3_switch_includes_forgotten_21(desired: DesiredState) -> None:
    server = desired.host("vpnserver").softether
    assert server is not None
    (switch,) = server.l3_switches
    assert {(str(i.address), i.hub) for i in switch.interfaces} == {
        ("192.168.1.249/24", "DEFAULT"),
        ("192.168.10.1/24", "HYBRID"),
    }
    assert {(str(r.network), str(r.gateway)) for r in switch.routes} == {
        ("192.168.20.0/24", "192.168.10.2"),
        ("192.168.21.0/24", "192.168.10.2"),  # forgotten by the source
        ("192.168.30.0/24", "192.168.10.3"),
        ("192.168.31.0/24", "192.168.10.3"),
    }


def test_server_hubs_listeners_bridge(desired: DesiredState) -> None:
    server = desired.host("vpnserver").softether
    assert server is not None
    assert server.listeners == (5555,)
    assert [h.name for h in server.hubs] == ["DEFAULT", "HYBRID"]
    assert all(not h.secure_nat for h in server.hubs)
    assert [(b.hub, b.device, b.tap) for b in server.local_bridges] == [("DEFAULT", "eth1", False)]
    hybrid = server.hubs[1]
    assert {u.name for u in hybrid.users} == {"bridge-aws", "bridge-azure"}
    assert server.admin_password_secret == "admin/vpnserver"


@pytest.mark.parametrize(
    ("host", "address", "routes"),
    [
        ("aws-bridge", "192.168.10.2/24", {"192.168.1.0/24", "192.168.30.0/24", "192.168.31.0/24"}),
        # The source gives Azure only 192.168.1.0/24 and 192.168.20.0/24; 192.168.21.0/24 was forgotten.
        ("azure-bridge", "192.168.10.3/24", {"192.168.1.0/24", "192.168.20.0/24", "192.168.21.0/24"}),
    ],
)
def test_bridge_host(desired: DesiredState, host: str, address: str, routes: set[str]) -> None:
    plan_ = desired.host(host)
    assert plan_.ip_forward is True
    assert [(a.device, str(a.address)) for a in plan_.addresses] == [("tap_vpntap", address)]
    assert {str(r.prefix) for r in plan_.routes} == routes
    assert {(str(r.via), r.dev) for r in plan_.routes} == {("192.168.10.1", "tap_vpntap")}
    assert plan_.softether is not None
    (cascade,) = plan_.softether.cascades
    assert (cascade.name, cascade.hub, cascade.remote_hub) == ("HYBRID", "BRIDGE", "HYBRID")
    assert (cascade.server_host, cascade.server_port) == ("vpn.home.example", 5555)
    assert [(b.hub, b.device, b.tap) for b in plan_.softether.local_bridges] == [("BRIDGE", "vpntap", True)]


def test_home_lan_client_routes(desired: DesiredState) -> None:
    (client,) = desired.clients
    assert client.via == IPv4Address("192.168.1.249")
    assert set(client.prefixes) == nets(
        "192.168.10.0/24", "192.168.20.0/24", "192.168.21.0/24", "192.168.30.0/24", "192.168.31.0/24"
    )
    # RFC 3442 encoding of the first route: /24, 192.168.10, router 192.168.1.249.
    assert client.dhcp_option_121.startswith("18:c0:a8:0a:c0:a8:01:f9")


def test_forwarding_flags(desired: DesiredState) -> None:
    assert {(f.target, f.name, f.value) for f in desired.flags} == {
        ("aws-bridge-eni", "source_dest_check", False),
        ("azure-bridge-nic", "ip_forwarding", True),
    }


def test_security_rules_are_minimal_and_explained(desired: DesiredState) -> None:
    rules = desired.security_rules
    assert all(rule.why for rule in rules)
    cloud = {(r.group, r.protocol, r.peer) for r in rules if r.provider != "manual"}
    assert cloud == {
        ("aws-bridge-sg", "all", "192.168.20.0/24"),
        ("aws-bridge-sg", "all", "192.168.21.0/24"),
        ("azure-bridge-nsg", "all", "192.168.30.0/24"),
        ("azure-bridge-nsg", "all", "192.168.31.0/24"),
    }
    manual = {(r.protocol, r.port, r.peer) for r in rules if r.provider == "manual"}
    assert manual == {("tcp", 5555, "198.51.100.20"), ("tcp", 5555, "198.51.100.30")}


def test_plan_never_contains_secret_values(desired: DesiredState) -> None:
    for resource in desired.resources():
        for name, value in resource.attrs:
            if name == "secret":
                assert value.startswith(("admin/", "hub-user/"))
