"""The cloud fabric, shown with real ``ping`` between lab hosts.

In the overlay tests a plain Linux router stands in for the SoftEther part (fixture
``standin``): a veth ``hl-ovl`` between the two bridge hosts (192.168.10.2 AWS,
192.168.10.3 Azure, the reference's tap addresses), with ip_forward=1 and kernel routes
to the other cloud. Whether a packet crosses then depends
only on the fabric: route tables, their association, and source/dest check / IP forwarding.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from hybridctl_lab import dataplane, fabric
from hybridctl_lab.fabric import FabricSpec, Route
from tests.integration.test_lab_dataplane import (
    TEST_LAB_DIR,
    lab_leftovers,
    pings,
    require_dataplane_prereqs,
    root_snapshot,
)

pytestmark = [pytest.mark.lab, pytest.mark.integration]

A = IPv4Address
N = IPv4Network
AWS_BR, AZ_BR = A("192.168.20.100"), A("192.168.30.100")

# Every private address, by site; the VPN server's public address stands for "home" too.
SITES: dict[str, dict[str, str]] = {
    "home": {"hl-home-c1": "192.168.1.10", "hl-home-c100": "192.168.1.100"},
    "aws": {"hl-aws-br": "192.168.20.100", "hl-aws-h20": "192.168.20.10", "hl-aws-h21": "192.168.21.10"},
    "azure": {"hl-az-br": "192.168.30.100", "hl-az-h30": "192.168.30.10", "hl-az-h31": "192.168.31.10"},
}
TEST_HOSTS = ("hl-aws-h20", "hl-aws-h21", "hl-az-h30", "hl-az-h31")


def ip_of(host: str) -> str:
    for hosts in SITES.values():
        if host in hosts:
            return hosts[host]
    raise KeyError(host)


@pytest.fixture(scope="module")
def lab() -> Iterator[dataplane.UpResult]:
    require_dataplane_prereqs()
    with dataplane.lab_lock():
        before = root_snapshot()
        up = dataplane.up(extra_clients=1, lab_dir=TEST_LAB_DIR)
        try:
            yield up
        finally:
            dataplane.down(lab_dir=TEST_LAB_DIR)
        assert lab_leftovers(TEST_LAB_DIR) == []
        assert root_snapshot() == before


STANDIN = (
    ("hl-aws-br", "192.168.10.2", "192.168.10.3", ("192.168.30.0/24", "192.168.31.0/24")),
    ("hl-az-br", "192.168.10.3", "192.168.10.2", ("192.168.20.0/24", "192.168.21.0/24")),
)


def standin_up(lab_dir: Path) -> None:
    """The stand-in overlay, created inside the two bridge namespaces (never in the root one)."""
    subprocess.run(
        ["ip", "link", "add", "hl-ovl", "netns", "hl-aws-br", "type", "veth", "peer", "name", "hl-ovl",
         "netns", "hl-az-br"],
        check=True,
    )  # fmt: skip
    for host, mine, peer, remote in STANDIN:
        routes = " && ".join(f"ip route add {net} via {peer}" for net in remote)
        dataplane.exec_in(
            host,
            f"ip addr add {mine}/24 dev hl-ovl && ip link set hl-ovl up && "
            f"sysctl -qw net.ipv4.ip_forward=1 && {routes}",
            lab_dir=lab_dir,
        )


@pytest.fixture
def standin(lab: dataplane.UpResult) -> Iterator[None]:
    """The stand-in overlay, for one test."""
    try:
        standin_up(TEST_LAB_DIR)
        yield
    finally:
        dataplane.exec_in("hl-aws-br", "ip link del hl-ovl", lab_dir=TEST_LAB_DIR, check=False)
        for host, *_ in STANDIN:
            dataplane.exec_in(host, "sysctl -qw net.ipv4.ip_forward=0", lab_dir=TEST_LAB_DIR)


def overlay_spec(bare: FabricSpec) -> FabricSpec:
    """Reference section 1 route tables (AWS complete, as the planner derives it), forwarding allowed."""
    aws = dataclasses.replace(
        bare.cloud("aws"),
        route_tables={
            "Hybrid-RT": [Route(N(n), AWS_BR) for n in ("192.168.1.0/24", "192.168.30.0/24", "192.168.31.0/24")],
            "main": [],
        },
        associations={N("192.168.20.0/24"): "Hybrid-RT", N("192.168.21.0/24"): "Hybrid-RT"},
        default_table="main",
    ).with_forwarding({AWS_BR: True})
    azure = dataclasses.replace(
        bare.cloud("azure"),
        route_tables={
            "Hybrid_RT": [Route(N(n), AZ_BR) for n in ("192.168.1.0/24", "192.168.20.0/24", "192.168.21.0/24")]
        },
        associations={N("192.168.30.0/24"): "Hybrid_RT", N("192.168.31.0/24"): "Hybrid_RT"},
    ).with_forwarding({AZ_BR: True})
    return FabricSpec((aws, azure))


def cross_cloud_pairs() -> list[tuple[str, str]]:
    aws = ("hl-aws-h20", "hl-aws-h21")
    az = ("hl-az-h30", "hl-az-h31")
    return [(a, ip_of(b)) for a in aws for b in az] + [(b, ip_of(a)) for a in aws for b in az]


def reachable(pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    return {pair for pair, ok in pings(pairs, TEST_LAB_DIR).items() if ok}


# --------------------------------------------------------------------------- bare lab


def test_bare_lab_no_ping_crosses_sites(lab: dataplane.UpResult) -> None:
    fabric.apply(lab.spec)
    sources = [h for hosts in SITES.values() for h in hosts] + ["hl-home-srv"]
    pairs = [
        (src, addr)
        for src in sources
        for site, hosts in SITES.items()
        if src not in hosts and not (site == "home" and src == "hl-home-srv")
        for addr in hosts.values()
    ]
    assert len(pairs) > 40
    assert reachable(pairs) == set()


def test_bare_lab_local_traffic_and_public_path(lab: dataplane.UpResult) -> None:
    fabric.apply(lab.spec)
    must = [
        ("hl-aws-h20", "192.168.20.100"),  # same subnet, through the fabric's proxy ARP
        ("hl-aws-h20", "192.168.21.10"),  # other subnet of the VPC: local route
        ("hl-az-h31", "192.168.30.100"),
        ("hl-aws-h20", "192.168.20.1"),  # the subnet router
        ("hl-home-c1", "192.168.1.100"),  # home LAN
        ("hl-aws-br", "203.0.113.10"),  # bridge -> VPN server over the internet (1:1 NAT)
        ("hl-az-br", "203.0.113.10"),
        ("hl-aws-br", "203.0.113.30"),  # bridge to bridge, public addresses both ways
        ("hl-home-srv", "203.0.113.20"),  # inbound to a public IP
    ]
    must_not = [
        ("hl-aws-h20", "203.0.113.10"),  # no public IP: no internet path
        ("hl-az-h30", "203.0.113.10"),
        ("hl-home-srv", "192.168.20.100"),  # private addresses are not on the internet
        ("hl-home-c1", "203.0.113.10"),  # bare LAN client: no default route
    ]
    assert reachable(must + must_not) == set(must)


def test_inbound_internet_traffic_must_be_nated(lab: dataplane.UpResult) -> None:
    """A host on the internet segment routing a VPC prefix at the fabric gets nowhere (IGW behaviour)."""
    fabric.apply(lab.spec)
    dataplane.exec_in("hl-home-srv", "ip route replace 192.168.20.0/24 via 203.0.113.20", lab_dir=TEST_LAB_DIR)
    try:
        assert reachable([("hl-home-srv", "192.168.20.100"), ("hl-home-srv", "203.0.113.20")]) == {
            ("hl-home-srv", "203.0.113.20")
        }
    finally:
        dataplane.exec_in("hl-home-srv", "ip route del 192.168.20.0/24", lab_dir=TEST_LAB_DIR)


# --------------------------------------------------------------------------- overlay routes


def test_overlay_routes_with_forwarding_allowed(lab: dataplane.UpResult, standin: None) -> None:
    fabric.apply(overlay_spec(lab.spec))
    pairs = cross_cloud_pairs()
    assert reachable(pairs) == set(pairs)


def test_source_dest_check_on_breaks_the_path(lab: dataplane.UpResult, standin: None) -> None:
    spec = overlay_spec(lab.spec)
    fabric.apply(spec.with_cloud(spec.cloud("aws").with_forwarding({AWS_BR: False})))
    assert reachable(cross_cloud_pairs()) == set()
    fabric.apply(spec)
    assert reachable([("hl-aws-h20", "192.168.30.10")]) == {("hl-aws-h20", "192.168.30.10")}


def test_azure_ip_forwarding_off_breaks_the_path(lab: dataplane.UpResult, standin: None) -> None:
    spec = overlay_spec(lab.spec)
    fabric.apply(spec.with_cloud(spec.cloud("azure").with_forwarding({AZ_BR: False})))
    assert reachable(cross_cloud_pairs()) == set()


def test_removing_one_route_breaks_exactly_that_path(lab: dataplane.UpResult, standin: None) -> None:
    """The reference's own slip: 192.168.31.0/24 missing from the AWS route table."""
    spec = overlay_spec(lab.spec)
    aws = spec.cloud("aws")
    tables = dict(aws.route_tables)
    tables["Hybrid-RT"] = [r for r in tables["Hybrid-RT"] if r.prefix != N("192.168.31.0/24")]
    fabric.apply(spec.with_cloud(dataclasses.replace(aws, route_tables=tables)))
    pairs = cross_cloud_pairs()
    broken = {(src, dst) for src, dst in pairs if dst == "192.168.31.10" or src == "hl-az-h31"}
    assert len(broken) == 4
    assert reachable(pairs) == set(pairs) - broken


