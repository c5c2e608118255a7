"""The reconciler's spec builder (pure): cloud snapshots -> FabricSpec, by each cloud's rules."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from hybridctl_lab import fabric
from hybridctl_lab.aws_emulator.backends import EniView, FabricView, RouteTableView, RouteView, SubnetView, VpcView
from hybridctl_lab.fabric import CloudFabric, Route
from hybridctl_lab.reconciler import AzureSnapshot, aws_routes, azure_routes, build_spec
from hybridctl_lab.topology import build_topology

A, N = IPv4Address, IPv4Network
TOPO = build_topology(0)
SUB = "/subscriptions/s1/resourceGroups/hybrid-rg/providers/Microsoft.Network"


# --------------------------------------------------------------------------- AWS snapshots


def aws_view(
    *,
    tables: list[RouteTableView] | None = None,
    sdc: dict[str, bool] | None = None,
    extra_vpcs: list[VpcView] | None = None,
    extra_subnets: list[SubnetView] | None = None,
    extra_enis: list[EniView] | None = None,
    vpc_name: str = "Hybrid-VPC",
) -> FabricView:
    """A VPC shaped like the seeded one: subnet-20 / subnet-21, ENIs at .100, .10 and 21.10."""
    vpc = VpcView("vpc-1", ("192.168.20.0/24", "192.168.21.0/24"), {"Name": vpc_name} if vpc_name else {})
    subnets = [
        SubnetView("subnet-20", "vpc-1", "192.168.20.0/24", "ap-northeast-1a", {"Name": "Hybrid-Subnet"}),
        SubnetView("subnet-21", "vpc-1", "192.168.21.0/24", "ap-northeast-1c", {"Name": "Hybrid-Subnet-Dammy"}),
    ]
    sdc = sdc or {}
    enis = [
        EniView("eni-br", "subnet-20", "vpc-1", ("192.168.20.100",), sdc.get("eni-br", True), "i-br", "interface", {}),
        EniView("eni-20", "subnet-20", "vpc-1", ("192.168.20.10",), sdc.get("eni-20", True), "i-20", "interface", {}),
        EniView("eni-21", "subnet-21", "vpc-1", ("192.168.21.10",), sdc.get("eni-21", True), "i-21", "interface", {}),
    ]
    local = (RouteView("192.168.20.0/24", "local", "local", "active"),)
    igw = RouteView("0.0.0.0/0", "gateway", "igw-1", "active")
    default_tables = [
        RouteTableView("rtb-main", "vpc-1", True, (), (*local, igw), {}),
        RouteTableView("rtb-hyb", "vpc-1", False, ("subnet-20",), (*local, igw), {"Name": "Hybrid-RT"}),
    ]
    all_tables = tables if tables is not None else default_tables
    return FabricView(
        "ap-northeast-1",
        {v.vpc_id: v for v in [vpc, *(extra_vpcs or [])]},
        {s.subnet_id: s for s in [*subnets, *(extra_subnets or [])]},
        {t.route_table_id: t for t in all_tables},
        {e.eni_id: e for e in [*enis, *(extra_enis or [])]},
    )


def eni_route(dest: str, ip: str | None = "192.168.20.100", state: str = "active") -> RouteView:
    return RouteView(dest, "network-interface", "eni-br", state, "eni-br", ip)


def routes_of(cloud: CloudFabric, subnet: str) -> list[Route]:
    table = cloud.associations.get(N(subnet))
    return list(cloud.route_tables[table]) if table is not None else []


def forwarding(cloud: CloudFabric) -> dict[IPv4Address, bool]:
    return {h.nic_ip: h.may_forward for h in cloud.hosts}


def test_no_state_gives_the_bare_spec() -> None:
    built = build_spec(TOPO, None, None)
    assert built.spec == fabric.bare_spec(TOPO)
    assert built.notes == ("AWS: no state", "Azure: no state", "AWS vip: no state")


def test_seeded_aws_explicit_association_else_main_table() -> None:
    aws = build_spec(TOPO, aws_view(), None).spec.cloud("aws")
    assert dict(aws.associations) == {N("192.168.20.0/24"): "rtb-hyb", N("192.168.21.0/24"): "rtb-main"}
    # local and internet-gateway routes are the fabric's own business: nothing copied
    assert dict(aws.route_tables) == {"rtb-hyb": [], "rtb-main": []}
    assert aws.default_table is None
    assert not any(forwarding(aws).values())


def test_aws_route_targets() -> None:
    routes = [
        RouteView("192.168.20.0/24", "local", "local", "active"),
        RouteView("0.0.0.0/0", "gateway", "igw-1", "active"),
        eni_route("192.168.30.0/24"),
        RouteView("192.168.1.0/24", "instance", "i-20", "active", "eni-20", "192.168.20.10"),
        eni_route("192.168.31.0/24", None, "blackhole"),  # the ENI is gone
        RouteView("10.0.0.0/8", "transit-gateway", "tgw-1", "active"),
        RouteView("172.16.0.0/12", "gateway", "vgw-1", "active"),  # a VPN gateway: nothing behind it here
        RouteView("2001:db8::/64", "network-interface", "eni-br", "active", "eni-br", "192.168.20.100"),
        RouteView("pl-1234", "gateway", "vpce-1", "active"),
    ]
    assert aws_routes(routes) == [
        Route(N("192.168.30.0/24"), A("192.168.20.100")),
        Route(N("192.168.1.0/24"), A("192.168.20.10")),
        Route(N("192.168.31.0/24"), None),
        Route(N("10.0.0.0/8"), None),
        Route(N("172.16.0.0/12"), None),
    ]


def test_overlay_routes_and_source_dest_check_off() -> None:
    overlay = tuple(eni_route(p) for p in ("192.168.1.0/24", "192.168.30.0/24", "192.168.31.0/24"))
    tables = [
        RouteTableView("rtb-main", "vpc-1", True, (), (), {}),
        RouteTableView("rtb-hyb", "vpc-1", False, ("subnet-20", "subnet-21"), overlay, {"Name": "Hybrid-RT"}),
    ]
    spec = build_spec(TOPO, aws_view(tables=tables, sdc={"eni-br": False}), None).spec
    aws = spec.cloud("aws")
    want = [Route(N(p), A("192.168.20.100")) for p in ("192.168.1.0/24", "192.168.30.0/24", "192.168.31.0/24")]
    assert routes_of(aws, "192.168.20.0/24") == want
    assert routes_of(aws, "192.168.21.0/24") == want
    assert forwarding(aws) == {A("192.168.20.100"): True, A("192.168.20.10"): False, A("192.168.21.10"): False}
    # The kernel side accepts it and resolves every hop to the bridge's link.
    desired = fabric.desired_state(aws)
    assert desired.unresolved == ()
    subnet_tables = range(fabric.TABLE_SUBNET_BASE, fabric.TABLE_IGW)
    assert {r.dev for r in desired.state.routes if r.table in subnet_tables} == {"hl-br"}
    assert spec.cloud("azure") == fabric.bare_spec(TOPO).cloud("azure")


def test_next_hop_outside_the_lab_is_kept_for_the_fabric_to_blackhole() -> None:
    tables = [
        RouteTableView("rtb-main", "vpc-1", True, ("subnet-20",), (eni_route("10.1.0.0/16", "192.168.20.77"),), {})
    ]
    aws = build_spec(TOPO, aws_view(tables=tables), None).spec.cloud("aws")
    assert routes_of(aws, "192.168.20.0/24") == [Route(N("10.1.0.0/16"), A("192.168.20.77"))]
    assert fabric.desired_state(aws).unresolved == (Route(N("10.1.0.0/16"), A("192.168.20.77")),)


def test_vpc_choice_by_name_then_by_subnets() -> None:
    # Another VPC with the same CIDRs (and an ENI claiming the bridge's address) must not leak in.
    other_vpc = VpcView("vpc-0", ("192.168.20.0/24",), {"Name": "Other"})
    other_subnet = SubnetView("subnet-x", "vpc-0", "192.168.20.0/24", "ap-northeast-1a", {})
    other_eni = EniView("eni-x", "subnet-x", "vpc-0", ("192.168.20.100",), False, None, "interface", {})
    other_table = RouteTableView("rtb-x", "vpc-0", True, (), (eni_route("10.0.0.0/8"),), {})
    view = aws_view(
        extra_vpcs=[other_vpc], extra_subnets=[other_subnet], extra_enis=[other_eni],
        tables=[*aws_view().route_tables.values(), other_table],
    )  # fmt: skip
    aws = build_spec(TOPO, view, None).spec.cloud("aws")
    assert set(aws.associations.values()) == {"rtb-hyb", "rtb-main"}
    assert not forwarding(aws)[A("192.168.20.100")]
    # Unnamed: the VPC holding most of the lab's subnets wins.
    unnamed = aws_view(vpc_name="", extra_vpcs=[other_vpc], extra_subnets=[other_subnet])
    assert set(build_spec(TOPO, unnamed, None).spec.cloud("aws").associations.values()) == {"rtb-hyb", "rtb-main"}


def test_missing_subnet_and_vpc_are_notes() -> None:
    view = aws_view()
    del view.subnets["subnet-21"]
    built = build_spec(TOPO, view, None)
    assert N("192.168.21.0/24") not in built.spec.cloud("aws").associations
    assert any("192.168.21.0/24" in note for note in built.notes)
    empty = FabricView("ap-northeast-1", {}, {}, {}, {})
    built = build_spec(TOPO, empty, None)
    assert built.spec.cloud("aws") == fabric.bare_spec(TOPO).cloud("aws")
    assert any("no VPC" in note for note in built.notes)


def test_secondary_private_ip_carries_the_flag() -> None:
    view = aws_view()
    view.enis["eni-20"] = EniView(
        "eni-20", "subnet-20", "vpc-1", ("192.168.20.5", "192.168.20.10"), False, "i-20", "interface", {}
    )
    assert forwarding(build_spec(TOPO, view, None).spec.cloud("aws"))[A("192.168.20.10")] is True


# --------------------------------------------------------------------------- the VIP VPC (section 4)


def vip_view(holder: str = "eni-n1", *, sdc: bool = False, name: str = "VIP-VPC") -> FabricView:
    """The overlay's VPC plus VIP-VPC as hybridctl_lab.vip_scenario builds it, VIP -> ``holder``."""
    vpc = VpcView("vpc-vip", ("10.0.0.0/16",), {"Name": name} if name else {})
    subnets = [
        SubnetView("subnet-1a", "vpc-vip", "10.0.10.0/24", "ap-northeast-1a", {"Name": "Subnet-1a"}),
        SubnetView("subnet-2a", "vpc-vip", "10.0.110.0/24", "ap-northeast-1a", {"Name": "Subnet-2a"}),
        SubnetView("subnet-2c", "vpc-vip", "10.0.120.0/24", "ap-northeast-1c", {"Name": "Subnet-2c"}),
    ]
    ips = {"eni-c": "10.0.10.10", "eni-n1": "10.0.110.10", "eni-n2": "10.0.120.10"}
    enis = [
        EniView("eni-c", "subnet-1a", "vpc-vip", (ips["eni-c"],), True, "i-c", "interface", {"Name": "client-eni"}),
        EniView("eni-n1", "subnet-2a", "vpc-vip", (ips["eni-n1"],), sdc, "i-n1", "interface", {"Name": "node1-eni"}),
        EniView("eni-n2", "subnet-2c", "vpc-vip", (ips["eni-n2"],), sdc, "i-n2", "interface", {"Name": "node2-eni"}),
    ]
    vip = RouteView("20.0.0.100/32", "network-interface", holder, "active", holder, ips[holder])
    local = RouteView("10.0.0.0/16", "local", "local", "active")
    igw = RouteView("0.0.0.0/0", "gateway", "igw-v", "active")
    tables = [
        *aws_view().route_tables.values(),
        RouteTableView("rtb-vmain", "vpc-vip", True, (), (local, igw, vip), {"Name": "Main"}),
        RouteTableView("rtb-a", "vpc-vip", False, ("subnet-2a",), (local, vip), {"Name": "Route-A"}),
        RouteTableView("rtb-c", "vpc-vip", False, ("subnet-2c",), (local, vip), {"Name": "Route-C"}),
    ]
    return aws_view(extra_vpcs=[vpc], extra_subnets=subnets, extra_enis=enis, tables=tables)


