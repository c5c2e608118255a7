"""The Azure ARM emulator driven through the real SDKs (azure-identity, azure-mgmt-network,
azure-mgmt-consumption) over HTTPS, as hybridctl drives Azure. Each test starts its own
emulator on a free port under tmp_path; nothing here patches the SDKs.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.consumption import ConsumptionManagementClient
from azure.mgmt.consumption import models as cm
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as nm

from hybridctl_lab.azure_emulator import AzureEmulator, StoreChange
from tests.support.emulators import arm_kwargs, azure_credential, running_azure_emulator

pytestmark = pytest.mark.integration

LOCATION = "japaneast"
RG = "hybrid-rg"
RG_API = "2021-04-01"


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[AzureEmulator]:
    with running_azure_emulator(tmp_path / "azure") as emu:
        yield emu


@pytest.fixture
def credential(emulator: AzureEmulator) -> ClientSecretCredential:
    return azure_credential(emulator)


@pytest.fixture
def net(emulator: AzureEmulator, credential: ClientSecretCredential) -> NetworkManagementClient:
    return NetworkManagementClient(credential, emulator.subscription_id, **arm_kwargs(emulator))


@pytest.fixture
def consumption(emulator: AzureEmulator, credential: ClientSecretCredential) -> ConsumptionManagementClient:
    return ConsumptionManagementClient(credential, emulator.subscription_id, **arm_kwargs(emulator))


def rg_path(emu: AzureEmulator, name: str = RG) -> str:
    return f"/subscriptions/{emu.subscription_id}/resourcegroups/{name}?api-version={RG_API}"


def create_rg(net: NetworkManagementClient, emu: AzureEmulator, name: str = RG) -> Any:
    # There is no azure-mgmt-resource here: resource groups go through the management
    # client's own pipeline (auth, retries) with send_request, as hybridctl does.
    response = net.send_request(HttpRequest("PUT", rg_path(emu, name), json={"location": LOCATION}))
    response.raise_for_status()
    return response


def create_vnet(net: NetworkManagementClient, name: str = "hybrid-vnet") -> nm.VirtualNetwork:
    return net.virtual_networks.begin_create_or_update(
        RG, name, vnet_model(["192.168.30.0/23"], [mk_subnet("192.168.30.0/24", "Hybrid_Subnet")])
    ).result()


T = TypeVar("T")


def some(value: T | None) -> T:
    assert value is not None
    return value


# Model builders. The SDK's models accept flattened keywords at run time (address_prefix=...),
# but its type hints only declare the REST shape, so these build from REST-shaped mappings.


def mk_subnet(prefix: str, name: str | None = None, route_table: str | None = None,
           nsg: str | None = None) -> nm.Subnet:
    props: dict[str, Any] = {"addressPrefix": prefix}
    if route_table:
        props["routeTable"] = {"id": route_table}
    if nsg:
        props["networkSecurityGroup"] = {"id": nsg}
    return nm.Subnet({"properties": props, **({"name": name} if name else {})})


def vnet_model(prefixes: list[str], subnets: list[nm.Subnet]) -> nm.VirtualNetwork:
    return nm.VirtualNetwork({"location": LOCATION, "properties": {
        "addressSpace": {"addressPrefixes": prefixes}, "subnets": [dict(s) for s in subnets]}})


def mk_route(prefix: str, hop: str, ip: str | None = None, name: str | None = None) -> nm.Route:
    props = {"addressPrefix": prefix, "nextHopType": hop, **({"nextHopIpAddress": ip} if ip else {})}
    return nm.Route({"properties": props, **({"name": name} if name else {})})


def route_table_model(routes: list[nm.Route] | None = None) -> nm.RouteTable:
    return nm.RouteTable({"location": LOCATION, "properties": {"routes": [dict(r) for r in routes or []]}})


def mk_rule(priority: int, direction: str = "Inbound", access: str = "Allow", protocol: str = "*",
         port: str = "*", source: str = "*", name: str | None = None) -> nm.SecurityRule:
    props = {"protocol": protocol, "access": access, "direction": direction, "priority": priority,
             "sourcePortRange": "*", "destinationPortRange": port, "sourceAddressPrefix": source,
             "destinationAddressPrefix": "*"}
    return nm.SecurityRule({"properties": props, **({"name": name} if name else {})})


def nsg_model(rules: list[nm.SecurityRule]) -> nm.NetworkSecurityGroup:
    return nm.NetworkSecurityGroup({"location": LOCATION, "properties": {"securityRules": [dict(r) for r in rules]}})


def nic_model(subnet_id: str, ip: str | None = None, nsg: str | None = None) -> nm.NetworkInterface:
    config: dict[str, Any] = {"subnet": {"id": subnet_id}}
    if ip:
        config.update({"privateIPAllocationMethod": "Static", "privateIPAddress": ip})
    props: dict[str, Any] = {"ipConfigurations": [{"name": "ipconfig1", "properties": config}]}
    if nsg:
        props["networkSecurityGroup"] = {"id": nsg}
    return nm.NetworkInterface({"location": LOCATION, "properties": props})


def error_code(exc: HttpResponseError) -> str | None:
    return exc.error.code if exc.error is not None else None


def admin(emu: AzureEmulator, method: str, route: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{emu.base_url}/_emulator/{route}", verify=emu.ca_bundle, timeout=10,
                            **kwargs)


def first_of_month(months_ahead: int = 0) -> str:
    today = dt.datetime.now(dt.UTC).date()
    index = today.month - 1 + months_ahead
    return dt.date(today.year + index // 12, index % 12 + 1, 1).strftime("%Y-%m-%dT00:00:00Z")


def budget_body(amount: float = 1000, notifications: dict[str, Any] | None = None,
                e_tag: str | None = None) -> cm.Budget:
    body: dict[str, Any] = {
        "properties": {
            "category": "Cost",
            "amount": amount,
            "timeGrain": "Monthly",
            "timePeriod": {"startDate": first_of_month()},
            "notifications": notifications if notifications is not None else {
                "actual_100": {
                    "enabled": True,
                    "operator": "GreaterThanOrEqualTo",
                    "threshold": 100,
                    "thresholdType": "Actual",
                    "contactEmails": ["ops@example.com"],
                },
                "forecast_80": {
                    "enabled": True,
                    "operator": "GreaterThan",
                    "threshold": 80,
                    "thresholdType": "Forecasted",
                    "contactEmails": ["ops@example.com"],
                    "contactRoles": ["Owner"],
                },
            },
        }
    }
    if e_tag is not None:
        body["eTag"] = e_tag
    return cm.Budget(body)


# -- identity -------------------------------------------------------------------------------------


def test_client_secret_credential_gets_a_token_and_arm_accepts_it(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    create_rg(net, emulator)
    listed = net.send_request(HttpRequest("GET", f"/subscriptions/{emulator.subscription_id}/resourcegroups"
                                                 f"?api-version={RG_API}"))
    assert listed.status_code == 200
    assert [g["name"] for g in listed.json()["value"]] == [RG]
    counts = emulator.requests.summary()
    # msal's OIDC discovery and one token request, then the ARM calls.
    assert counts["auth"] == 2
    assert counts["mutating"] == 1 and counts["read"] == 1


def test_wrong_client_secret_is_rejected_with_aad_error(emulator: AzureEmulator) -> None:
    credential = ClientSecretCredential(
        emulator.tenant_id, emulator.client_id, "not-the-secret", authority=emulator.authority,
        disable_instance_discovery=True, connection_verify=emulator.ca_bundle,
    )
    with pytest.raises(ClientAuthenticationError) as info:
        credential.get_token(f"{emulator.base_url}/.default")
    assert "AADSTS7000215" in str(info.value)
    # The raw answer is AAD's: 401 invalid_client with the AADSTS number in error_codes.
    raw = requests.post(
        f"{emulator.authority}/{emulator.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": emulator.client_id,
              "client_secret": "not-the-secret", "scope": f"{emulator.base_url}/.default"},
        verify=emulator.ca_bundle, timeout=10,
    )
    assert raw.status_code == 401
    assert raw.json()["error"] == "invalid_client"
    assert raw.json()["error_codes"] == [7000215]


def test_unknown_client_id_is_rejected(emulator: AzureEmulator) -> None:
    credential = ClientSecretCredential(
        emulator.tenant_id, "00000000-0000-0000-0000-000000000000", emulator.client_secret,
        authority=emulator.authority, disable_instance_discovery=True, connection_verify=emulator.ca_bundle,
    )
    with pytest.raises(ClientAuthenticationError) as info:
        credential.get_token(f"{emulator.base_url}/.default")
    assert "AADSTS700016" in str(info.value)


def test_default_azure_credential_from_environment(
    emulator: AzureEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in emulator.credential_env().items():
        monkeypatch.setenv(key, value)
    credential = DefaultAzureCredential(disable_instance_discovery=True)
    # No connection_verify: the CA comes from REQUESTS_CA_BUNDLE, as for a user's shell.
    net = NetworkManagementClient(
        credential, emulator.subscription_id, base_url=emulator.base_url,
        credential_scopes=[f"{emulator.base_url}/.default"],
    )
    create_rg(net, emulator)
    vnet = create_vnet(net)
    assert vnet.provisioning_state == "Succeeded"


def test_arm_requires_a_valid_bearer_token(emulator: AzureEmulator, credential: ClientSecretCredential) -> None:
    url = f"{emulator.base_url}{rg_path(emulator)}"
    missing = requests.get(url, verify=emulator.ca_bundle, timeout=10)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "AuthenticationFailed"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    forged = requests.get(url, headers={"Authorization": "Bearer a.b.c"}, verify=emulator.ca_bundle, timeout=10)
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "InvalidAuthenticationToken"
    wrong_audience = credential.get_token("https://vault.azure.net/.default").token
    vault = requests.get(url, headers={"Authorization": f"Bearer {wrong_audience}"},
                         verify=emulator.ca_bundle, timeout=10)
    assert vault.status_code == 401
    assert vault.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    good = credential.get_token(f"{emulator.base_url}/.default").token
    ok = requests.get(url, headers={"Authorization": f"Bearer {good}"}, verify=emulator.ca_bundle, timeout=10)
    assert ok.status_code == 404  # authenticated; the group just does not exist yet
    assert ok.json()["error"]["code"] == "ResourceGroupNotFound"
    assert ok.headers["x-ms-request-id"]


# -- resource groups ------------------------------------------------------------------------------


def test_resource_groups_are_case_insensitive_and_put_is_201_then_200(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    assert create_rg(net, emulator, "Hybrid-RG").status_code == 201
    again = net.send_request(HttpRequest("PUT", rg_path(emulator, "HYBRID-rg"),
                                         json={"location": LOCATION, "tags": {"env": "lab"}}))
    assert again.status_code == 200
    assert again.json()["name"] == "Hybrid-RG"
    assert again.json()["tags"] == {"env": "lab"}
    got = net.send_request(HttpRequest("GET", rg_path(emulator, "hybrid-rg")))
    assert got.json()["id"].endswith("/resourceGroups/Hybrid-RG")
    moved = net.send_request(HttpRequest("PUT", rg_path(emulator, "hybrid-rg"), json={"location": "westus"}))
    assert moved.status_code == 409
    assert moved.json()["error"]["code"] == "InvalidResourceGroupLocation"
    # Resources under the group resolve whatever the case of its name in the path.
    vnet = net.virtual_networks.begin_create_or_update("HYBRID-RG", "v", vnet_model(["10.0.0.0/16"], [])).result()
    assert "/resourceGroups/Hybrid-RG/" in some(vnet.id)
    assert net.virtual_networks.get("hybrid-rg", "V").name == "v"


def test_resource_group_delete_polls_location_and_cascades(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    create_rg(net, emulator)
    create_vnet(net)
    deleted = net.send_request(HttpRequest("DELETE", rg_path(emulator)))
    assert deleted.status_code == 202
    location = deleted.headers["Location"]
    statuses = []
    for _ in range(10):  # bounded: the emulator finishes after lro_polls in-progress answers
        poll = net.send_request(HttpRequest("GET", location))
        statuses.append(poll.status_code)
        if poll.status_code != 202:
            break
    assert statuses == [202, 200]
    assert net.send_request(HttpRequest("GET", rg_path(emulator))).status_code == 404
    assert emulator.store.list("Microsoft.Network/virtualNetworks") == []


# -- virtual networks and subnets -----------------------------------------------------------------


def test_vnet_create_get_list_and_subnets(emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    create_rg(net, emulator)
    poller = net.virtual_networks.begin_create_or_update(
        RG, "hybrid-vnet",
        vnet_model(["192.168.30.0/23"], [mk_subnet("192.168.30.0/24", "Hybrid_Subnet")]),
    )
    vnet = poller.result()
    assert vnet.provisioning_state == "Succeeded"
    assert [s.name for s in vnet.subnets] == ["Hybrid_Subnet"]
    # The poller really polled: one in-progress answer and one final one.
    assert emulator.requests.count(method="GET", path_regex=r"/operations/") == 2

    subnet = net.subnets.begin_create_or_update(
        RG, "hybrid-vnet", "Hybrid_Subnet_Dammy", mk_subnet("192.168.31.0/24")
    ).result()
    assert some(subnet.id).endswith("/virtualNetworks/hybrid-vnet/subnets/Hybrid_Subnet_Dammy")
    assert subnet.provisioning_state == "Succeeded"
    assert sorted(some(s.name) for s in net.subnets.list(RG, "hybrid-vnet")) == ["Hybrid_Subnet", "Hybrid_Subnet_Dammy"]
    assert len(net.virtual_networks.get(RG, "hybrid-vnet").subnets) == 2
    assert [v.name for v in net.virtual_networks.list(RG)] == ["hybrid-vnet"]
    assert [v.name for v in net.virtual_networks.list_all()] == ["hybrid-vnet"]

    with pytest.raises(HttpResponseError) as overlap:
        net.subnets.begin_create_or_update(RG, "hybrid-vnet", "x", mk_subnet("192.168.31.128/25"))
    assert overlap.value.status_code == 400
    assert error_code(overlap.value) == "NetcfgSubnetRangesOverlap"
    with pytest.raises(HttpResponseError) as outside:
        net.subnets.begin_create_or_update(RG, "hybrid-vnet", "x", mk_subnet("10.9.0.0/24"))
    assert error_code(outside.value) == "NetcfgSubnetRangeOutsideVnet"
    with pytest.raises(HttpResponseError) as bad_cidr:
        net.subnets.begin_create_or_update(RG, "hybrid-vnet", "x", mk_subnet("192.168.31.5/24"))
    assert error_code(bad_cidr.value) == "InvalidCIDRNotation"

    net.subnets.begin_delete(RG, "hybrid-vnet", "Hybrid_Subnet_Dammy").result()
    assert [s.name for s in net.subnets.list(RG, "hybrid-vnet")] == ["Hybrid_Subnet"]


def test_vnet_put_replaces_inline_subnets_and_update_tags(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    create_rg(net, emulator)
    create_vnet(net)
    first = net.virtual_networks.get(RG, "hybrid-vnet")
    updated = net.virtual_networks.begin_create_or_update(
        RG, "hybrid-vnet",
        vnet_model(["192.168.30.0/23"], [mk_subnet("192.168.31.0/24", "Hybrid_Subnet_Dammy")]),
    )
    assert updated.result().etag != first.etag
    assert [s.name for s in net.virtual_networks.get(RG, "hybrid-vnet").subnets] == ["Hybrid_Subnet_Dammy"]
    tagged = net.virtual_networks.update_tags(RG, "hybrid-vnet", nm.TagsObject(tags={"owner": "hybridctl"}))
    assert tagged.tags == {"owner": "hybridctl"}
    assert net.virtual_networks.get(RG, "hybrid-vnet").tags == {"owner": "hybridctl"}


def test_put_is_201_then_200_and_provisioning_state_goes_updating_to_succeeded(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    create_rg(net, emulator)
    body = {"location": LOCATION, "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}}
    path = (f"/subscriptions/{emulator.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Network/"
            "virtualNetworks/v1?api-version=2024-07-01")
    created = net.send_request(HttpRequest("PUT", path, json=body))
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Updating"
    assert "Azure-AsyncOperation" in created.headers
    assert net.virtual_networks.get(RG, "v1").provisioning_state == "Updating"
    status_url = created.headers["Azure-AsyncOperation"]
    assert net.send_request(HttpRequest("GET", status_url)).json()["status"] == "InProgress"
    assert net.send_request(HttpRequest("GET", status_url)).json()["status"] == "Succeeded"
    assert net.virtual_networks.get(RG, "v1").provisioning_state == "Succeeded"
    assert net.send_request(HttpRequest("PUT", path, json=body)).status_code == 200


def test_number_of_in_progress_polls_is_configurable(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    create_rg(net, emulator)
    assert admin(emulator, "POST", "config", json={"lro_polls": 3}).json()["lro_polls"] == 3
    emulator.requests.reset()
    create_vnet(net)
    assert emulator.requests.count(method="GET", path_regex=r"/operations/") == 4


# -- network interfaces ---------------------------------------------------------------------------


def test_nic_private_ip_and_ip_forwarding_toggle(emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    create_rg(net, emulator)
    vnet = create_vnet(net)
    subnet_id = vnet.subnets[0].id
    nic = net.network_interfaces.begin_create_or_update(
        RG, "bridge-nic",
        nic_model(subnet_id, ip="192.168.30.100"),
    ).result()
    assert nic.enable_ip_forwarding is False
    assert nic.ip_configurations[0].private_ip_address == "192.168.30.100"
    assert nic.ip_configurations[0].subnet.id == subnet_id
    assert nic.ip_configurations[0].primary is True

    nic.enable_ip_forwarding = True
    updated = net.network_interfaces.begin_create_or_update(RG, "bridge-nic", nic).result()
    assert updated.enable_ip_forwarding is True
    assert updated.ip_configurations[0].private_ip_address == "192.168.30.100"
    # The lab reads the same flag in-process.
    stored = emulator.store.get(some(nic.id))
    assert stored is not None and stored["properties"]["enableIPForwarding"] is True
    # The subnet shows the NIC's IP configuration as a back-reference.
    refs = net.subnets.get(RG, "hybrid-vnet", "Hybrid_Subnet").ip_configurations
    assert [r.id for r in refs] == [nic.ip_configurations[0].id]

    dynamic = net.network_interfaces.begin_create_or_update(RG, "other-nic", nic_model(subnet_id)).result()
    assert dynamic.ip_configurations[0].private_ip_address == "192.168.30.4"
    assert dynamic.ip_configurations[0].private_ip_allocation_method == "Dynamic"

    for address, code in (("192.168.30.100", "PrivateIPAddressInUse"),
                          ("192.168.30.1", "PrivateIPAddressInReservedRange"),
                          ("192.168.99.10", "PrivateIPAddressNotInSubnet")):
        with pytest.raises(HttpResponseError) as info:
            net.network_interfaces.begin_create_or_update(RG, "third-nic", nic_model(subnet_id, ip=address))
        assert error_code(info.value) == code
    with pytest.raises(HttpResponseError) as in_use:
        net.subnets.begin_delete(RG, "hybrid-vnet", "Hybrid_Subnet")
    assert error_code(in_use.value) == "InUseSubnetCannotBeDeleted"


# -- route tables ---------------------------------------------------------------------------------


def test_route_table_routes_and_subnet_association(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    changes: list[StoreChange] = []
    unsubscribe = emulator.store.subscribe(changes.extend)
    create_rg(net, emulator)
    create_vnet(net)
    table = net.route_tables.begin_create_or_update(
        RG, "hybrid-rt",
        route_table_model([mk_route("192.168.1.0/24", "VirtualAppliance", "192.168.30.100", name="to-home")]),
    ).result()
    assert table.routes[0].next_hop_type == "VirtualAppliance"
    for name, prefix in (("to-aws", "192.168.20.0/24"), ("to-aws-dammy", "192.168.21.0/24")):
        route = net.routes.begin_create_or_update(
            RG, "hybrid-rt", name,
            mk_route(prefix, "VirtualAppliance", "192.168.30.100"),
        ).result()
        assert route.provisioning_state == "Succeeded"
    assert sorted(r.address_prefix for r in net.routes.list(RG, "hybrid-rt")) == [
        "192.168.1.0/24", "192.168.20.0/24", "192.168.21.0/24"]
    blackhole = net.routes.begin_create_or_update(
        RG, "hybrid-rt", "drop", mk_route("10.99.0.0/16", "None")).result()
    assert blackhole.next_hop_ip_address is None

    with pytest.raises(HttpResponseError) as missing_ip:
        net.routes.begin_create_or_update(
            RG, "hybrid-rt", "bad", mk_route("10.0.0.0/8", "VirtualAppliance"))
    assert error_code(missing_ip.value) == "MissingNextHopIpAddress"
    with pytest.raises(HttpResponseError) as ip_not_allowed:
        net.routes.begin_create_or_update(
            RG, "hybrid-rt", "bad",
            mk_route("10.0.0.0/8", "Internet", "1.2.3.4"))
    assert error_code(ip_not_allowed.value) == "NextHopIpAddressNotAllowed"

    # Associate the table with both subnets: one by a subnet PUT, one inline in a VNet PUT.
    net.subnets.begin_create_or_update(
        RG, "hybrid-vnet", "Hybrid_Subnet",
        mk_subnet("192.168.30.0/24", route_table=table.id)).result()
    vnet = net.virtual_networks.get(RG, "hybrid-vnet")
    some(vnet.subnets).append(mk_subnet("192.168.31.0/24", "Hybrid_Subnet_Dammy", route_table=table.id))
    net.virtual_networks.begin_create_or_update(RG, "hybrid-vnet", vnet).result()
    back_refs = sorted(s.id.rsplit("/", 1)[-1] for s in net.route_tables.get(RG, "hybrid-rt").subnets)
    assert back_refs == ["Hybrid_Subnet", "Hybrid_Subnet_Dammy"]

    with pytest.raises(HttpResponseError) as in_use:
        net.route_tables.begin_delete(RG, "hybrid-rt")
    assert error_code(in_use.value) == "InUseRouteTableCannotBeDeleted"
    with pytest.raises(HttpResponseError) as dangling:
        net.subnets.begin_create_or_update(
            RG, "hybrid-vnet", "Hybrid_Subnet",
            mk_subnet("192.168.30.0/24", route_table=f"{table.id}-nope"))
    assert error_code(dangling.value) == "InvalidResourceReference"

    # A subnet PUT without routeTable removes the association (PUT replaces, as in ARM).
    net.subnets.begin_create_or_update(
        RG, "hybrid-vnet", "Hybrid_Subnet", mk_subnet("192.168.30.0/24")).result()
    assert [s.id.rsplit("/", 1)[-1] for s in net.route_tables.get(RG, "hybrid-rt").subnets] == [
        "Hybrid_Subnet_Dammy"]
    unsubscribe()
    assert any(c.resource_type == "Microsoft.Network/routeTables" and c.action == "put" for c in changes)
    vnet_changes = [c for c in changes if c.resource_type == "Microsoft.Network/virtualNetworks"]
    assert vnet_changes and vnet_changes[-1].body is not None


# -- network security groups ----------------------------------------------------------------------


def test_nsg_default_rules_security_rules_and_associations(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    create_rg(net, emulator)
    vnet = create_vnet(net)
    nsg = net.network_security_groups.begin_create_or_update(
        RG, "bridge-nsg",
        nsg_model([mk_rule(100, protocol="Tcp", port="5555", name="softether")]),
    ).result()
    assert sorted(r.name for r in nsg.default_security_rules) == sorted([
        "AllowVnetInBound", "AllowAzureLoadBalancerInBound", "DenyAllInBound",
        "AllowVnetOutBound", "AllowInternetOutBound", "DenyAllOutBound"])
    rule = net.security_rules.begin_create_or_update(
        RG, "bridge-nsg", "from-subnet",
        mk_rule(110, source="192.168.30.0/24"),
    ).result()
    assert rule.priority == 110
    assert sorted(some(r.name) for r in net.security_rules.list(RG, "bridge-nsg")) == ["from-subnet", "softether"]
    assert len(list(net.default_security_rules.list(RG, "bridge-nsg"))) == 6

    with pytest.raises(HttpResponseError) as conflict:
        net.security_rules.begin_create_or_update(
            RG, "bridge-nsg", "dup",
            mk_rule(110, access="Deny", protocol="Udp"))
    assert error_code(conflict.value) == "SecurityRuleConflict"
    with pytest.raises(HttpResponseError) as priority:
        net.security_rules.begin_create_or_update(
            RG, "bridge-nsg", "low",
            mk_rule(5000, direction="Outbound", protocol="Tcp", port="22"))
    assert error_code(priority.value) == "SecurityRuleInvalidPriority"

    nic = net.network_interfaces.begin_create_or_update(
        RG, "bridge-nic",
        nic_model(some(some(vnet.subnets)[0].id), nsg=nsg.id),
    ).result()
    net.subnets.begin_create_or_update(
        RG, "hybrid-vnet", "Hybrid_Subnet",
        mk_subnet("192.168.30.0/24", nsg=nsg.id),
    ).result()
    current = net.network_security_groups.get(RG, "bridge-nsg")
    assert [n.id for n in current.network_interfaces] == [nic.id]
    assert [s.id for s in current.subnets] == [vnet.subnets[0].id]
    with pytest.raises(HttpResponseError) as in_use:
        net.network_security_groups.begin_delete(RG, "bridge-nsg")
    assert error_code(in_use.value) == "InUseNetworkSecurityGroupCannotBeDeleted"


# -- budgets --------------------------------------------------------------------------------------


def test_budgets_at_both_scopes_with_etag_concurrency_and_spend(
    emulator: AzureEmulator, net: NetworkManagementClient, consumption: ConsumptionManagementClient
) -> None:
    create_rg(net, emulator)
    sub_scope = f"/subscriptions/{emulator.subscription_id}"
    rg_scope = f"{sub_scope}/resourceGroups/{RG}"
    created = consumption.budgets.create_or_update(sub_scope, "monthly-1000", budget_body(1000))
    assert some(created.properties).amount == 1000
    assert some(created.properties).time_grain == "Monthly"
    assert some(some(created.properties).notifications)["forecast_80"].threshold_type == "Forecasted"
    assert some(some(created.properties).current_spend).amount == 0
    assert created.e_tag

    updated = consumption.budgets.create_or_update(
        sub_scope, "monthly-1000", budget_body(1500, e_tag=created.e_tag))
    assert some(updated.properties).amount == 1500
    assert updated.e_tag != created.e_tag
    with pytest.raises(HttpResponseError) as stale:
        consumption.budgets.create_or_update(sub_scope, "monthly-1000", budget_body(2000, e_tag=created.e_tag))
    assert stale.value.status_code == 412
    assert some(consumption.budgets.get(sub_scope, "monthly-1000").properties).amount == 1500

    consumption.budgets.create_or_update(rg_scope, "rg-4000", budget_body(4000))
    assert [b.name for b in consumption.budgets.list(rg_scope)] == ["rg-4000"]
    # A subscription-scope list includes its resource groups' budgets (BudgetsList.json, below).
    assert sorted(some(b.name) for b in consumption.budgets.list(sub_scope)) == ["monthly-1000", "rg-4000"]
    rg_budget = consumption.budgets.get(rg_scope, "rg-4000")
    assert rg_budget.id == f"{rg_scope}/providers/Microsoft.Consumption/budgets/rg-4000"

    seeded = admin(emulator, "POST", "spend", json={
        "budget_id": updated.id, "current_spend": 1200.5, "forecast_spend": 3100, "unit": "JPY"})
    assert seeded.status_code == 200
    got = consumption.budgets.get(sub_scope, "monthly-1000")
    assert float(some(some(some(got.properties).current_spend).amount)) == 1200.5
    assert float(some(some(some(got.properties).forecast_spend).amount)) == 3100
    assert some(some(got.properties).current_spend).unit == "JPY"

    consumption.budgets.delete(rg_scope, "rg-4000")
    with pytest.raises(ResourceNotFoundError):
        consumption.budgets.get(rg_scope, "rg-4000")
    with pytest.raises(ResourceNotFoundError) as no_rg:
        consumption.budgets.get(f"{sub_scope}/resourceGroups/nope", "x")
    assert error_code(no_rg.value) == "ResourceGroupNotFound"


def test_budget_validation_matches_the_consumption_rp(
    emulator: AzureEmulator, consumption: ConsumptionManagementClient
) -> None:
    scope = f"/subscriptions/{emulator.subscription_id}"
    notification = {"enabled": True, "operator": "GreaterThan", "threshold": 50,
                    "contactEmails": ["ops@example.com"]}
    bad_start = budget_body()
    bad_start["properties"]["timePeriod"]["startDate"] = first_of_month().replace("-01T", "-15T")
    too_many = budget_body(notifications={f"n{i}": dict(notification) for i in range(6)})
    threshold = budget_body(notifications={"n": {**notification, "threshold": 1001}})
    no_contact = budget_body(notifications={"n": {**notification, "contactEmails": []}})
    bad_type = budget_body(notifications={"n": {**notification, "thresholdType": "Predicted"}})
    for body, text in ((bad_start, "first of the month"), (too_many, "up to 5"),
                       (threshold, "1000"), (no_contact, "contact"), (bad_type, "thresholdType")):
        with pytest.raises(HttpResponseError) as info:
            consumption.budgets.create_or_update(scope, "b", body)
        assert info.value.status_code == 400
        assert text in info.value.message
    created = consumption.budgets.create_or_update(scope, "b", budget_body())
    moved = budget_body(e_tag=created.e_tag)
    moved["properties"]["timePeriod"]["startDate"] = first_of_month(1)
    with pytest.raises(HttpResponseError) as start_change:
        consumption.budgets.create_or_update(scope, "b", moved)
    assert "Start date of budgets cannot be updated" in start_change.value.message


# -- paging, errors, api-version ------------------------------------------------------------------


def test_list_pages_follow_next_link(emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    create_rg(net, emulator)
    for index in range(5):
        emulator.create_route_table(RG, f"rt-{index}", LOCATION)
    emulator.configure(page_size=2)
    emulator.requests.reset()
    names = [t.name for t in net.route_tables.list(RG)]
    assert names == [f"rt-{i}" for i in range(5)]
    assert emulator.requests.count(method="GET", path_regex=r"/routeTables$") == 3
    assert len(list(net.route_tables.list_all())) == 5


def test_not_found_bodies(emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as no_rg:
        net.virtual_networks.get("missing-rg", "v")
    assert error_code(no_rg.value) == "ResourceGroupNotFound"
    create_rg(net, emulator)
    with pytest.raises(ResourceNotFoundError) as no_vnet:
        net.virtual_networks.get(RG, "missing")
    assert error_code(no_vnet.value) == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as no_parent:
        net.subnets.get(RG, "missing", "s")
    assert error_code(no_parent.value) == "ParentResourceNotFound"
    create_vnet(net)
    with pytest.raises(ResourceNotFoundError) as no_child:
        net.subnets.get(RG, "hybrid-vnet", "missing")
    assert no_child.value.status_code == 404
    # Deleting what does not exist is a 204 and the poller is satisfied at once.
    net.virtual_networks.begin_delete(RG, "missing").result()


def test_api_version_is_required_and_checked(
    emulator: AzureEmulator, net: NetworkManagementClient, credential: ClientSecretCredential
) -> None:
    create_rg(net, emulator)
    with pytest.raises(HttpResponseError) as invalid:
        net.virtual_networks.get(RG, "v", api_version="2099-01-01")
    assert invalid.value.status_code == 400
    assert error_code(invalid.value) == "InvalidApiVersionParameter"
    token = credential.get_token(f"{emulator.base_url}/.default").token
    missing = requests.get(
        f"{emulator.base_url}/subscriptions/{emulator.subscription_id}/resourceGroups/{RG}",
        headers={"Authorization": f"Bearer {token}"}, verify=emulator.ca_bundle, timeout=10)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"
    # The versions the installed SDKs send by default are accepted.
    create_vnet(net)
    assert net.virtual_networks.get(RG, "hybrid-vnet").name == "hybrid-vnet"


# -- faults, counting, persistence ----------------------------------------------------------------


def test_injected_429_is_retried_by_the_sdk_retry_policy(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    create_rg(net, emulator)
    create_vnet(net)
    fault = admin(emulator, "POST", "faults",
                  json={"method": "GET", "path_regex": r"/virtualNetworks/hybrid-vnet$", "status": 429, "count": 2})
    assert fault.status_code == 201 and fault.json()["retry_after"] == 1
    emulator.requests.reset()
    assert net.virtual_networks.get(RG, "hybrid-vnet").name == "hybrid-vnet"
    summary = emulator.requests.summary(path_regex=r"/virtualNetworks/hybrid-vnet$")
    assert summary["total"] == 3
    assert summary["by_status"] == {"429": 2, "200": 1}
    assert admin(emulator, "GET", "faults").json()["value"][0]["hits"] == 2


def test_injected_500_on_put_is_retried(emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    create_rg(net, emulator)
    emulator.faults.add(method="PUT", path_regex=r"/routeTables/", status=500, count=1)
    table = net.route_tables.begin_create_or_update(RG, "rt", route_table_model()).result()
    assert table.provisioning_state == "Succeeded"
    assert emulator.requests.summary(method="PUT", path_regex=r"/routeTables/")["by_status"] == {"500": 1, "201": 1}


def test_request_counting_admin_api(emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    create_rg(net, emulator)
    assert admin(emulator, "POST", "requests/reset").status_code == 204
    create_vnet(net)
    net.virtual_networks.get(RG, "hybrid-vnet")
    counts = admin(emulator, "GET", "requests").json()
    assert counts["mutating"] == 1
    assert counts["by_method"] == {"PUT": 1, "GET": 4}  # 2 polls, final GET, explicit GET
    assert admin(emulator, "GET", "requests", params={"kind": "mutating"}).json()["total"] == 1
    assert admin(emulator, "GET", "requests",
                 params={"path_regex": "/operations/", "method": "GET"}).json()["total"] == 2
    state = admin(emulator, "GET", "state").json()
    assert [r["name"] for r in state["resources"]] == [RG, "hybrid-vnet"]


def test_state_persists_across_restarts(tmp_path: Path) -> None:
    state_dir = tmp_path / "azure"
    first = AzureEmulator(state_dir, port=0)
    first.start()
    try:
        credential = azure_credential(first)
        net = NetworkManagementClient(credential, first.subscription_id, **arm_kwargs(first))
        create_rg(net, first)
        create_vnet(net)
        ConsumptionManagementClient(credential, first.subscription_id, **arm_kwargs(first)).budgets \
            .create_or_update(f"/subscriptions/{first.subscription_id}", "b", budget_body())
        old_token = credential.get_token(f"{first.base_url}/.default").token
        identity = (first.subscription_id, first.tenant_id, first.client_id, first.client_secret)
        ca = Path(first.ca_bundle).read_bytes()
    finally:
        first.stop()
    assert (state_dir / "state.json").stat().st_mode & 0o077 == 0

    second = AzureEmulator(state_dir, port=0)
    second.start()
    try:
        assert (second.subscription_id, second.tenant_id, second.client_id, second.client_secret) == identity
        assert Path(second.ca_bundle).read_bytes() == ca
        net = NetworkManagementClient(azure_credential(second), second.subscription_id, **arm_kwargs(second))
        assert net.virtual_networks.get(RG, "hybrid-vnet").subnets[0].name == "Hybrid_Subnet"
        budgets = ConsumptionManagementClient(azure_credential(second), second.subscription_id,
                                              **arm_kwargs(second)).budgets
        assert some(budgets.get(f"/subscriptions/{second.subscription_id}", "b").properties).amount == 1000
        # A token issued before the restart is still valid, as an Entra token would be.
        reuse = requests.get(f"{second.base_url}{rg_path(second)}", headers={"Authorization": f"Bearer {old_token}"},
                             verify=second.ca_bundle, timeout=10)
        assert reuse.status_code == 200
    finally:
        second.stop()


def test_stopped_emulator_answers_nothing(emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    create_rg(net, emulator)
    emulator.stop()
    # Kept-alive connections are cut and the port is closed: the client cannot connect.
    with pytest.raises(ServiceRequestError):
        net.send_request(HttpRequest("GET", rg_path(emulator)), retry_total=0)


def test_concurrent_writers_keep_state_consistent(emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    create_rg(net, emulator)
    create_vnet(net)
    errors: list[BaseException] = []

    def add_route(index: int) -> None:
        try:
            net.routes.begin_create_or_update(
                RG, "rt", f"r{index}", mk_route(f"10.{index}.0.0/16", "None")
            ).result()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    net.route_tables.begin_create_or_update(RG, "rt", route_table_model()).result()
    threads = [threading.Thread(target=add_route, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(some(r.name) for r in net.routes.list(RG, "rt")) == [f"r{i}" for i in range(6)]


# -- fidelity to the published specifications -----------------------------------------------------


def test_ecmp_routes_follow_route_next_hop_ecmp(emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    """nextHopType VirtualApplianceEcmp with nextHop.nextHopIpAddresses (2 to 64 addresses).

    As azure-mgmt-network 33.1 models it at api-version 2026-03-01 (RoutePropertiesFormat.next_hop:
    "Only allowed when nextHopType is VirtualApplianceEcmp"; RouteNextHopEcmp: "Must contain between
    2 and 64 IP addresses"), and as the Microsoft.Network 2025-07-01 examples
    RouteTableCreateWithEcmpRoute.json / RouteTableRouteCreateEcmp.json write it.
    """
    create_rg(net, emulator)
    ecmp = {"addressPrefix": "10.1.0.0/16", "nextHopType": "VirtualApplianceEcmp",
            "nextHop": {"nextHopIpAddresses": ["10.0.0.4", "10.0.0.5", "10.0.0.6"]}}
    table = net.route_tables.begin_create_or_update(
        RG, "testrt-ecmp", nm.RouteTable({"location": LOCATION, "properties": {
            "disableBgpRoutePropagation": False, "routes": [{"name": "ecmp-route", "properties": ecmp}]}}),
    ).result()
    (route,) = table.as_dict()["properties"]["routes"]
    assert route["properties"]["nextHopType"] == "VirtualApplianceEcmp"
    assert route["properties"]["nextHop"] == {"nextHopIpAddresses": ["10.0.0.4", "10.0.0.5", "10.0.0.6"]}
    assert "nextHopIpAddress" not in route["properties"]
    # The child PUT (Routes_CreateOrUpdate) takes the same shape; the typed model reads it back.
    child = net.routes.begin_create_or_update(RG, "testrt-ecmp", "ecmp-2", nm.Route({"properties": {
        **ecmp, "addressPrefix": "10.2.0.0/16"}})).result()
    assert some(child.next_hop).next_hop_ip_addresses == ["10.0.0.4", "10.0.0.5", "10.0.0.6"]

    def refused(props: dict[str, Any]) -> str | None:
        with pytest.raises(HttpResponseError) as info:
            net.routes.begin_create_or_update(RG, "testrt-ecmp", "bad", nm.Route({"properties": props}))
        assert info.value.status_code == 400
        return error_code(info.value)

    one = {**ecmp, "addressPrefix": "10.3.0.0/16", "nextHop": {"nextHopIpAddresses": ["10.0.0.4"]}}
    assert refused(one) == "InvalidNextHopIpAddresses"
    too_many = {**one, "nextHop": {"nextHopIpAddresses": [f"10.0.1.{i}" for i in range(65)]}}
    assert refused(too_many) == "InvalidNextHopIpAddresses"
    assert refused({**one, "nextHop": {"nextHopIpAddresses": ["10.0.0.4", "nope"]}}) == "InvalidNextHopIpAddress"
    assert refused({**ecmp, "addressPrefix": "10.3.0.0/16", "nextHop": None}) == "InvalidNextHopIpAddresses"
    assert refused({**ecmp, "addressPrefix": "10.3.0.0/16", "nextHopIpAddress": "10.0.0.4"}) == (
        "NextHopIpAddressNotAllowed")
    assert refused({"addressPrefix": "10.3.0.0/16", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.0.4",
                    "nextHop": {"nextHopIpAddresses": ["10.0.0.4", "10.0.0.5"]}}) == "NextHopNotAllowed"


def test_budget_list_at_subscription_scope_includes_resource_group_budgets(
    emulator: AzureEmulator, net: NetworkManagementClient, consumption: ConsumptionManagementClient
) -> None:
    """Budgets_List at a subscription returns the subscription's budgets AND those of its resource
    groups, each with its own id: Microsoft.Consumption/stable/2024-08-01/examples/BudgetsList.json
    (scope "subscriptions/{id}", answering a MYDEVTESTRG budget and a subscription budget, both
    named TestBudget). A resource group's list holds only its own.
    """
    create_rg(net, emulator)
    create_rg(net, emulator, "other-rg")
    sub_scope = f"/subscriptions/{emulator.subscription_id}"
    for scope in (sub_scope, f"{sub_scope}/resourceGroups/{RG}", f"{sub_scope}/resourceGroups/other-rg"):
        consumption.budgets.create_or_update(scope, "TestBudget", budget_body())
    listed = sorted(some(b.id).lower() for b in consumption.budgets.list(sub_scope))
    assert listed == sorted(f"{s}/providers/Microsoft.Consumption/budgets/TestBudget".lower() for s in (
        sub_scope, f"{sub_scope}/resourceGroups/{RG}", f"{sub_scope}/resourceGroups/other-rg"))
    assert [some(b.id).lower() for b in consumption.budgets.list(f"{sub_scope}/resourceGroups/{RG}")] == [
        f"{sub_scope}/resourceGroups/{RG}/providers/Microsoft.Consumption/budgets/TestBudget".lower()]


def test_deleting_a_missing_budget_is_a_404(
    emulator: AzureEmulator, net: NetworkManagementClient, consumption: ConsumptionManagementClient
) -> None:
    """Budgets_Delete (consumption.json 2024-08-01) declares 200 ("OK. The request has succeeded.",
    example DeleteBudget.json) and otherwise the default ErrorResponse; no 204. A missing budget
    answers 404 ResourceNotFound, as its GET does, which the SDK raises as ResourceNotFoundError.
    """
    create_rg(net, emulator)
    scope = f"/subscriptions/{emulator.subscription_id}"
    consumption.budgets.create_or_update(scope, "b", budget_body())
    consumption.budgets.delete(scope, "b")  # 200
    with pytest.raises(ResourceNotFoundError) as missing:
        consumption.budgets.delete(scope, "b")
    assert missing.value.status_code == 404
    assert error_code(missing.value) == "ResourceNotFound"


def test_network_names_follow_the_resource_name_rules(emulator: AzureEmulator, net: NetworkManagementClient) -> None:
    """Microsoft.Network routeTables, routes, networkSecurityGroups and securityRules: 1-80
    characters of alphanumerics, '_', '.', '-', starting alphanumeric and ending alphanumeric or
    '_' (learn.microsoft.com, azure-resource-manager/management/resource-name-rules). The
    network RP refuses other names with 400 InvalidResourceName.
    """
    create_rg(net, emulator)
    net.route_tables.begin_create_or_update(RG, "rt", route_table_model()).result()
    ok = ["a", "A" * 80, "route_", "r.1-x_y", "9lives"]
    for name in ok:
        route = net.routes.begin_create_or_update(RG, "rt", name, mk_route(f"10.{ok.index(name)}.0.0/16", "None"))
        assert route.result().name == name
    bad = ["A" * 81, "ends-with-dash-", "ends.with.dot.", "_leading", "-leading", "has space", "ümlaut"]
    for name in bad:
        with pytest.raises(HttpResponseError) as refused:
            net.routes.begin_create_or_update(RG, "rt", name, mk_route("10.200.0.0/16", "None"))
        assert (refused.value.status_code, error_code(refused.value)) == (400, "InvalidResourceName"), name
    # Inline in a table PUT, in an NSG's rules, and for the top-level resource itself.
    with pytest.raises(HttpResponseError) as inline:
        net.route_tables.begin_create_or_update(
            RG, "rt", route_table_model([mk_route("10.9.0.0/16", "None", name="x-")]))
    assert error_code(inline.value) == "InvalidResourceName"
    with pytest.raises(HttpResponseError) as rule:
        net.network_security_groups.begin_create_or_update(RG, "nsg", nsg_model([mk_rule(100, name="r" * 81)]))
    assert error_code(rule.value) == "InvalidResourceName"
    with pytest.raises(HttpResponseError) as top:
        net.route_tables.begin_create_or_update(RG, "table-", route_table_model())
    assert error_code(top.value) == "InvalidResourceName"
    assert sorted(some(r.name) for r in net.routes.list(RG, "rt")) == sorted(ok)


def test_injected_operation_failures_end_the_async_operation(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    """A long-running operation can end Failed or Canceled: the Azure-AsyncOperation status
    resource then carries status and error (ARM async-operations protocol; ProvisioningState
    in network.json lists Failed and Canceled), and the network RP keeps the goal state in
    provisioningState Failed. Injected through POST /_emulator/faults with operation_status.
    """
    create_rg(net, emulator)
    injected = admin(emulator, "POST", "faults", json={
        "method": "PUT", "path_regex": "/routeTables/rt$", "operation_status": "Failed",
        "code": "InternalServerError", "message": "The route table could not be programmed."})
    assert injected.status_code == 201 and injected.json()["operation_status"] == "Failed"
    poller = net.route_tables.begin_create_or_update(
        RG, "rt", route_table_model([mk_route("10.1.0.0/16", "None", name="r1")]))
    with pytest.raises(HttpResponseError) as failed:
        poller.result()
    assert error_code(failed.value) == "InternalServerError"
    assert "could not be programmed" in str(failed.value)
    table = net.route_tables.get(RG, "rt").as_dict()
    assert table["properties"]["provisioningState"] == "Failed"
    assert [r["properties"]["provisioningState"] for r in table["properties"]["routes"]] == ["Failed"]
    # The same PUT again succeeds (the fault was for one request).
    again = net.route_tables.begin_create_or_update(
        RG, "rt", route_table_model([mk_route("10.1.0.0/16", "None", name="r1")])).result()
    assert again.provisioning_state == "Succeeded"

    emulator.faults.add(method="DELETE", path_regex="/routes/r1$", operation_status="Canceled")
    with pytest.raises(HttpResponseError) as canceled:
        net.routes.begin_delete(RG, "rt", "r1").result()
    assert error_code(canceled.value) == "Canceled"
    assert some(net.routes.get(RG, "rt", "r1").provisioning_state) == "Canceled"  # still there

    with pytest.raises(ValueError):
        emulator.faults.add(method="PUT", operation_status="Exploded")


def test_another_operation_in_progress_is_a_409_the_sdk_does_not_retry(
    emulator: AzureEmulator, net: NetworkManagementClient
) -> None:
    """ARM refuses a write while another operation runs on the resource with 409
    AnotherOperationInProgress; azure-core's RetryPolicy retries 408/429/5xx, not 409."""
    create_rg(net, emulator)
    emulator.faults.add(method="PUT", path_regex="/routeTables/rt$", status=409)
    emulator.requests.reset()
    with pytest.raises(HttpResponseError) as busy:
        net.route_tables.begin_create_or_update(RG, "rt", route_table_model())
    assert (busy.value.status_code, error_code(busy.value)) == (409, "AnotherOperationInProgress")
    assert emulator.requests.count(method="PUT") == 1


def test_cloud_metadata_answers_without_a_token(emulator: AzureEmulator) -> None:
    """GET /metadata/endpoints is ARM's cloud discovery: the Azure CLI (az cloud register
    --endpoint-resource-manager) and Terraform (metadata_host) read it before they hold any
    credential, so it answers without an Authorization header; ARM resources still do not."""
    url = f"{emulator.base_url}/metadata/endpoints"
    plain = requests.get(url, params={"api-version": "2022-09-01"}, verify=emulator.ca_bundle, timeout=10)
    assert "authorization" not in {k.lower() for k in plain.request.headers}
    assert plain.status_code == 200
    cloud = plain.json()
    assert cloud["resourceManager"].rstrip("/") == emulator.base_url
    assert cloud["authentication"]["loginEndpoint"].rstrip("/") == emulator.authority
    assert f"{emulator.base_url}/" in cloud["authentication"]["audiences"]
    listed = requests.get(url, params={"api-version": "2019-05-01"}, verify=emulator.ca_bundle, timeout=10)
    assert listed.status_code == 200 and [c["resourceManager"] for c in listed.json()] == [cloud["resourceManager"]]
    missing = requests.get(url, verify=emulator.ca_bundle, timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "MissingApiVersionParameter")
    arm = requests.get(f"{emulator.base_url}/subscriptions?api-version=2022-12-01", verify=emulator.ca_bundle,
                       timeout=10)
    assert (arm.status_code, arm.json()["error"]["code"]) == (401, "AuthenticationFailed")
