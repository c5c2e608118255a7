"""Pure logic of the Azure ARM emulator: the ARM layer over an in-memory store, driven with
synthetic requests (no sockets, no files), plus fault injection, request counting and tokens.
The same behaviour through the real SDKs over HTTPS is in tests/integration/.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hybridctl_lab.azure_emulator import ArmConfig, ArmError, ArmService, FaultInjector, RequestLog, Store
from hybridctl_lab.azure_emulator.arm import Request, Response
from hybridctl_lab.azure_emulator.store import StoreChange
from hybridctl_lab.azure_emulator.tokens import TokenIssuer

SUB = "11111111-1111-4111-8111-111111111111"
TENANT = "22222222-2222-4222-8222-222222222222"
BASE = "https://127.0.0.1:5512"
TODAY = dt.date(2025, 5, 17)
RG_ID = f"/subscriptions/{SUB}/resourceGroups/rg"
NET = f"{RG_ID}/providers/Microsoft.Network"
VERSIONS = {"Microsoft.Network": "2024-07-01", "Microsoft.Consumption": "2024-08-01"}


def version_for(path: str) -> str:
    for namespace, version in VERSIONS.items():
        if f"/providers/{namespace}".lower() in path.lower():
            return version
    return "2021-04-01"


def call(arm: ArmService, method: str, path: str, body: Any = None, **query: str) -> Response:
    split = urlsplit(path)
    params = {k: v[0] for k, v in parse_qs(split.query).items()}
    params.setdefault("api-version", version_for(split.path))
    params.update(query)
    request = Request(
        method=method,
        path=split.path,
        raw_path=split.path,
        query=params,
        headers={},
        body=b"" if body is None else json.dumps(body).encode(),
        base_url=BASE,
    )
    return arm.handle(request)


def error_of(arm: ArmService, method: str, path: str, body: Any = None, **query: str) -> ArmError:
    with pytest.raises(ArmError) as info:
        call(arm, method, path, body, **query)
    return info.value


@pytest.fixture
def arm() -> ArmService:
    service = ArmService(Store(None), SUB, TENANT, ArmConfig(lro_polls=1, page_size=50), today=lambda: TODAY)
    call(service, "PUT", RG_ID, {"location": "Japan East"})
    return service


def finish(arm: ArmService) -> None:
    arm.complete_all()


def make_vnet(arm: ArmService, subnets: dict[str, str] | None = None) -> None:
    entries = [{"name": n, "properties": {"addressPrefix": p}} for n, p in (subnets or {"s1": "10.0.1.0/24"}).items()]
    call(arm, "PUT", f"{NET}/virtualNetworks/v",
         {"location": "japaneast", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                                                 "subnets": entries}})
    finish(arm)


def make_nic(arm: ArmService, name: str, ip: str | None = None, subnet: str = "s1") -> Response:
    config: dict[str, Any] = {"subnet": {"id": f"{NET}/virtualNetworks/v/subnets/{subnet}"}}
    if ip:
        config.update({"privateIPAllocationMethod": "Static", "privateIPAddress": ip})
    body = {"location": "japaneast", "properties": {"ipConfigurations": [{"name": "c", "properties": config}]}}
    response = call(arm, "PUT", f"{NET}/networkInterfaces/{name}", body)
    finish(arm)
    return response


# -- resource groups and ARM basics ---------------------------------------------------------------


def test_location_is_normalized_and_rg_lookup_is_case_insensitive(arm: ArmService) -> None:
    body = call(arm, "GET", f"/subscriptions/{SUB}/resourcegroups/RG").body
    assert body["location"] == "japaneast"
    assert body["id"] == RG_ID


def test_api_version_missing_invalid_and_unknown_subscription(arm: ArmService) -> None:
    request = Request("GET", RG_ID, RG_ID, {}, {}, b"", BASE)
    with pytest.raises(ArmError) as missing:
        arm.handle(request)
    assert (missing.value.status, missing.value.code) == (400, "MissingApiVersionParameter")
    invalid = error_of(arm, "GET", f"{NET}/virtualNetworks/v", **{"api-version": "2021-04-01-preview"})
    assert invalid.code == "InvalidApiVersionParameter"
    assert "2026-03-01" in invalid.message  # the supported list includes the SDK's default
    unknown = error_of(arm, "GET", f"/subscriptions/{TENANT}/resourceGroups/rg")
    assert (unknown.status, unknown.code) == (404, "SubscriptionNotFound")


def test_invalid_json_and_missing_location(arm: ArmService) -> None:
    request = Request("PUT", f"{NET}/routeTables/t", f"{NET}/routeTables/t", {"api-version": "2024-07-01"}, {},
                      b"{not json", BASE)
    with pytest.raises(ArmError) as bad_json:
        arm.handle(request)
    assert bad_json.value.code == "InvalidRequestContent"
    assert error_of(arm, "PUT", f"{NET}/routeTables/t", {"properties": {}}).code == "LocationRequired"


def test_resource_group_delete_cascades_when_the_operation_completes(arm: ArmService) -> None:
    make_vnet(arm)
    deleted = call(arm, "DELETE", RG_ID)
    assert deleted.status == 202
    assert call(arm, "GET", RG_ID).body["properties"]["provisioningState"] == "Deleting"
    location = urlsplit(deleted.headers["Location"])
    assert call(arm, "GET", location.path).status == 202
    assert call(arm, "GET", location.path).status == 200
    assert error_of(arm, "GET", RG_ID).code == "ResourceGroupNotFound"
    assert arm.store.list() == []


# -- long-running operations ----------------------------------------------------------------------


def test_operation_completes_after_the_configured_number_of_polls(arm: ArmService) -> None:
    arm.configure(lro_polls=2, lro_retry_after_ms=2000)
    created = call(arm, "PUT", f"{NET}/routeTables/t", {"location": "japaneast"})
    assert created.status == 201
    assert created.headers["Retry-After"] == "2"
    assert created.body["properties"]["provisioningState"] == "Updating"
    status_path = urlsplit(created.headers["Azure-AsyncOperation"]).path
    seen = [call(arm, "GET", status_path).body["status"] for _ in range(3)]
    assert seen == ["InProgress", "InProgress", "Succeeded"]
    assert call(arm, "GET", f"{NET}/routeTables/t").body["properties"]["provisioningState"] == "Succeeded"


def test_short_retry_after_uses_the_milliseconds_header(arm: ArmService) -> None:
    arm.configure(lro_retry_after_ms=150)
    created = call(arm, "PUT", f"{NET}/routeTables/t", {"location": "japaneast"})
    assert created.headers["retry-after-ms"] == "150"
    assert "Retry-After" not in created.headers


def test_unpolled_operation_completes_after_its_deadline(arm: ArmService) -> None:
    arm.configure(lro_auto_complete_s=0.0)
    call(arm, "PUT", f"{NET}/routeTables/t", {"location": "japaneast"})
    time.sleep(0.01)
    arm.complete_due()
    table = arm.store.get(f"{NET}/routeTables/t")
    assert table is not None and table["properties"]["provisioningState"] == "Succeeded"


def test_delete_keeps_the_resource_deleting_until_the_operation_completes(arm: ArmService) -> None:
    call(arm, "PUT", f"{NET}/routeTables/t", {"location": "japaneast"})
    finish(arm)
    deleted = call(arm, "DELETE", f"{NET}/routeTables/t")
    assert deleted.status == 202
    assert "Location" in deleted.headers and "Azure-AsyncOperation" in deleted.headers
    assert call(arm, "GET", f"{NET}/routeTables/t").body["properties"]["provisioningState"] == "Deleting"
    finish(arm)
    assert error_of(arm, "GET", f"{NET}/routeTables/t").code == "ResourceNotFound"
    assert call(arm, "DELETE", f"{NET}/routeTables/t").status == 204


# -- paging ---------------------------------------------------------------------------------------


def test_list_pages_carry_api_version_and_skiptoken(arm: ArmService) -> None:
    for name in ("a", "b", "c"):
        call(arm, "PUT", f"{NET}/routeTables/{name}", {"location": "japaneast"})
    arm.configure(page_size=2)
    first = call(arm, "GET", f"{NET}/routeTables").body
    assert [t["name"] for t in first["value"]] == ["a", "b"]
    link = urlsplit(first["nextLink"])
    assert f"{link.scheme}://{link.netloc}" == BASE
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert query["api-version"] == "2024-07-01"
    second = call(arm, "GET", f"{link.path}?{link.query}").body
    assert [t["name"] for t in second["value"]] == ["c"]
    assert "nextLink" not in second


# -- network validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "code"),
    [
        ({"addressPrefix": "10.0.0.0/8", "nextHopType": "VirtualAppliance"}, "MissingNextHopIpAddress"),
        ({"addressPrefix": "10.0.0.0/8", "nextHopType": "VnetLocal", "nextHopIpAddress": "10.0.0.4"},
         "NextHopIpAddressNotAllowed"),
        ({"addressPrefix": "10.0.0.0/8", "nextHopType": "Gateway"}, "InvalidNextHopType"),
        ({"addressPrefix": "10.0.0.1/8", "nextHopType": "None"}, "InvalidCIDRNotation"),
        ({"addressPrefix": "10.0.0.0/8", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "x"},
         "InvalidNextHopIpAddress"),
    ],
)
def test_route_validation(arm: ArmService, route: dict[str, Any], code: str) -> None:
    body = {"location": "japaneast", "properties": {"routes": [{"name": "r", "properties": route}]}}
    assert error_of(arm, "PUT", f"{NET}/routeTables/t", body).code == code


def test_route_next_hop_type_is_canonicalized_and_service_tags_accepted(arm: ArmService) -> None:
    body = {"location": "japaneast", "properties": {"routes": [
        {"name": "r", "properties": {"addressPrefix": "AzureCloud", "nextHopType": "internet"}}]}}
    route = call(arm, "PUT", f"{NET}/routeTables/t", body).body["properties"]["routes"][0]
    assert route["properties"]["nextHopType"] == "Internet"
    assert route["properties"]["addressPrefix"] == "AzureCloud"


def test_duplicate_route_prefixes_conflict(arm: ArmService) -> None:
    routes = [{"name": n, "properties": {"addressPrefix": "10.0.0.0/8", "nextHopType": "None"}} for n in "ab"]
    body = {"location": "japaneast", "properties": {"routes": routes}}
    assert error_of(arm, "PUT", f"{NET}/routeTables/t", body).code == "RouteConflict"


def test_dynamic_addresses_skip_reserved_ones_and_stick_to_their_nic(arm: ArmService) -> None:
    make_vnet(arm)
    make_nic(arm, "static", ip="10.0.1.4")
    first = make_nic(arm, "dyn").body["properties"]["ipConfigurations"][0]["properties"]
    assert first["privateIPAddress"] == "10.0.1.5"
    again = make_nic(arm, "dyn").body["properties"]["ipConfigurations"][0]["properties"]
    assert again["privateIPAddress"] == "10.0.1.5"


def test_subnet_in_use_cannot_be_removed_from_the_vnet(arm: ArmService) -> None:
    make_vnet(arm, {"s1": "10.0.1.0/24", "s2": "10.0.2.0/24"})
    make_nic(arm, "n", subnet="s1")
    only_s2 = [{"name": "s2", "properties": {"addressPrefix": "10.0.2.0/24"}}]
    body = {"location": "japaneast",
            "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": only_s2}}
    assert error_of(arm, "PUT", f"{NET}/virtualNetworks/v", body).code == "InUseSubnetCannotBeDeleted"
    assert error_of(arm, "DELETE", f"{NET}/virtualNetworks/v").code == "InUseSubnetCannotBeDeleted"


def test_references_must_be_in_the_same_region(arm: ArmService) -> None:
    make_vnet(arm)
    call(arm, "PUT", f"{NET}/routeTables/far", {"location": "westus"})
    body = {"properties": {"addressPrefix": "10.0.1.0/24", "routeTable": {"id": f"{NET}/routeTables/far"}}}
    assert error_of(arm, "PUT", f"{NET}/virtualNetworks/v/subnets/s1", body).code == "InvalidResourceReference"


def test_security_rule_validation(arm: ArmService) -> None:
    rule = {"protocol": "tcp", "access": "allow", "direction": "inbound", "priority": 200,
            "sourcePortRange": "*", "destinationPortRange": "5555",
            "sourceAddressPrefix": "VirtualNetwork", "destinationAddressPrefix": "*"}
    body = {"location": "japaneast", "properties": {"securityRules": [{"name": "r", "properties": rule}]}}
    created = call(arm, "PUT", f"{NET}/networkSecurityGroups/n", body).body
    stored = created["properties"]["securityRules"][0]["properties"]
    assert (stored["protocol"], stored["access"], stored["direction"]) == ("Tcp", "Allow", "Inbound")
    for change, code in (({"destinationPortRange": "70000"}, "SecurityRuleInvalidPortRange"),
                         ({"protocol": "gre"}, "SecurityRuleInvalidProtocol"),
                         ({"sourceAddressPrefix": "10.0.0.300/24"}, "SecurityRuleInvalidAddressPrefix"),
                         ({"destinationPortRanges": ["22"]}, "SecurityRuleParameterContainsUnsupportedValue")):
        bad = {"location": "japaneast",
               "properties": {"securityRules": [{"name": "r", "properties": {**rule, **change}}]}}
        assert error_of(arm, "PUT", f"{NET}/networkSecurityGroups/n", bad).code == code


def test_if_match_is_honoured(arm: ArmService) -> None:
    etag = call(arm, "PUT", f"{NET}/routeTables/t", {"location": "japaneast"}).body["etag"]
    request = Request("PUT", f"{NET}/routeTables/t", f"{NET}/routeTables/t", {"api-version": "2024-07-01"},
                      {"if-match": 'W/"stale"'}, json.dumps({"location": "japaneast"}).encode(), BASE)
    with pytest.raises(ArmError) as info:
        arm.handle(request)
    assert info.value.status == 412
    request.headers["if-match"] = etag
    assert arm.handle(request).status == 200


# -- budgets --------------------------------------------------------------------------------------


def budget(start: str = "2025-05-01T00:00:00Z", grain: str = "Monthly", **notification: Any) -> dict[str, Any]:
    note = {"enabled": True, "operator": "GreaterThan", "threshold": 80, "contactEmails": ["a@example.com"],
            **notification}
    return {"properties": {"category": "Cost", "amount": 1000, "timeGrain": grain,
                           "timePeriod": {"startDate": start}, "notifications": {"n": note}}}


BUDGETS = f"/subscriptions/{SUB}/providers/Microsoft.Consumption/budgets"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (budget(start="2025-04-01T00:00:00Z"), "prior to the current time grain period"),
        (budget(start="2026-06-01T00:00:00Z"), "twelve months"),
        (budget(start="2025-05-02T00:00:00Z"), "first of the month"),
        (budget(threshold=0), "greater than 0"),
        (budget(operator="LessThan"), "operator"),
        (budget(contactEmails=["not-an-email"]), "not a valid email"),
        (budget(contactGroups=["/subscriptions/x/resourceGroups/y/providers/Other/z"]), "action group"),
        (budget(grain="Weekly"), "timeGrain"),
    ],
)
def test_budget_validation(arm: ArmService, body: dict[str, Any], fragment: str) -> None:
    error = error_of(arm, "PUT", f"{BUDGETS}/b", body)
    assert (error.status, error.code) == (400, "400")
    assert fragment in error.message


def test_budget_defaults_and_quarterly_period_start(arm: ArmService) -> None:
    created = call(arm, "PUT", f"{BUDGETS}/b", budget(start="2025-04-01T00:00:00Z", grain="Quarterly"))
    assert created.status == 201
    props = created.body["properties"]
    assert props["timePeriod"]["endDate"] == "2035-04-01T00:00:00Z"
    assert props["notifications"]["n"]["thresholdType"] == "Actual"
    assert props["currentSpend"] == {"amount": 0, "unit": "USD"}


def test_budget_etag_and_spend_seeding(arm: ArmService) -> None:
    first = call(arm, "PUT", f"{BUDGETS}/b", budget()).body
    stale = {**budget(), "eTag": '"0000"'}
    error = error_of(arm, "PUT", f"{BUDGETS}/b", stale)
    assert (error.status, error.code) == (412, "PreconditionFailed")
    fresh = call(arm, "PUT", f"{BUDGETS}/b", {**budget(), "eTag": first["eTag"]})
    assert fresh.status == 200 and fresh.body["eTag"] != first["eTag"]
    seeded = arm.set_spend(first["id"], current=1234.5, forecast=4321, unit="JPY")
    assert seeded["properties"]["currentSpend"] == {"amount": 1234.5, "unit": "JPY"}
    assert call(arm, "GET", f"{BUDGETS}/b").body["properties"]["forecastSpend"] == {"amount": 4321, "unit": "JPY"}
    with pytest.raises(ArmError):
        arm.set_spend(f"{BUDGETS}/missing", current=1)


# -- store, faults, request log, tokens -----------------------------------------------------------


def test_store_subscribers_see_committed_changes_and_survive_a_broken_one(arm: ArmService) -> None:
    seen: list[StoreChange] = []

    def broken(_: list[StoreChange]) -> None:
        raise RuntimeError("subscriber bug")

    arm.store.subscribe(broken)
    unsubscribe = arm.store.subscribe(seen.extend)
    call(arm, "PUT", f"{NET}/routeTables/t", {"location": "japaneast"})
    assert [(c.action, c.resource_type) for c in seen] == [("put", "Microsoft.Network/routeTables")]
    unsubscribe()
    call(arm, "PUT", f"{NET}/routeTables/u", {"location": "japaneast"})
    assert len(seen) == 1


def test_failed_validation_changes_nothing(arm: ArmService) -> None:
    seen: list[StoreChange] = []
    arm.store.subscribe(seen.extend)
    before = arm.store.snapshot()["resources"]
    error_of(arm, "PUT", f"{NET}/routeTables/t", {"location": "japaneast", "properties": {"routes": [1]}})
    assert arm.store.snapshot()["resources"] == before
    assert seen == []


def test_fault_injector_matches_method_and_path_and_counts_down() -> None:
    faults = FaultInjector()
    fault = faults.add(method="put", path_regex=r"/routetables/", status=429, count=2)
    assert fault.retry_after == 1 and fault.code == "SubscriptionRequestsThrottled"
    assert faults.take("GET", "/x/routeTables/t") is None
    assert faults.take("PUT", "/x/routeTables/t") is not None
    assert faults.take("PUT", "/x/ROUTETABLES/t") is not None
    assert faults.take("PUT", "/x/routeTables/t") is None
    assert faults.list()[0]["hits"] == 2
    with pytest.raises(ValueError):
        faults.add(status=200)


def test_request_log_summary() -> None:
    log = RequestLog()
    log.record("PUT", "/a/virtualNetworks/v", RequestLog.kind_of("PUT", False), 201)
    log.record("GET", "/a/virtualNetworks/v", RequestLog.kind_of("GET", False), 200)
    log.record("POST", "/t/oauth2/v2.0/token", RequestLog.kind_of("POST", True), 200)
    summary = log.summary()
    assert (summary["total"], summary["mutating"], summary["read"], summary["auth"]) == (3, 1, 1, 1)
    assert log.count(path_regex="virtualnetworks") == 2
    assert log.count(method="get", kind="read") == 1
    log.reset()
    assert log.count() == 0


def test_tokens_are_checked_for_signature_expiry_tenant_and_audience() -> None:
    issuer = TokenIssuer(b"k" * 32, TENANT)
    token = issuer.issue("client", "https://127.0.0.1:5512")
    assert issuer.check(token, lambda aud: aud.startswith("https://127.0.0.1")).code is None
    assert issuer.check(token, lambda aud: False).code == "InvalidAuthenticationTokenAudience"
    assert TokenIssuer(b"x" * 32, TENANT).check(token, lambda aud: True).code == "InvalidAuthenticationToken"
    assert TokenIssuer(b"k" * 32, SUB).check(token, lambda aud: True).code == "InvalidAuthenticationTokenTenant"
    expired = issuer.issue("client", "https://127.0.0.1:5512", lifetime_s=-10)
    assert issuer.check(expired, lambda aud: True).code == "ExpiredAuthenticationToken"
    assert issuer.check("garbage", lambda aud: True).code == "InvalidAuthenticationToken"
