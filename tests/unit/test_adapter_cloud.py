"""Pure parts of the cloud backends: labels, rule keys, descriptions, priorities, factories.

Parsers run on AWS / ARM responses kept in tests/fixtures/aws and tests/fixtures/azure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hybridctl.backends.aws import (
    AwsBackend,
    aws_description,
    ip_permission,
    protocol_port,
    route_label,
    rule_name_of,
)
from hybridctl.backends.azure import AzureBackend, free_priority, hop_label, normalize_prefix, rule_items
from hybridctl.backends.cloudcommon import owns_item
from hybridctl.backends.journal import Journal
from hybridctl.core.errors import RemoteError
from hybridctl.core.inventory.load import load_inventory, parse_inventory
from hybridctl.core.secrets import SecretStore
from tests.conftest import FIXTURES, REPO

AWS_DESCRIPTION_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/()#,@[]+=&;{}!$*")


def fixture(*parts: str) -> Any:
    return json.loads((FIXTURES.joinpath(*parts)).read_text())


# -- AWS ---------------------------------------------------------------------------------------------


def test_route_labels_name_every_target_kind() -> None:
    table = fixture("aws", "describe_route_tables.json")["RouteTables"][0]
    labels = {r.get("DestinationCidrBlock"): route_label(r) for r in table["Routes"]}
    assert labels["192.168.20.0/23"] == "local:"
    assert labels["0.0.0.0/0"] == "internet:igw-06b7dd5f7dEXAMPLE"
    # AWS shows both ids for a route to an instance's ENI; the ENI is what the route targets
    # (and what the inventory names), so a repointed route reads as eni:<other ENI>.
    assert labels["192.168.1.0/24"] == "eni:eni-0b8d5e1b3aEXAMPLE"
    assert labels["192.168.30.0/24"] == "eni:eni-0c7e3f0a8dEXAMPLE"
    assert labels["10.0.0.0/8"] == "nat-gateway:nat-05dba92075EXAMPLE"
    assert labels["172.16.0.0/12"] == "transit-gateway:tgw-0e5b3b1dd8EXAMPLE"
    assert labels["10.200.0.0/16"] == "peering:pcx-0c7d21a7b8EXAMPLE"
    assert labels["10.201.0.0/16"] == "vpn-gateway:vgw-0e6c4f0dEXAMPLE"
    assert all(":" in label for label in labels.values())


def test_security_group_permissions_map_to_planner_protocol_and_port() -> None:
    group = fixture("aws", "describe_security_groups.json")["SecurityGroups"][0]
    seen = [protocol_port(p) for p in group["IpPermissions"]]
    assert seen == [("all", "*"), ("tcp", "22"), ("tcp", "5555-5560"), ("icmp", "*"), ("udp", "*")]
    ranges = group["IpPermissions"][0]["IpRanges"]
    assert rule_name_of(ranges[0]["Description"]) == "hybridctl-from-Hybrid-Subnet"
    assert rule_name_of(ranges[1]["Description"]) == ""


@given(
    st.sampled_from(["all", "tcp", "udp", "icmp"]),
    st.one_of(st.just("*"), st.integers(1, 65535).map(str), st.tuples(st.integers(1, 100), st.integers(101, 65535))),
    st.sampled_from(["192.168.20.0/24", "10.0.0.0/8", "2001:db8::/32", "sg:sg-0123"]),
)
def test_ip_permission_is_the_inverse_of_protocol_port(protocol: str, port: Any, peer: str) -> None:
    port_text = f"{port[0]}-{port[1]}" if isinstance(port, tuple) else port
    if protocol == "all":
        port_text = "*"
    if protocol == "icmp" and port_text != "*":
        port_text = port_text.split("-")[0]
    perm = ip_permission(protocol, port_text, peer, "hybridctl: x: y")
    assert protocol_port(perm) == (protocol, port_text)
    kinds = {k for k in ("IpRanges", "Ipv6Ranges", "UserIdGroupPairs") if k in perm}
    assert len(kinds) == 1


@given(
    st.from_regex(r"hybridctl-from-[A-Za-z0-9_.-]{1,60}", fullmatch=True),
    st.text(max_size=400),
)
def test_descriptions_are_valid_for_aws_and_keep_the_rule_name(name: str, why: str) -> None:
    text = aws_description(name, why)
    assert text.startswith("hybridctl: ")
    assert len(text) <= 255
    assert set(text) <= AWS_DESCRIPTION_CHARS
    assert rule_name_of(text) == name


# -- Azure -------------------------------------------------------------------------------------------


def test_azure_next_hops_are_labelled_by_type() -> None:
    table = fixture("azure", "route_table.json")
    labels = {
        normalize_prefix(r["properties"]["addressPrefix"]): hop_label(r["properties"])
        for r in table["properties"]["routes"]
    }
    assert labels == {
        "192.168.1.0/24": "virtual-appliance:192.168.30.100",
        "0.0.0.0/0": "internet:",
        "Storage": "virtual-network-gateway:",
        "10.0.0.0/8": "none:",
    }


def test_an_ecmp_route_is_labelled_with_all_its_next_hops() -> None:
    # The route of Microsoft.Network 2025-07-01 example RouteTableCreateWithEcmpRoute.json.
    props = {
        "addressPrefix": "10.1.0.0/16",
        "nextHopType": "VirtualApplianceEcmp",
        "nextHop": {"nextHopIpAddresses": ["10.0.0.4", "10.0.0.5", "10.0.0.6"]},
        "provisioningState": "Succeeded",
    }
    assert hop_label(props) == "virtual-appliance-ecmp:10.0.0.4,10.0.0.5,10.0.0.6"


def test_nsg_rules_expand_to_one_key_per_peer() -> None:
    nsg = fixture("azure", "network_security_group.json")
    items = {r["name"]: rule_items(r) for r in nsg["properties"]["securityRules"]}
    assert items["hybridctl-from-Hybrid_Subnet"] == [("inbound", "all", "*", "192.168.30.0/24")]
    assert items["ssh-and-vpn"] == [
        ("inbound", "tcp", "22,5555", "203.0.113.0/24"),
        ("inbound", "tcp", "22,5555", "198.51.100.20/32"),
    ]
    assert items["to-onprem"] == [("outbound", "udp", "*", "192.168.1.0/24")]


def test_free_priority_is_the_lowest_unused_from_1000() -> None:
    assert free_priority([]) == 1000
    assert free_priority([100, 1000, 1001, 1003]) == 1002
    with pytest.raises(RemoteError):
        free_priority(range(1000, 4097))


# -- ownership of keys and factories ----------------------------------------------------------------


def test_owns_only_cloud_layers_of_its_sites_and_its_own_flag() -> None:
    from ipaddress import IPv4Network

    from hybridctl.core.planner.desired import Flag, KernelRouteItem, Resource, RouteItem

    def flag(item: Flag) -> Resource:
        return Resource("flag", (item.site, item.target, item.name), item=item)

    def route(layer: str, site: str) -> Resource:
        item = RouteItem(site, "Hybrid-RT", "192.168.1.0/24", "eni:x")
        return Resource(layer, (site, "Hybrid-RT", "192.168.1.0/24"), item=item)

    sites = {"aws"}
    assert owns_item(sites, "aws", flag(Flag("aws", "aws-bridge", "source_dest_check", False, "aws-bridge-eni", "")))
    assert not owns_item(sites, "aws", flag(Flag("aws", "aws-bridge", "net.ipv4.ip_forward", True, "aws-bridge", "")))
    assert owns_item(sites, "aws", route("cloud-route", "aws"))
    assert not owns_item(sites, "aws", route("cloud-route", "azure"))
    host_route = KernelRouteItem("aws", IPv4Network("192.168.1.0/24"), None)
    assert not owns_item(sites, "aws", Resource("host-route", ("aws", "192.168.1.0/24"), item=host_route))
    foreign = Flag("azure", "azure-bridge", "source_dest_check", False, "azure-bridge-nic", "")
    assert not owns_item({"azure"}, "azure", flag(foreign))
    # No typed item, no owner: a backend acts on items, not on keys.
    assert not owns_item(sites, "aws", Resource("cloud-route", ("aws", "Hybrid-RT", "192.168.1.0/24")))


def test_reference_inventory_gets_both_backends_owning_the_planned_cloud_items(tmp_path: Path) -> None:
    from hybridctl.backends import aws, azure
    from hybridctl.backends.context import Context, Options
    from hybridctl.core.planner.loaded import plan_loaded

    loaded = load_inventory(REPO / "inventory" / "reference.yaml")
    desired = plan_loaded(loaded)
    context = Context(loaded, desired, Journal(tmp_path / "j.json"), SecretStore(tmp_path / "s.json"), Options())
    # The engine's own factories (features.engine.default_factories) pick the cloud backends.
    backends = [b for b in (aws.backend_for(context), azure.backend_for(context)) if b is not None]
    assert [b.name for b in backends] == ["aws", "azure"]
    for resource in desired.resources():
        owners = [b.name for b in backends if b.owns(resource)]
        cloud = resource.layer in ("security-rule", "cloud-route", "cloud-association") or (
            resource.layer == "flag" and resource.key[2] != "net.ipv4.ip_forward"
        )
        assert owners == ([resource.key[0]] if cloud else []), resource


def test_azure_credential_choice(tmp_path: Path) -> None:
    loaded = load_inventory(REPO / "inventory" / "reference.yaml")
    backend = AzureBackend(loaded.inventory, Journal(tmp_path / "j.json"), SecretStore(tmp_path / "s.json"))
    assert type(backend.credential()).__name__ == "DefaultAzureCredential"

    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    text = (
        (REPO / "inventory" / "reference.yaml")
        .read_text()
        .replace(
            "  subscription_id: 00000000-0000-0000-0000-000000000000",
            "  subscription_id: 00000000-0000-0000-0000-000000000000\n"
            "  tenant_id: 11111111-1111-1111-1111-111111111111\n"
            "  client_id: 22222222-2222-2222-2222-222222222222\n"
            f"  client_secret: file:{secret}\n"
            "  authority: https://login.example.test",
        )
    )
    loaded = parse_inventory(text)
    backend = AzureBackend(loaded.inventory, Journal(tmp_path / "j.json"), SecretStore(tmp_path / "s.json"))
    assert type(backend.credential()).__name__ == "ClientSecretCredential"


def test_aws_region_comes_from_the_site_or_the_aws_section(tmp_path: Path) -> None:
    loaded = load_inventory(REPO / "inventory" / "reference.yaml")
    backend = AwsBackend(loaded.inventory, Journal(tmp_path / "j.json"))
    assert backend.region_of(loaded.inventory.site("aws")) == "ap-northeast-1"
    text = (
        (REPO / "inventory" / "reference.yaml")
        .read_text()
        .replace("    vpc: Hybrid-VPC\n", "    vpc: Hybrid-VPC\n    region: eu-west-1\n")
    )
    loaded = parse_inventory(text)
    assert AwsBackend(loaded.inventory, Journal(tmp_path / "j.json")).region_of(loaded.inventory.site("aws")) == (
        "eu-west-1"
    )
