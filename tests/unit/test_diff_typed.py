"""Changes carry typed items: which item each action takes from which side, as a table of cases.

The diff compares keys and attributes; the items ride along (``Change.planned`` from the desired
side, ``Change.found`` from the actual side) so that backends apply typed data and never parse a
key. The cases below use the item classes the planner and the backends build.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from hybridctl.core.diff import Change, diff
from hybridctl.core.hostfiles import host_files
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.desired import (
    LAYERS,
    AddressItem,
    AssociationItem,
    CloudRoute,
    DesiredState,
    FileItem,
    Flag,
    HostFile,
    Item,
    KernelRouteItem,
    PackageItem,
    Resource,
    RouteItem,
    RuleItem,
    ServiceItem,
    SoftEtherItem,
    res,
)
from hybridctl.core.planner.plan import plan
from hybridctl.core.softether.model import HubUser
from hybridctl.render.plan import change_document
from tests.conftest import REPO


def planned_route(prefix: str, table: str = "Hybrid-RT", target: str = "192.168.30.100") -> Resource:
    route = CloudRoute(IPv4Network(prefix), "virtual-appliance", target, "hybridctl-" + prefix, "why")
    item = RouteItem("azure", table, prefix, route.target_label, route.name, route)
    return res("cloud-route", ("azure", table, prefix), "why", item, target=item.target)


def read_route(destination: str, target: str, name: str, owned: bool = True, table: str = "Hybrid-RT") -> Resource:
    item = RouteItem("azure", table, destination, target, name)
    return Resource("cloud-route", ("azure", table, destination), (("target", target),), "", owned, item)


def kernel_route(host: str, prefix: str, owned: bool = True, via: str = "192.168.10.1") -> Resource:
    item = KernelRouteItem(host, IPv4Network(prefix), IPv4Address(via))
    return Resource("host-route", (host, prefix), (("via", via),), "", owned, item)


def flag(value: bool) -> Resource:
    item = Flag("aws", "aws-bridge", "source_dest_check", value, "aws-bridge-eni", "why")
    return res("flag", ("aws", "aws-bridge-eni", "source_dest_check"), "why", item, value=item.text)


def user(hub: str, name: str) -> Resource:
    item = SoftEtherItem("vpnserver", "user", HubUser(name, f"hub-user/{hub}/{name}"), hub)
    return Resource("softether", ("vpnserver", "user", hub, name), (), "", True, item)


HOST_FILE = HostFile("/etc/hybridctl/overlay.sh", "#!/bin/sh\n", 0o755)
FILE = res(
    "host-file",
    ("vpnserver", HOST_FILE.path),
    "rendered",
    FileItem("vpnserver", HOST_FILE.path, HOST_FILE),
    sha256=HOST_FILE.sha256,
    mode="755",
)
OLD_FILE = Resource(
    "host-file",
    ("vpnserver", HOST_FILE.path),
    (("mode", "755"), ("sha256", "0" * 64)),
    "",
    True,
    FileItem("vpnserver", HOST_FILE.path),
)


@dataclass(frozen=True)
class Expect:
    """One change: its action and key's last part, and which items it carries."""

    action: str
    last: str
    planned: Callable[[list[Resource]], Item | None]
    found: Callable[[list[Resource]], Item | None]


def want(i: int) -> Callable[[list[Resource]], Item | None]:
    return lambda sides: sides[i].item


def none(_: list[Resource]) -> None:
    return None


# (case, desired, actual, expected changes); in Expect, indexes point into desired + actual.
CASES: list[tuple[str, list[Resource], list[Resource], list[Expect]]] = [
    (
        "create takes the planned item",
        [planned_route("192.168.1.0/24")],
        [],
        [Expect("create", "192.168.1.0/24", want(0), none)],
    ),
    (
        "update carries both: the planned route and the one read (its name)",
        [planned_route("192.168.1.0/24")],
        [read_route("192.168.1.0/24", "virtual-appliance:192.168.30.9", "hybridctl-old-name")],
        [Expect("update", "192.168.1.0/24", want(0), want(1))],
    ),
    (
        "delete takes the item read",
        [],
        [read_route("192.168.99.0/24", "virtual-appliance:192.168.30.100", "hybridctl-192-168-99-0-24")],
        [Expect("delete", "192.168.99.0/24", none, want(0))],
    ),
    (
        "a foreign route under the planned key is a conflict with both items",
        [planned_route("192.168.1.0/24")],
        [read_route("192.168.1.0/24", "internet:", "theirs", owned=False)],
        [Expect("conflict", "192.168.1.0/24", want(0), want(1))],
    ),
    (
        "a foreign, more specific route in the same table steals: conflict on the item read",
        [planned_route("192.168.0.0/16")],
        [
            read_route("192.168.0.0/16", "virtual-appliance:192.168.30.100", "hybridctl-192-168-0-0-16"),
            read_route("192.168.5.0/24", "internet:", "theirs", owned=False),
        ],
        [Expect("conflict", "192.168.5.0/24", none, want(2))],
    ),
    (
        "the same foreign route in another table steals nothing",
        [planned_route("192.168.0.0/16")],
        [
            read_route("192.168.0.0/16", "virtual-appliance:192.168.30.100", "hybridctl-192-168-0-0-16"),
            read_route("192.168.5.0/24", "internet:", "theirs", owned=False, table="Other-RT"),
        ],
        [],
    ),
    (
        "a service-tag destination is not a prefix: never a conflict",
        [planned_route("192.168.0.0/16")],
        [
            read_route("192.168.0.0/16", "virtual-appliance:192.168.30.100", "hybridctl-192-168-0-0-16"),
            read_route("Storage", "internet:", "theirs", owned=False),
        ],
        [],
    ),
    (
        "kernel routes: stealing is per host",
        [kernel_route("aws-bridge", "192.168.30.0/24")],
        [
            kernel_route("aws-bridge", "192.168.30.0/24"),
            kernel_route("aws-bridge", "192.168.30.128/25", owned=False, via="192.168.20.1"),
            kernel_route("azure-bridge", "192.168.30.128/25", owned=False, via="192.168.20.1"),
        ],
        [Expect("conflict", "192.168.30.128/25", none, want(2))],
    ),
    (
        "a flag to change: the planned value and the one found",
        [flag(False)],
        [flag(True)],
        [Expect("update", "source_dest_check", want(0), want(1))],
    ),
    (
        "a SoftEther user no longer planned: deleted by the item read (hub in parent)",
        [user("DEFAULT", "home-user")],
        [user("DEFAULT", "home-user"), user("DEFAULT", "old-user")],
        [Expect("delete", "old-user", none, want(2))],
    ),
    (
        "a host file with other content: the planned item holds what to write",
        [FILE],
        [OLD_FILE],
        [Expect("update", HOST_FILE.path, want(0), want(1))],
    ),
]


