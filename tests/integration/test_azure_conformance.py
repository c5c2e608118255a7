"""The ARM emulator's answers checked against Azure's published REST specs.

The emulator is driven the way hybridctl drives Azure: the real azure-mgmt-network and
azure-mgmt-consumption clients over HTTPS (resource groups through the client's own pipeline).
A ``raw_response_hook`` on each client records every response body as it came off the wire,
long-running-operation polls included, before the SDK deserializes (and silently drops
unknown fields from) it. Each body is then checked against the spec definition for its URL
(tests/fixtures/azure-specs/, see its README) in two ways:

- schema: types, enums, required properties, as jsonschema validates the resolved definition;
- declared: every property the emulator returns must be declared by the definition, because
  the specs leave objects open and an invented or misspelt field would pass the schema.

Every response under Microsoft.Network or Microsoft.Consumption must map to a definition, and
each test asserts which definitions it covered, so a flow that stops exercising a response
type fails instead of passing vacuously.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineResponse
from azure.core.rest import HttpRequest
from azure.mgmt.consumption import ConsumptionManagementClient
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as nm

from hybridctl_lab.azure_emulator import AzureEmulator
from tests.integration.test_azure_emulator import (
    RG,
    admin,
    budget_body,
    create_rg,
    mk_route,
    mk_rule,
    mk_subnet,
    nic_model,
    nsg_model,
    route_table_model,
    vnet_model,
)
from tests.support.azure_spec import CONSUMPTION_DIR, NETWORK_DIR, SpecSet, conformance_problems
from tests.support.emulators import arm_kwargs, azure_credential, running_azure_emulator

pytestmark = pytest.mark.integration

# URL segment (lower case) -> (spec file, definition of one item, definition of a list page)
NETWORK_TYPES = {
    "virtualnetworks": ("virtualNetwork.json", "VirtualNetwork", "VirtualNetworkListResult"),
    "subnets": ("virtualNetwork.json", "Subnet", "SubnetListResult"),
    "networkinterfaces": ("networkInterface.json", "NetworkInterface", "NetworkInterfaceListResult"),
    "ipconfigurations": (
        "networkInterface.json", "NetworkInterfaceIPConfiguration", "NetworkInterfaceIPConfigurationListResult"
    ),
    "routetables": ("routeTable.json", "RouteTable", "RouteTableListResult"),
    "routes": ("routeTable.json", "Route", "RouteListResult"),
    "networksecuritygroups": ("networkSecurityGroup.json", "NetworkSecurityGroup", "NetworkSecurityGroupListResult"),
    "securityrules": ("networkSecurityGroup.json", "SecurityRule", "SecurityRuleListResult"),
    "defaultsecurityrules": ("networkSecurityGroup.json", "SecurityRule", "SecurityRuleListResult"),
}
NETWORK_PATH = re.compile(r"/providers/microsoft\.network/([^/]+)(?:/([^/]+)(?:/([^/]+)(/[^/]+)?)?)?$", re.I)
OPERATION_PATH = re.compile(r"/providers/microsoft\.network/locations/[^/]+/operations/[^/]+$", re.I)
# A delete's Location: 202 while running, then the final status, never a body.
OPERATION_RESULT_PATH = re.compile(r"/providers/microsoft\.network/locations/[^/]+/operationresults/[^/]+$", re.I)
BUDGET_PATH = re.compile(r"/providers/microsoft\.consumption/budgets(/[^/]+)?$", re.I)


@dataclass(frozen=True)
class Exchange:
    method: str
    url: str
    status: int
    body: Any

    def __str__(self) -> str:
        return f"{self.method} {urlparse(self.url).path} -> {self.status}"


@dataclass(frozen=True)
class Target:
    specs: SpecSet
    file: str
    definition: str
    # The network RP's async-operation body carries id/name/startTime/endTime, as real Azure
    # sends them, though AzureAsyncOperationResult declares only status and error: schema only.
    check_declared: bool = True


@dataclass
class Recorder:
    """Every response a client received, in order (the client's ``raw_response_hook``)."""

    exchanges: list[Exchange] = field(default_factory=list)

    def __call__(self, response: PipelineResponse) -> None:
        http = response.http_response
        # Long-running PUTs are streamed; read() caches the bytes, and the SDK reads the cache.
        content = http.read()
        body = http.json() if content.strip() and "json" in (http.headers.get("Content-Type") or "") else None
        self.exchanges.append(Exchange(http.request.method, http.request.url, http.status_code, body))


@pytest.fixture(scope="module")
def specs() -> tuple[SpecSet, SpecSet]:
    return SpecSet.load(NETWORK_DIR), SpecSet.load(CONSUMPTION_DIR)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[AzureEmulator]:
    with running_azure_emulator(tmp_path / "azure") as emu:
        yield emu


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def net(emulator: AzureEmulator, recorder: Recorder) -> NetworkManagementClient:
    return NetworkManagementClient(azure_credential(emulator), emulator.subscription_id, polling_interval=0.05,
                                   raw_response_hook=recorder, **arm_kwargs(emulator))


@pytest.fixture
def consumption(emulator: AzureEmulator, recorder: Recorder) -> ConsumptionManagementClient:
    return ConsumptionManagementClient(azure_credential(emulator), emulator.subscription_id,
                                       raw_response_hook=recorder, **arm_kwargs(emulator))


def target_for(exchange: Exchange, network: SpecSet, consumption: SpecSet) -> Target | None:
    """The spec definition a response body must match; None for what the specs here do not cover."""
    path = unquote(urlparse(exchange.url).path).rstrip("/")
    if OPERATION_RESULT_PATH.search(path) and exchange.status < 400:
        return None
    budget = BUDGET_PATH.search(path)
    if budget is not None:
        if exchange.status >= 400:
            return Target(consumption, "consumption.json", "ErrorResponse")
        return Target(consumption, "consumption.json", "Budget" if budget.group(1) else "BudgetsListResult")
    if not re.search(r"/providers/microsoft\.(network|consumption)/", path, re.I):
        return None  # resource groups, subscriptions: Microsoft.Resources is not part of the vendored specs
    match = NETWORK_PATH.search(path)
    if match is None:
        raise AssertionError(f"no spec definition is mapped for {exchange}")
    if exchange.status >= 400:
        return Target(network, "network.json", "CloudError")
    if OPERATION_PATH.search(path):
        return Target(network, "network.json", "AzureAsyncOperationResult", check_declared=False)
    top, name, child, child_name = match.groups()
    segment = (child if child else top).lower()
    if segment not in NETWORK_TYPES:
        raise AssertionError(f"no spec definition is mapped for {exchange}")
    file, item, page = NETWORK_TYPES[segment]
    is_item = bool(child_name) if child else bool(name)
    return Target(network, file, item if is_item else page)


def check(recorder: Recorder, specs: tuple[SpecSet, SpecSet]) -> set[str]:
    """Assert every recorded body conforms; return the definitions that were checked."""
    network, consumption = specs
    covered: set[str] = set()
    problems: list[str] = []
    for exchange in recorder.exchanges:
        target = target_for(exchange, network, consumption)
        if target is None:
            continue
        if exchange.body is None:
            # Only deletes, accepted operations and operation results answer without a body.
            if exchange.status in (200, 201) and exchange.method in ("GET", "PUT", "PATCH"):
                problems.append(f"{exchange} [{target.file} {target.definition}] has no JSON body")
            continue
        found = (
            conformance_problems(target.specs, target.file, target.definition, exchange.body)
            if target.check_declared
            else [f"schema {e}" for e in target.specs.errors(target.file, target.definition, exchange.body)]
        )
        covered.add(target.definition)
        problems += [f"{exchange} [{target.file} {target.definition}] {p}" for p in found]
    assert not problems, "responses that do not conform to the published spec:\n" + "\n".join(problems)
    return covered


def expect_error(call: Any, *args: Any, **kwargs: Any) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as info:
        result = call(*args, **kwargs)
        if hasattr(result, "result"):
            result.result()
    return info.value


# -- network ---------------------------------------------------------------------------------------


def test_network_responses_conform_to_the_published_spec(
    emulator: AzureEmulator, net: NetworkManagementClient, recorder: Recorder, specs: tuple[SpecSet, SpecSet]
) -> None:
    create_rg(net, emulator)

    nsg = net.network_security_groups.begin_create_or_update(
        RG, "hybrid-nsg", nsg_model([mk_rule(100, port="22", source="10.0.0.0/8", name="ssh")])
    ).result()
    net.security_rules.begin_create_or_update(
        RG, "hybrid-nsg", "vpn", mk_rule(110, protocol="Udp", port="500-4500", name="vpn")
    ).result()
    net.security_rules.get(RG, "hybrid-nsg", "vpn")
    list(net.security_rules.list(RG, "hybrid-nsg"))
    list(net.default_security_rules.list(RG, "hybrid-nsg"))
    net.default_security_rules.get(RG, "hybrid-nsg", "DenyAllInBound")

    table = net.route_tables.begin_create_or_update(RG, "hybrid-rt", route_table_model([
        mk_route("10.0.0.0/16", "VirtualAppliance", "192.168.30.10", name="to-aws"),
        mk_route("0.0.0.0/0", "Internet", name="default"),
        mk_route("10.255.0.0/16", "None", name="blackhole"),
        mk_route("192.168.30.0/23", "VnetLocal", name="local"),
        mk_route("10.128.0.0/16", "VirtualNetworkGateway", name="gateway"),
    ])).result()
    net.routes.begin_create_or_update(
        RG, "hybrid-rt", "to-onprem", mk_route("172.16.0.0/16", "VirtualAppliance", "192.168.30.11")
    ).result()
    net.routes.get(RG, "hybrid-rt", "to-onprem")
    list(net.routes.list(RG, "hybrid-rt"))

    net.virtual_networks.begin_create_or_update(RG, "hybrid-vnet", vnet_model(["192.168.30.0/23"], [
        mk_subnet("192.168.30.0/24", "Hybrid_Subnet", route_table=table.id, nsg=nsg.id),
    ])).result()
    net.subnets.begin_create_or_update(RG, "hybrid-vnet", "Spare_Subnet", nm.Subnet({"properties": {
        "addressPrefixes": ["192.168.31.0/25", "192.168.31.128/25"],
        "delegations": [{"name": "aci", "properties": {"serviceName": "Microsoft.ContainerInstance/containerGroups"}}],
    }})).result()
    subnet = net.subnets.get(RG, "hybrid-vnet", "Hybrid_Subnet")
    list(net.subnets.list(RG, "hybrid-vnet"))

    nic = nic_model(str(subnet.id), ip="192.168.30.10", nsg=nsg.id)
    nic["properties"]["enableIPForwarding"] = True
    net.network_interfaces.begin_create_or_update(RG, "bridge-nic", nic).result()
    net.network_interfaces.begin_create_or_update(RG, "other-nic", nic_model(str(subnet.id))).result()
    net.network_interfaces.get(RG, "bridge-nic")
    list(net.network_interface_ip_configurations.list(RG, "bridge-nic"))
    net.network_interface_ip_configurations.get(RG, "bridge-nic", "ipconfig1")

    # Back-references appear once something uses a resource: read every parent again.
    for rendered in (net.virtual_networks.get(RG, "hybrid-vnet"), net.route_tables.get(RG, "hybrid-rt"),
                     net.network_security_groups.get(RG, "hybrid-nsg")):
        assert rendered.id
    net.route_tables.update_tags(RG, "hybrid-rt", nm.TagsObject({"tags": {"env": "lab"}}))
    emulator.configure(page_size=1)  # lists below come in pages, each with a nextLink
    for pager in (net.virtual_networks.list(RG), net.virtual_networks.list_all(), net.route_tables.list(RG),
                  net.route_tables.list_all(), net.network_interfaces.list(RG), net.network_interfaces.list_all(),
                  net.network_security_groups.list(RG), net.network_security_groups.list_all()):
        assert list(pager)
    assert any(e.body and "nextLink" in e.body for e in recorder.exchanges), "no paged list was exercised"

    net.routes.begin_delete(RG, "hybrid-rt", "to-onprem").result()
    net.security_rules.begin_delete(RG, "hybrid-nsg", "vpn").result()

    covered = check(recorder, specs)
    assert covered >= {
        "VirtualNetwork", "VirtualNetworkListResult", "Subnet", "SubnetListResult",
        "NetworkInterface", "NetworkInterfaceListResult",
        "NetworkInterfaceIPConfiguration", "NetworkInterfaceIPConfigurationListResult",
        "RouteTable", "RouteTableListResult", "Route", "RouteListResult",
        "NetworkSecurityGroup", "NetworkSecurityGroupListResult", "SecurityRule", "SecurityRuleListResult",
        "AzureAsyncOperationResult",
    }


def test_network_error_responses_conform_to_cloud_error(
    emulator: AzureEmulator, net: NetworkManagementClient, recorder: Recorder, specs: tuple[SpecSet, SpecSet]
) -> None:
    create_rg(net, emulator)
    table = net.route_tables.begin_create_or_update(RG, "hybrid-rt", route_table_model()).result()
    net.virtual_networks.begin_create_or_update(RG, "hybrid-vnet", vnet_model(["192.168.30.0/24"], [
        mk_subnet("192.168.30.0/24", "Hybrid_Subnet", route_table=table.id)])).result()
    admin(emulator, "POST", "faults", json={"method": "GET", "path_regex": "/routeTables/hybrid-rt$",
                                            "status": 429, "count": 1}).raise_for_status()
    net.route_tables.get(RG, "hybrid-rt")  # the SDK retries the throttled GET and gets the table
    rt_url = f"/subscriptions/{emulator.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Network/routeTables"
    for raw in (HttpRequest("GET", f"{rt_url}/hybrid-rt"),
                HttpRequest("GET", f"{rt_url}/hybrid-rt?api-version=1999-01-01")):
        assert net.send_request(raw).status_code == 400
    errors = [
        expect_error(net.route_tables.get, RG, "missing-rt"),
        expect_error(net.routes.get, RG, "hybrid-rt", "missing-route"),
        expect_error(net.routes.get, RG, "missing-rt", "any"),
        expect_error(net.routes.begin_create_or_update, RG, "hybrid-rt", "bad",
                     mk_route("10.0.0.0/8", "VirtualAppliance")),
        expect_error(net.network_security_groups.begin_create_or_update, RG, "bad-nsg",
                     nsg_model([mk_rule(5000, name="too-low")])),
        expect_error(net.virtual_networks.begin_create_or_update, RG, "bad-vnet",
                     vnet_model(["10.9.0.0/16"], [mk_subnet("10.8.0.0/24", "Outside")])),
        expect_error(net.virtual_networks.begin_create_or_update, RG, "bad-ref", vnet_model(["10.9.0.0/16"], [
            mk_subnet("10.9.0.0/24", "S", route_table=f"{table.id}-gone")])),
        expect_error(net.route_tables.begin_delete, RG, "hybrid-rt"),
        expect_error(net.route_tables.begin_create_or_update, RG, "hybrid-rt", route_table_model(),
                     headers={"If-Match": 'W/"stale"'}),
        expect_error(net.route_tables.get, "no-such-rg", "hybrid-rt"),
    ]
    assert [e.error.code if e.error else None for e in errors] == [
        "ResourceNotFound", "NotFound", "ParentResourceNotFound", "MissingNextHopIpAddress",
        "SecurityRuleInvalidPriority", "NetcfgSubnetRangeOutsideVnet", "InvalidResourceReference",
        "InUseRouteTableCannotBeDeleted", "PreconditionFailed", "ResourceGroupNotFound",
    ]
    failed = [e for e in recorder.exchanges if e.status >= 400]
    assert [e.status for e in failed] == [429, 400, 400, 404, 404, 404, 400, 400, 400, 400, 400, 412, 404]
    assert "CloudError" in check(recorder, specs)


# -- consumption -----------------------------------------------------------------------------------


def test_budget_responses_conform_to_the_published_spec(
    emulator: AzureEmulator, net: NetworkManagementClient, consumption: ConsumptionManagementClient,
    recorder: Recorder, specs: tuple[SpecSet, SpecSet],
) -> None:
    create_rg(net, emulator)
    sub_scope = f"/subscriptions/{emulator.subscription_id}"
    rg_scope = f"{sub_scope}/resourceGroups/{RG}"

    created = consumption.budgets.create_or_update(sub_scope, "monthly-1000", budget_body(1000))
    consumption.budgets.create_or_update(sub_scope, "monthly-1000", budget_body(1500, e_tag=created.e_tag))
    consumption.budgets.get(sub_scope, "monthly-1000")
    rg_budget = budget_body(4000, notifications={
        "group": {"enabled": True, "operator": "GreaterThan", "threshold": 90, "locale": "ja-jp",
                  "contactGroups": [f"{rg_scope}/providers/microsoft.insights/actionGroups/ops"]},
    })
    # A filter set by hand in the portal: hybridctl sends it back as read (hybridctl/features/budget/azure.py).
    rg_budget["properties"]["filter"] = {"dimensions": {"name": "ResourceGroupName", "operator": "In", "values": [RG]}}
    consumption.budgets.create_or_update(rg_scope, "rg-4000", rg_budget)
    emulator.set_spend(str(created.id), current=1200.5, forecast=3100, unit="JPY")
    consumption.budgets.get(rg_scope, "rg-4000")
    assert list(consumption.budgets.list(sub_scope))
    assert list(consumption.budgets.list(rg_scope))

    stale = expect_error(consumption.budgets.create_or_update, sub_scope, "monthly-1000",
                         budget_body(2000, e_tag=created.e_tag))
    invalid = expect_error(consumption.budgets.create_or_update, sub_scope, "zero", budget_body(0))
    missing = expect_error(consumption.budgets.get, sub_scope, "nope")
    assert [stale.status_code, invalid.status_code, missing.status_code] == [412, 400, 404]
    consumption.budgets.delete(rg_scope, "rg-4000")

    assert check(recorder, specs) >= {"Budget", "BudgetsListResult", "ErrorResponse"}