def test_vip_vpc_maps_onto_its_own_fabric() -> None:
    built = build_spec(TOPO, vip_view(), None)
    vip = built.spec.cloud("vip")
    assert vip.namespace == "hl-vip-fab" and vip.cidrs == (N("10.0.0.0/16"),)
    assert dict(vip.associations) == {
        N("10.0.10.0/24"): "rtb-vmain",  # Subnet-1a: no explicit association, the main table
        N("10.0.110.0/24"): "rtb-a",
        N("10.0.120.0/24"): "rtb-c",
    }
    to_node1 = [Route(N("20.0.0.100/32"), A("10.0.110.10"))]
    for subnet in ("10.0.10.0/24", "10.0.110.0/24", "10.0.120.0/24"):
        assert routes_of(vip, subnet) == to_node1, subnet
    assert forwarding(vip) == {A("10.0.10.10"): False, A("10.0.110.10"): True, A("10.0.120.10"): True}
    # The overlay's fabric sees none of it.
    assert built.spec.cloud("aws") == build_spec(TOPO, aws_view(), None).spec.cloud("aws")
    assert not any("vip" in note for note in built.notes)
    # Kernel side: the VIP, outside the VPC CIDR, is routed per table to node1's link.
    desired = fabric.desired_state(vip)
    assert desired.unresolved == ()
    vip_routes = {(r.table, r.gateway, r.dev) for r in desired.state.routes if r.dst == N("20.0.0.100/32")}
    assert vip_routes == {(t, A("10.0.110.10"), "hl-n1") for t in (100, 101, 102)}
    assert fabric.KRule(fabric.PRIO_VPC, dst=N("10.0.0.0/16"), table=fabric.TABLE_MAIN) in desired.state.rules


