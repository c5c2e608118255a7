"""Extra cloud sites of the lab (``build_topology(extra_sites=N)``): addresses, names, fabrics, inventory (pure)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl_lab import fabric, inventory, seed
from hybridctl_lab.aws_emulator.backends import EniView, FabricView, RouteTableView, RouteView, SubnetView, VpcView
from hybridctl_lab.reconciler import build_spec
from hybridctl_lab.topology import IFNAMSIZ, INTERNET_NS, MAX_EXTRA_SITES, build_topology, fabric_wan_peer

A, N = IPv4Address, IPv4Network
# Every address the reference network (reference.md sections 1 and 4) uses.
REFERENCE_NETS = [N(n) for n in ("192.168.0.0/16", "10.0.0.0/16", "20.0.0.100/32")]


def test_no_extra_sites_is_the_reference_lab() -> None:
    assert build_topology() == build_topology(0, 0)
    assert [s.name for s in build_topology().cloud_sites] == ["aws", "azure", "vip"]


def test_two_extra_sites_layout() -> None:
    topo = build_topology(0, 2)
    assert topo.extra_sites == 2
    assert [s.name for s in topo.cloud_sites] == ["aws", "azure", "s1", "s2", "vip"]
    s2 = topo.site("s2")
    assert (s2.kind, s2.fabric_ns, s2.public_ip) == ("aws", "hl-s2-fab", A("203.0.113.102"))
    assert [(s.name, s.cidr) for s in s2.subnets] == [
        ("S2-Subnet", N("172.16.20.0/24")),
        ("S2-Subnet-Dammy", N("172.16.21.0/24")),
    ]
    assert s2.networks == (N("172.16.20.0/24"), N("172.16.21.0/24"))
    hosts = {h.name: h for h in topo.hosts_of("s2")}
    assert sorted(hosts) == ["hl-s2-br", "hl-s2-h20", "hl-s2-h21"]
    br = hosts["hl-s2-br"]
    assert (br.role, br.managed, br.public_ip, br.gateway) == ("bridge", True, A("203.0.113.102"), A("172.16.20.1"))
    assert br.nics[0].address == IPv4Interface("172.16.20.100/24")
    assert (br.nics[0].peer_ns, br.nics[0].peer_link) == ("hl-s2-fab", "hl-br")
    assert hosts["hl-s2-h21"].role == "test-host" and hosts["hl-s2-h21"].primary_ip == A("172.16.21.10")
    # No bastion: only the reference Azure site has one.
    assert topo.bastion_for(br) is None
    # Each extra fabric has its WAN leg on the lab internet.
    inet = next(s for s in topo.switches if s.name == INTERNET_NS)
    assert {fabric_wan_peer(topo.site("s1")), fabric_wan_peer(s2)} <= set(inet.ports)
    # Test hosts join `lab pings` and the inventory's test hosts.
    assert {"hl-s1-h10", "hl-s1-h11", "hl-s2-h20", "hl-s2-h21"} <= {h.name for h in topo.test_hosts}


@pytest.mark.parametrize("n", [1, 6, MAX_EXTRA_SITES])
def test_extra_sites_never_collide(n: int) -> None:
    topo = build_topology(200, n)
    extra = [s for s in topo.cloud_sites if s.name.startswith("s")]
    assert len(extra) == n
    for site in extra:
        for net in site.networks:
            assert N("172.16.0.0/16").supernet_of(net)
            assert not any(net.overlaps(ref) for ref in REFERENCE_NETS), net
    nets = [net for s in topo.sites for net in s.networks]
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    ips = [h.primary_ip for h in topo.hosts]
    public = [h.public_ip for h in topo.hosts if h.public_ip]
    assert len(ips) == len(set(ips)) and len(public) == len(set(public))
    assert all(A("203.0.113.1") < ip < A("203.0.113.255") for h in topo.hosts if (ip := h.public_ip))
    assert len(set(topo.namespaces)) == len(topo.namespaces)
    links = [n.peer_link for h in topo.hosts for n in h.nics] + list(next(s for s in topo.switches).ports)
    assert max(len(link) for link in links) <= IFNAMSIZ


@pytest.mark.parametrize("n", [-1, MAX_EXTRA_SITES + 1])
def test_extra_sites_bounds(n: int) -> None:
    with pytest.raises(ValueError, match="extra_sites"):
        build_topology(0, n)


def test_bare_fabric_spec_has_one_cloud_per_extra_site() -> None:
    spec = fabric.bare_spec(build_topology(0, 2))
    s1 = next(c for c in spec.clouds if c.name == "s1")
    assert s1.namespace == "hl-s1-fab"
    assert s1.subnets == (N("172.16.10.0/24"), N("172.16.11.0/24"))
    assert {(h.link, h.nic_ip, h.public_ip) for h in s1.hosts} == {
        ("hl-br", A("172.16.10.100"), A("203.0.113.101")),
        ("hl-h10", A("172.16.10.10"), None),
        ("hl-h11", A("172.16.11.10"), None),
    }


def test_site_names_follow_the_reference_pattern() -> None:
    assert seed.aws_site_names("aws").vpc == seed.VPC_NAME
    names = seed.aws_site_names("s3")
    assert (names.vpc, names.route_table, names.bridge_eni, names.bridge_instance) == (
        "S3-VPC",
        "S3-RT",
        "s3-bridge-eni",
        "s3-bridge",
    )
    assert seed.aws_vpc_name("vip") == seed.VIP_VPC_NAME
    assert seed.aws_vpc_name("s3") == "S3-VPC"
    assert seed.extra_site_names(build_topology(0, 3)) == ("s1", "s2", "s3")


def test_reconciler_maps_each_extra_vpc_onto_its_fabric() -> None:
    """S1-VPC's table routes to its bridge's ENI (source/dest check off) in hl-s1-fab only."""
    topo = build_topology(0, 2)
    vpc = VpcView("vpc-s1", ("172.16.10.0/24", "172.16.11.0/24"), {"Name": "S1-VPC"})
    subnets = [
        SubnetView("subnet-a", "vpc-s1", "172.16.10.0/24", "ap-northeast-1a", {"Name": "S1-Subnet"}),
        SubnetView("subnet-b", "vpc-s1", "172.16.11.0/24", "ap-northeast-1c", {"Name": "S1-Subnet-Dammy"}),
    ]
    eni = EniView("eni-s1br", "subnet-a", "vpc-s1", ("172.16.10.100",), False, "i-s1br", "interface", {})
    route = RouteView("192.168.1.0/24", "network-interface", "eni-s1br", "active", "eni-s1br", "172.16.10.100")
    tables = [
        RouteTableView("rtb-s1main", "vpc-s1", True, (), (), {}),
        RouteTableView("rtb-s1", "vpc-s1", False, ("subnet-a", "subnet-b"), (route,), {"Name": "S1-RT"}),
    ]
    view = FabricView(
        "ap-northeast-1",
        {vpc.vpc_id: vpc},
        {s.subnet_id: s for s in subnets},
        {t.route_table_id: t for t in tables},
        {eni.eni_id: eni},
    )
    build = build_spec(topo, view, None)
    clouds = {c.name: c for c in build.spec.clouds}
    s1 = clouds["s1"]
    assert s1.associations == {N("172.16.10.0/24"): "rtb-s1", N("172.16.11.0/24"): "rtb-s1"}
    assert s1.route_tables["rtb-s1"] == [fabric.Route(N("192.168.1.0/24"), A("172.16.10.100"))]
    assert {h.nic_ip: h.may_forward for h in s1.hosts}[A("172.16.10.100")] is True
    # s2 has no VPC in this view: it stays bare, with a note; the reference AWS site is untouched.
    assert clouds["s2"].route_tables == {} and any("s2" in note and "S2-VPC" in note for note in build.notes)
    assert clouds["aws"].route_tables == {}


def test_inventory_of_extra_sites_validates_and_plans(tmp_path: Path) -> None:
    (tmp_path / "azure").mkdir()
    (tmp_path / seed.AZURE_CLIENT_SECRET).write_text("lab-secret\n")
    path = inventory.write(tmp_path / "lab.yaml", build_topology(1, 2), tmp_path)
    loaded = load_inventory(path)
    inv = loaded.inventory
    assert [s.name for s in inv.sites] == ["home", "aws", "azure", "s1", "s2"]
    s2 = inv.site("s2")
    assert (s2.kind, s2.vpc, s2.workload_security_group) == ("aws", "S2-VPC", "s2-workloads")
    gw = s2.gateway
    assert (gw.name, gw.role, gw.eni, gw.security_group) == ("s2-bridge", "vpn-bridge", "s2-bridge-eni", "s2-bridge-sg")
    assert (str(gw.private_ip), gw.public_address, str(gw.transit_address)) == (
        "172.16.20.100",
        "203.0.113.102",
        "192.168.10.12",
    )
    assert gw.ssh.host == "hl-s2-br" and gw.ssh.user == "admin"
    assert [(n.name, str(n.cidr), n.route_table) for n in s2.networks] == [
        ("S2-Subnet", "172.16.20.0/24", "S2-RT"),
        ("S2-Subnet-Dammy", "172.16.21.0/24", "S2-RT"),
    ]
    assert [t.name for t in s2.test_hosts] == ["s2-h20", "s2-h21"]
    desired = plan_loaded(loaded)
    # Every bridge cascades to the one server on its own transit address; S2-RT sends the other
    # sites' networks to s2's bridge ENI, and the reference AWS bridge routes to s2 over the transit.
    assert {k: str(v) for k, v in desired.transit_addresses.items()} == {
        "aws": "192.168.10.2",
        "azure": "192.168.10.3",
        "s1": "192.168.10.11",
        "s2": "192.168.10.12",
    }
    s2_table = next(t for t in desired.route_tables if t.site == "s2")
    assert s2_table.name == "S2-RT" and s2_table.subnets == ("S2-Subnet", "S2-Subnet-Dammy")
    assert {(str(r.prefix), r.target) for r in s2_table.routes} >= {
        ("192.168.1.0/24", "s2-bridge-eni"),
        ("172.16.10.0/24", "s2-bridge-eni"),
        ("192.168.30.0/24", "s2-bridge-eni"),
    }
    aws_bridge = next(h for h in desired.hosts if h.site == "aws" and h.role == "vpn-bridge")
    assert {(str(r.prefix), str(r.via)) for r in aws_bridge.routes} >= {
        ("172.16.20.0/24", "192.168.10.1"),
        ("172.16.21.0/24", "192.168.10.1"),
    }
    # The inventory names resolve to the lab hosts (lab exec s2-bridge).
    names = inventory.host_names(build_topology(0, 2))
    assert names["s2-bridge"] == "hl-s2-br" and names["s1-h11"] == "hl-s1-h11"
