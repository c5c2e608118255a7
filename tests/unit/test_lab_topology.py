"""The lab topology is the reference network of reference.md section 1, derived in one place."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from hybridctl_lab.topology import IFNAMSIZ, MAX_EXTRA_CLIENTS, build_topology

A = IPv4Address


def test_reference_addresses() -> None:
    topo = build_topology()
    addr = {h.name: h.primary_ip for h in topo.hosts}
    assert addr == {
        "hl-home-srv": A("203.0.113.10"),
        "hl-home-c1": A("192.168.1.10"),
        "hl-aws-br": A("192.168.20.100"),
        "hl-aws-h20": A("192.168.20.10"),
        "hl-aws-h21": A("192.168.21.10"),
        "hl-az-br": A("192.168.30.100"),
        "hl-az-bastion": A("192.168.30.4"),
        "hl-az-h30": A("192.168.30.10"),
        "hl-az-h31": A("192.168.31.10"),
        "hl-vip-c": A("10.0.10.10"),
        "hl-vip-n1": A("10.0.110.10"),
        "hl-vip-n2": A("10.0.120.10"),
    }
    assert topo.host("hl-aws-br").public_ip == A("203.0.113.20")
    assert topo.host("hl-az-br").public_ip == A("203.0.113.30")
    assert [h.name for h in topo.hosts if h.public_ip] == ["hl-home-srv", "hl-aws-br", "hl-az-br"]


def test_cloud_sites_and_subnets() -> None:
    topo = build_topology()
    aws, azure = topo.site("aws"), topo.site("azure")
    assert aws.fabric_ns == "hl-aws-fab" and azure.fabric_ns == "hl-az-fab"
    assert [(s.name, str(s.cidr), str(s.gateway)) for s in aws.subnets] == [
        ("Hybrid-Subnet", "192.168.20.0/24", "192.168.20.1"),
        ("Hybrid-Subnet-Dammy", "192.168.21.0/24", "192.168.21.1"),
    ]
    assert [s.name for s in azure.subnets] == ["Hybrid_Subnet", "Hybrid_Subnet_Dammy"]
    assert azure.networks == (IPv4Network("192.168.30.0/24"), IPv4Network("192.168.31.0/24"))
    for host, nic in topo.fabric_links("aws"):
        assert nic.address is not None and host.gateway == nic.address.network.network_address + 1
        assert nic.address.network.prefixlen == 24


def test_vpn_server_has_public_eth0_and_bare_promiscuous_eth1() -> None:
    srv = build_topology().host("hl-home-srv")
    eth0, eth1 = srv.nics
    assert (eth0.name, eth0.address, eth0.peer_ns) == ("eth0", IPv4Interface("203.0.113.10/24"), "hl-inet")
    assert (eth1.name, eth1.address, eth1.promisc, eth1.peer_ns) == ("eth1", None, True, "hl-home-sw")
    assert srv.gateway == A("203.0.113.1")


def test_managed_hosts_and_roles() -> None:
    topo = build_topology()
    assert [h.name for h in topo.managed_hosts] == ["hl-home-srv", "hl-home-c1", "hl-aws-br", "hl-az-br"]
    assert {h.role for h in topo.hosts if not h.managed} == {"test-host", "vip-host", "bastion"}
    # The Azure side is reached through its bastion only (over SSH); the bastion itself directly.
    bastion = topo.host("hl-az-bastion")
    assert bastion.sshd and bastion not in topo.test_hosts and topo.bastion_for(bastion) is None
    assert {h.name for h in topo.ssh_hosts if topo.bastion_for(h) is bastion} == {"hl-az-br", "hl-az-h30", "hl-az-h31"}
    assert topo.bastion_for(topo.host("hl-aws-br")) is None
    # The VIP VPC's hosts run an sshd but are no overlay probes (`lab pings`, test_hosts).
    vip = {h.name for h in topo.hosts_of("vip")}
    assert vip == {"hl-vip-c", "hl-vip-n1", "hl-vip-n2"}
    assert vip <= {h.name for h in topo.ssh_hosts}
    assert not vip & {h.name for h in topo.test_hosts}


def test_vip_vpc_is_reference_section_4() -> None:
    topo = build_topology()
    site = topo.site("vip")
    assert (site.kind, site.fabric_ns, site.public_ip) == ("aws", "hl-vip-fab", None)
    assert site.networks == (IPv4Network("10.0.0.0/16"),)
    assert [(s.name, str(s.cidr), str(s.gateway)) for s in site.subnets] == [
        ("Subnet-1a", "10.0.10.0/24", "10.0.10.1"),
        ("Subnet-2a", "10.0.110.0/24", "10.0.110.1"),
        ("Subnet-2c", "10.0.120.0/24", "10.0.120.1"),
    ]
    links = {h.name: (n.peer_link, n.address, h.gateway) for h, n in topo.fabric_links("vip")}
    assert links == {
        "hl-vip-c": ("hl-c", IPv4Interface("10.0.10.10/24"), A("10.0.10.1")),
        "hl-vip-n1": ("hl-n1", IPv4Interface("10.0.110.10/24"), A("10.0.110.1")),
        "hl-vip-n2": ("hl-n2", IPv4Interface("10.0.120.10/24"), A("10.0.120.1")),
    }
    # The VIP itself lies outside the VPC: the fabric routes it by route table, not locally.
    assert not any(A("20.0.0.100") in net for net in site.networks)


@pytest.mark.parametrize("n", [0, 1, 10, 40, 149, 150, 200, MAX_EXTRA_CLIENTS])
def test_extra_clients(n: int) -> None:
    topo = build_topology(n)
    extra = [h for h in topo.hosts if h.role == "lan-client" and h.name != "hl-home-c1"]
    assert len(extra) == n
    for i, h in enumerate(extra):
        assert h.managed
        # .100-.248 first, then .11-.99; the name carries the last octet.
        octet = 100 + i if i < 149 else 11 + i - 149
        assert h.primary_ip == A(f"192.168.1.{octet}")
        assert h.name == f"hl-home-c{octet}"
    # Never the SoftEther L3 switch's or the server's LAN address, nor hl-home-c1's.
    ips = [h.primary_ip for h in topo.hosts]
    assert not {A("192.168.1.249"), A("192.168.1.250")} & set(ips)
    assert len(ips) == len(set(ips))
    home_sw = next(s for s in topo.switches if s.name == "hl-home-sw")
    assert len(home_sw.ports) == n + 2  # VPN server eth1, c1, extras


@pytest.mark.parametrize("n", [-1, MAX_EXTRA_CLIENTS + 1])
def test_extra_clients_bounds(n: int) -> None:
    with pytest.raises(ValueError):
        build_topology(n)


def test_names_prefix_length_and_uniqueness() -> None:
    topo = build_topology(MAX_EXTRA_CLIENTS)
    assert all(ns.startswith("hl-") for ns in topo.namespaces)
    assert len(set(topo.namespaces)) == len(topo.namespaces)
    for h in topo.hosts:
        for nic in h.nics:
            assert len(nic.name) <= IFNAMSIZ and len(nic.peer_link) <= IFNAMSIZ
            assert nic.peer_link.startswith("hl-")
    for ns in {n.peer_ns for h in topo.hosts for n in h.nics}:
        links = [n.peer_link for h in topo.hosts for n in h.nics if n.peer_ns == ns]
        assert len(links) == len(set(links)), ns


def test_addresses_unique() -> None:
    topo = build_topology(40)
    ips = [h.primary_ip for h in topo.hosts]
    assert len(ips) == len(set(ips))


def test_unknown_host() -> None:
    with pytest.raises(KeyError, match="hl-nope"):
        build_topology().host("hl-nope")
