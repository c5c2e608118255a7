"""Host fact parsers on iproute2/sysctl output captured in network namespaces."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from hybridctl.backends.host_facts import (
    Route,
    main_routes,
    parse_addresses,
    parse_ip_forward,
    parse_links,
    parse_routes,
)
from hybridctl.core.errors import RemoteError


def text(fixtures_dir: Path, name: str) -> str:
    return (fixtures_dir / "host" / name).read_text()


def test_bridge_routes_table_all(fixtures_dir: Path) -> None:
    routes = parse_routes(text(fixtures_dir, "brg_route_table_all.json"))
    main = main_routes(routes)
    overlay = sorted(r for r in main if r.dev == "tap_vpntap")
    assert [str(r.dst) for r in overlay] == ["192.168.1.0/24", "192.168.30.0/24", "192.168.31.0/24"]
    assert {r.gateway for r in overlay} == {IPv4Address("192.168.10.1")}
    default = [r for r in main if r.dst == IPv4Network("0.0.0.0/0")]
    assert default == [Route(IPv4Network("0.0.0.0/0"), IPv4Address("10.99.0.1"), "eth0")]
    # The kernel's connected route and the local table are facts, not managed routes.
    connected = [r for r in routes if r.is_kernel and r.table == "main"]
    assert {(str(r.dst), r.prefsrc) for r in connected} == {
        ("10.99.0.0/24", IPv4Address("10.99.0.2")),
        ("192.168.10.0/24", IPv4Address("192.168.10.2")),
    }
    assert any(r.table == "local" and r.type == "local" for r in routes)


def test_main_table_only_output_matches_table_all(fixtures_dir: Path) -> None:
    all_routes = main_routes(parse_routes(text(fixtures_dir, "brg_route_table_all.json")))
    main_only = main_routes(parse_routes(text(fixtures_dir, "brg_route.json")))
    assert sorted(all_routes) == sorted(main_only)


def test_varied_routes_protocol_metric_table_blackhole(fixtures_dir: Path) -> None:
    routes = parse_routes(text(fixtures_dir, "cli_varied_route_table_all.json"))
    by_dst = {(str(r.dst), r.table): r for r in routes}
    static = by_dst[("192.168.20.0/24", "main")]
    assert (static.protocol, static.metric, static.gateway) == ("static", 100, IPv4Address("192.168.1.249"))
    other_table = by_dst[("10.5.0.0/16", "100")]
    assert other_table.gateway == IPv4Address("192.168.1.1")
    blackhole = by_dst[("10.6.0.0/16", "main")]
    assert blackhole.type == "blackhole" and blackhole.dev is None
    main = main_routes(routes)
    assert {str(r.dst) for r in main} == {"192.168.10.0/24", "192.168.20.0/24"}


def test_server_without_default_route(fixtures_dir: Path) -> None:
    routes = parse_routes(text(fixtures_dir, "srv_route.json"))
    assert [str(r.dst) for r in routes] == ["10.99.0.0/24"]
    assert routes[0].is_kernel


def test_router_routes_numbered_tables_onlink_and_blackhole(fixtures_dir: Path) -> None:
    """A lab fabric namespace's ``table all``: the lab reads its routers with this parser too."""
    routes = parse_routes(text(fixtures_dir, "fab_route_table_all.json"))
    assert len(routes) == 17
    blackhole = Route(IPv4Network("10.9.0.0/16"), protocol="77", table="100", type="blackhole")
    assert blackhole in routes
    onlink = Route(IPv4Network("0.0.0.0/0"), IPv4Address("203.0.113.1"), "hl-wan", protocol="77", table="250")
    assert onlink in routes
    host = Route(IPv4Network("192.168.20.10/32"), None, "hl-h20", protocol="77", scope="link")
    assert host in routes
    assert {r.table for r in routes} == {"100", "250", "main", "local"}


def test_addresses_of_one_device(fixtures_dir: Path) -> None:
    addresses = parse_addresses(text(fixtures_dir, "fab_wan_addr.json"))
    assert list(addresses) == ["hl-wan"]
    assert addresses["hl-wan"].addresses == (IPv4Interface("203.0.113.20/24"),)
    assert addresses["hl-wan"].up


def test_addresses_per_device(fixtures_dir: Path) -> None:
    addrs = parse_addresses(text(fixtures_dir, "brg_addr.json"))
    assert addrs["tap_vpntap"].addresses == (IPv4Interface("192.168.10.2/24"),)
    assert addrs["eth0"].addresses == (IPv4Interface("10.99.0.2/24"),)
    assert addrs["eth0"].up
    varied = parse_addresses(text(fixtures_dir, "cli_varied_addr.json"))
    assert varied["eth0"].addresses == (IPv4Interface("192.168.1.10/24"), IPv4Interface("192.168.1.11/24"))
    server = parse_addresses(text(fixtures_dir, "srv_addr.json"))
    # eth1 carries the LAN without an address: ip -4 does not list it at all.
    assert sorted(server) == ["eth0", "lo"]


def test_links_plain_and_detailed(fixtures_dir: Path) -> None:
    plain = parse_links(text(fixtures_dir, "brg_link.json"))
    assert plain["tap_vpntap"].kind is None and plain["tap_vpntap"].up
    detailed = parse_links(text(fixtures_dir, "brg_link_detail.json"))
    tap = detailed["tap_vpntap"]
    assert (tap.kind, tap.tun_type) == ("tun", "tap")
    assert detailed["eth0"].kind == "veth"
    server = parse_links(text(fixtures_dir, "srv_link.json"))
    assert server["eth1"].promiscuous and not server["eth0"].promiscuous
    lan = parse_links(text(fixtures_dir, "lan_link_detail.json"))
    assert lan["srv"].master == "br0" and lan["br0"].kind == "bridge"


@pytest.mark.parametrize(("name", "expected"), [("brg_ip_forward.txt", True), ("srv_ip_forward.txt", False)])
def test_ip_forward(fixtures_dir: Path, name: str, expected: bool) -> None:
    assert parse_ip_forward(text(fixtures_dir, name)) is expected


def test_bad_input_raises() -> None:
    with pytest.raises(RemoteError):
        parse_ip_forward("2\n")
    with pytest.raises(RemoteError):
        parse_routes("Error: ipv4: FIB table does not exist.")
    assert parse_routes("") == []