@pytest.mark.parametrize(("desired", "actual", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_changes_carry_the_items_of_their_sides(
    desired: list[Resource], actual: list[Resource], expected: list[Expect]
) -> None:
    changes = diff(desired, actual)
    sides = [*desired, *actual]
    got = [(c.action, c.key[-1], c.planned, c.found) for c in changes]
    assert got == [(e.action, e.last, e.planned(sides), e.found(sides)) for e in expected]
    for change in changes:
        assert change.subject is (change.planned if change.planned is not None else change.found)


def test_items_take_no_part_in_comparing() -> None:
    """Same key and attributes, items built apart (planned vs read): in sync, no change."""
    planned = planned_route("192.168.1.0/24")
    read = read_route("192.168.1.0/24", planned.get("target"), "hybridctl-192.168.1.0/24")
    assert planned == read and planned.item != read.item
    assert diff([planned], [read]) == []


def test_changes_json_does_not_show_items() -> None:
    (change,) = diff([planned_route("192.168.1.0/24")], [])
    assert set(change_document(change)) == {"action", "layer", "key", "expected", "actual", "why"}


# -- the planner's items, layer by layer ------------------------------------------------------------

ITEM_OF_LAYER: dict[str, type | tuple[type, ...]] = {
    "flag": Flag,
    "security-rule": RuleItem,
    "cloud-route": RouteItem,
    "cloud-association": AssociationItem,
    "host-package": PackageItem,
    "host-file": FileItem,
    "host-service": ServiceItem,
    "softether": SoftEtherItem,
    "host-address": AddressItem,
    "host-route": KernelRouteItem,
    "client-route": KernelRouteItem,
}


@pytest.fixture(scope="module")
def reference() -> DesiredState:
    return plan(load_inventory(REPO / "inventory" / "reference.yaml").inventory)


def test_every_planned_resource_carries_the_item_of_its_layer(reference: DesiredState) -> None:
    assert set(ITEM_OF_LAYER) == set(LAYERS)
    for resource in reference.resources():
        assert isinstance(resource.item, ITEM_OF_LAYER[resource.layer]), resource


def test_planned_items_say_what_the_key_says(reference: DesiredState) -> None:
    """The key is derived from the item: nothing needs to parse it back."""
    for resource in reference.resources():
        item = resource.item
        if isinstance(item, RouteItem):
            assert item.route is not None and resource.key == (item.site, item.table, str(item.route.prefix))
            assert resource.get("target") == item.route.target_label and item.name == item.route.name
        elif isinstance(item, RuleItem):
            assert item.rule is not None and item.name == item.rule.name == resource.get("name")
            assert resource.key == (item.site, item.group, item.direction, item.protocol, item.port, item.peer)
        elif isinstance(item, Flag):
            assert resource.key == (item.site, item.target, item.name) and resource.get("value") == item.text
        elif isinstance(item, AddressItem):
            assert resource.key == (item.host, item.device, str(item.address))
            assert isinstance(item.address, IPv4Interface)
        elif isinstance(item, KernelRouteItem):
            assert resource.key == (item.host, str(item.prefix)) and resource.get("via") == str(item.via)
        elif isinstance(item, SoftEtherItem):
            assert resource.key[:2] == (item.host, item.kind)


def test_host_files_are_planned_resources(reference: DesiredState) -> None:
    """Every file a managed host gets is in resources(), with the rendered content in its item."""
    files = {(r.key, r.get("sha256")): r.item for r in reference.resources() if r.layer == "host-file"}
    expected: dict[tuple[tuple[str, ...], str], HostFile] = {
        ((host.name, f.path), f.sha256): f
        for host in reference.hosts
        if host.managed
        for f in host_files(host, reference.inventory)
    }
    assert set(files) == set(expected) and expected
    for key, item in files.items():
        assert isinstance(item, FileItem) and item.file == expected[key]


def test_a_plan_against_nothing_creates_every_item_as_planned(reference: DesiredState) -> None:
    resources = reference.resources()
    changes = diff(resources, [])
    by_key = {(r.layer, r.key): r.item for r in resources}
    assert changes and all(c.action == "create" and c.found is None for c in changes)
    assert all(c.planned is by_key[(c.layer, c.key)] for c in changes)


def test_changes_compare_without_their_items() -> None:
    """The engine filters changes by equality (``c not in unowned``): items must not disturb it."""
    route = planned_route("10.0.0.0/8")
    bare = Change("create", "cloud-route", route.key, route.attrs, None, route.why)
    (typed,) = diff([route], [])
    assert typed == bare and typed.planned is route.item and bare.planned is None