def test_vip_move_and_source_dest_check_follow_the_api() -> None:
    vip = build_spec(TOPO, vip_view("eni-n2"), None).spec.cloud("vip")
    assert routes_of(vip, "10.0.10.0/24") == [Route(N("20.0.0.100/32"), A("10.0.120.10"))]
    strict = build_spec(TOPO, vip_view(sdc=True), None).spec.cloud("vip")
    assert not any(forwarding(strict).values())
    # Unnamed VIP VPC: still found, as the VPC holding the site's subnets.
    unnamed = build_spec(TOPO, vip_view(name=""), None).spec.cloud("vip")
    assert routes_of(unnamed, "10.0.110.0/24") == [Route(N("20.0.0.100/32"), A("10.0.110.10"))]


def test_no_vip_vpc_leaves_its_fabric_bare_with_a_note() -> None:
    built = build_spec(TOPO, aws_view(), None)
    assert built.spec.cloud("vip") == fabric.bare_spec(TOPO).cloud("vip")
    assert any(note.startswith("AWS vip: no VPC 'VIP-VPC'") for note in built.notes)


# --------------------------------------------------------------------------- Azure snapshots


def vnet(route_tables: dict[str, str] | None = None, name: str = "Hybrid-VNet") -> dict[str, Any]:
    route_tables = route_tables or {}
    subnets = []
    for subnet, prefix in (("Hybrid_Subnet", "192.168.30.0/24"), ("Hybrid_Subnet_Dammy", "192.168.31.0/24")):
        props: dict[str, Any] = {"addressPrefix": prefix}
        if subnet in route_tables:
            props["routeTable"] = {"id": route_tables[subnet]}
        subnets.append({"id": f"{SUB}/virtualNetworks/{name}/subnets/{subnet}", "name": subnet, "properties": props})
    return {
        "id": f"{SUB}/virtualNetworks/{name}",
        "name": name,
        "properties": {"addressSpace": {"addressPrefixes": ["192.168.30.0/24", "192.168.31.0/24"]}, "subnets": subnets},
    }