def test_subnet_without_the_route_table_is_cut_off(lab: dataplane.UpResult, standin: None) -> None:
    spec = overlay_spec(lab.spec)
    aws = spec.cloud("aws")
    # 192.168.21.0/24 falls back to the (empty) main route table.
    fabric.apply(spec.with_cloud(dataclasses.replace(aws, associations={N("192.168.20.0/24"): "Hybrid-RT"})))
    pairs = cross_cloud_pairs()
    broken = {(s, d) for s, d in pairs if s == "hl-aws-h21" or d == "192.168.21.10"}
    assert reachable(pairs) == set(pairs) - broken


def test_blackhole_and_unresolved_next_hop(lab: dataplane.UpResult, standin: None) -> None:
    spec = overlay_spec(lab.spec)
    aws = spec.cloud("aws")
    tables = dict(aws.route_tables)
    tables["Hybrid-RT"] = [
        Route(N("192.168.30.0/24"), None),  # blackhole
        Route(N("192.168.31.0/24"), A("192.168.20.250")),  # ENI that does not exist
    ]
    reports = fabric.apply(spec.with_cloud(dataclasses.replace(aws, route_tables=tables)))
    assert next(r for r in reports if r.cloud == "aws").unresolved == (tables["Hybrid-RT"][1],)
    assert reachable(cross_cloud_pairs()) == set()
    out = dataplane.exec_in("hl-aws-fab", "ip route show table 100 type blackhole", lab_dir=TEST_LAB_DIR).stdout
    assert "192.168.30.0/24" in out and "192.168.31.0/24" in out