def nic(name: str, ip: str, subnet: str, forwarding: bool = False, vnet_name: str = "Hybrid-VNet") -> dict[str, Any]:
    return {
        "id": f"{SUB}/networkInterfaces/{name}",
        "name": name,
        "properties": {
            "enableIPForwarding": forwarding,
            "ipConfigurations": [
                {
                    "name": "ipconfig1",
                    "properties": {
                        "privateIPAddress": ip,
                        "subnet": {"id": f"{SUB}/virtualNetworks/{vnet_name}/subnets/{subnet}"},
                    },
                }
            ],
        },
    }


def route_table(name: str, *routes: tuple[str, str, str | None]) -> dict[str, Any]:
    entries = []
    for i, (prefix, hop_type, hop_ip) in enumerate(routes):
        props: dict[str, Any] = {"addressPrefix": prefix, "nextHopType": hop_type}
        if hop_ip:
            props["nextHopIpAddress"] = hop_ip
        entries.append({"name": f"r{i}", "properties": props})
    return {"id": f"{SUB}/routeTables/{name}", "name": name, "properties": {"routes": entries}}


NICS = (
    nic("azure-bridge-nic", "192.168.30.100", "Hybrid_Subnet"),
    nic("az-h30-nic", "192.168.30.10", "Hybrid_Subnet"),
    nic("az-h31-nic", "192.168.31.10", "Hybrid_Subnet_Dammy"),
    nic("az-bastion-nic", "192.168.30.4", "Hybrid_Subnet"),
)


def test_seeded_azure_has_system_routes_only() -> None:
    azure = build_spec(TOPO, None, AzureSnapshot((vnet(),), NICS, ())).spec.cloud("azure")
    assert dict(azure.associations) == {} and dict(azure.route_tables) == {}
    assert not any(forwarding(azure).values())


def test_azure_route_kinds() -> None:
    table = route_table(
        "Hybrid-RT",
        ("192.168.20.0/24", "VirtualAppliance", "192.168.30.100"),
        ("10.66.0.0/16", "None", None),
        ("0.0.0.0/0", "Internet", None),
        ("192.168.99.0/24", "VnetLocal", None),
        ("10.77.0.0/16", "VirtualNetworkGateway", None),
        ("AzureCloud", "Internet", None),
        ("10.88.0.0/16", "virtualappliance", "192.168.30.10"),  # ARM matches the type case-insensitively
    )
    assert azure_routes(table) == [
        Route(N("192.168.20.0/24"), A("192.168.30.100")),
        Route(N("10.66.0.0/16"), None),
        Route(N("10.77.0.0/16"), None),
        Route(N("10.88.0.0/16"), A("192.168.30.10")),
    ]


def test_azure_association_per_subnet_and_ip_forwarding() -> None:
    rt_id = f"{SUB}/routeTables/Hybrid-RT"
    table = route_table("Hybrid-RT", ("192.168.20.0/24", "VirtualAppliance", "192.168.30.100"))
    nics = (nic("azure-bridge-nic", "192.168.30.100", "Hybrid_Subnet", forwarding=True), *NICS[1:])
    # The subnet refers to the table with different letter case: ARM ids are case-insensitive.
    snapshot = AzureSnapshot((vnet({"Hybrid_Subnet_Dammy": rt_id.upper()}),), nics, (table,))
    azure = build_spec(TOPO, None, snapshot).spec.cloud("azure")
    assert routes_of(azure, "192.168.31.0/24") == [Route(N("192.168.20.0/24"), A("192.168.30.100"))]
    assert routes_of(azure, "192.168.30.0/24") == []
    assert forwarding(azure) == {
        A("192.168.30.100"): True,
        A("192.168.30.10"): False,
        A("192.168.31.10"): False,
        A("192.168.30.4"): False,
    }


def test_azure_nic_of_another_vnet_and_missing_table() -> None:
    stray = nic("stray", "192.168.30.100", "Hybrid_Subnet", forwarding=True, vnet_name="Other-VNet")
    snapshot = AzureSnapshot(
        (vnet({"Hybrid_Subnet": f"{SUB}/routeTables/gone"}), vnet(name="Other-VNet")), (*NICS, stray), ()
    )
    built = build_spec(TOPO, None, snapshot)
    azure = built.spec.cloud("azure")
    assert not forwarding(azure)[A("192.168.30.100")]
    assert dict(azure.associations) == {}
    assert any("missing route table" in note for note in built.notes)


def test_azure_without_the_vnet_falls_back_to_matching_subnets() -> None:
    renamed = vnet(name="Renamed-VNet")
    nics = tuple(nic(n["name"], n["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
                     n["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"].rsplit("/", 1)[1],
                     forwarding=True, vnet_name="Renamed-VNet") for n in NICS)  # fmt: skip
    azure = build_spec(TOPO, None, AzureSnapshot((renamed,), nics, ())).spec.cloud("azure")
    assert all(forwarding(azure).values())
    built = build_spec(TOPO, None, AzureSnapshot((), NICS, ()))
    assert built.spec.cloud("azure") == fabric.bare_spec(TOPO).cloud("azure")
    assert any("no VNet" in note for note in built.notes)