def test_apply_is_idempotent_and_leaves_foreign_state_alone(lab: dataplane.UpResult) -> None:
    spec = overlay_spec(lab.spec)
    fabric.apply(spec)
    # Somebody else's route and rule in the fabric: apply must not touch them.
    dataplane.exec_in(
        "hl-aws-fab",
        "ip route add 10.99.0.0/16 via 192.168.20.10 dev hl-h20 onlink table 100 && ip rule add prio 500 "
        "to 10.98.0.0/16 lookup main",
        lab_dir=TEST_LAB_DIR,
    )
    try:
        again = fabric.apply(spec)
        assert all(r.changes.empty for r in again), again
        fabric.apply(lab.spec)
        fabric.apply(spec)
        state = dataplane.exec_in("hl-aws-fab", "ip route show table 100; ip rule", lab_dir=TEST_LAB_DIR).stdout
        assert "10.99.0.0/16" in state and "10.98.0.0/16" in state
    finally:
        dataplane.exec_in(
            "hl-aws-fab",
            "ip route del 10.99.0.0/16 table 100; ip rule del prio 500",
            lab_dir=TEST_LAB_DIR,
            check=False,
        )


def test_apply_rebuilds_a_missing_nft_table(lab: dataplane.UpResult, standin: None) -> None:
    spec = overlay_spec(lab.spec)
    fabric.apply(spec)
    dataplane.exec_in("hl-aws-fab", f"nft delete table inet {fabric.NFT_TABLE}", lab_dir=TEST_LAB_DIR)
    report = next(r for r in fabric.apply(spec) if r.cloud == "aws")
    assert report.changes.nft_script.startswith(f"table inet {fabric.NFT_TABLE}")
    assert reachable([("hl-aws-h20", "192.168.30.10")]) == {("hl-aws-h20", "192.168.30.10")}
    # And the checks are back: forwarding off breaks the path again.
    fabric.apply(spec.with_cloud(spec.cloud("aws").with_forwarding({AWS_BR: False})))
    assert reachable([("hl-aws-h20", "192.168.30.10")]) == set()


def test_spoofed_source_from_a_strict_nic_is_dropped(lab: dataplane.UpResult) -> None:
    """The source check itself: a test host sending from an address that is not its own."""
    fabric.apply(lab.spec)
    dataplane.exec_in("hl-aws-h20", "ip addr add 192.168.20.77/32 dev eth0", lab_dir=TEST_LAB_DIR)
    try:
        spoofed = dataplane.exec_in(
            "hl-aws-h20", "ping -n -c1 -W1 -I 192.168.20.77 192.168.20.100", lab_dir=TEST_LAB_DIR, check=False
        )
        honest = dataplane.exec_in("hl-aws-h20", "ping -n -c1 -W1 192.168.20.100", lab_dir=TEST_LAB_DIR, check=False)
        assert (spoofed.returncode, honest.returncode) == (1, 0)
        counters = dataplane.exec_in("hl-aws-fab", "nft list chain inet hl_fabric_v1 source_check",
                                     lab_dir=TEST_LAB_DIR).stdout  # fmt: skip
        assert "packets 0 " not in counters
    finally:
        dataplane.exec_in("hl-aws-h20", "ip addr del 192.168.20.77/32 dev eth0", lab_dir=TEST_LAB_DIR)


def test_rendered_ruleset_passes_nft_check(lab: dataplane.UpResult) -> None:
    nft = fabric.desired_state(overlay_spec(lab.spec).cloud("aws")).state.nft
    assert nft is not None
    text = fabric.render_ruleset(nft).replace(fabric.NFT_TABLE, "hl_fabric_check")
    proc = dataplane.exec_in("hl-aws-fab", ["nft", "-c", "-f", "-"], input=text, lab_dir=TEST_LAB_DIR, check=False)
    assert proc.returncode == 0, proc.stderr
