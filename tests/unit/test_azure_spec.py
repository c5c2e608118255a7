"""The swagger -> JSON Schema resolver (tests/support/azure_spec.py) and the vendored spec excerpts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.consumption import models as consumption_models
from azure.mgmt.network import models as network_models

from tests.support.azure_spec import CONSUMPTION_DIR, NETWORK_DIR, SpecSet, conformance_problems

# Two small documents written for these tests, shaped like the published specs: a cross-file
# allOf base, a flattened "properties" object, readOnly, x-nullable, a missing target, a cycle.
BASE = {"swagger": "2.0", "definitions": {
    "SubResource": {"properties": {"id": {"type": "string"}}, "x-ms-azure-resource": True},
    "State": {"type": "string", "readOnly": True, "enum": ["Succeeded", "Failed"],
              "x-ms-enum": {"name": "State", "modelAsString": True}},
}}
THING = {"swagger": "2.0", "definitions": {
    "ThingProperties": {
        "properties": {
            "size": {"type": "integer", "format": "int32", "description": "ignored"},
            "state": {"readOnly": True, "$ref": "./base.json#/definitions/State"},
            "peer": {"$ref": "#/definitions/Thing"},
            "length": {"type": "integer", "x-nullable": True},
            "created": {"type": "string", "format": "date-time"},
            "gadget": {"$ref": "./gadget.json#/definitions/Gadget"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["size"],
    },
    "Thing": {
        "properties": {
            "properties": {"x-ms-client-flatten": True, "$ref": "#/definitions/ThingProperties"},
            "name": {"type": "string"},
        },
        "allOf": [{"$ref": "./base.json#/definitions/SubResource"}],
    },
}}


@pytest.fixture
def toy(tmp_path: Path) -> SpecSet:
    (tmp_path / "base.json").write_text(json.dumps(BASE))
    (tmp_path / "thing.json").write_text(json.dumps(THING))
    return SpecSet.load(tmp_path)


def thing(**props: Any) -> dict[str, Any]:
    return {"id": "/things/a", "name": "a", "properties": {"size": 1, **props}}


def test_a_conforming_body_has_no_problems(toy: SpecSet) -> None:
    body = thing(state="Succeeded", length=None, created="2026-12-01T00:00:00Z", labels={"k": "v"},
                 peer=thing(state="Failed"))
    assert conformance_problems(toy, "thing.json", "Thing", body) == []


def test_allof_base_properties_come_from_the_other_file(toy: SpecSet) -> None:
    merged = toy.definitions["thing.json:Thing"]
    assert sorted(merged["properties"]) == ["id", "name", "properties"]
    assert toy.errors("thing.json", "Thing", {"id": 7}) == ["id: 7 is not of type 'string'"]


def test_flattened_properties_stay_nested_on_the_wire(toy: SpecSet) -> None:
    # x-ms-client-flatten changes SDK classes only: a flattened "size" at the top is undeclared.
    assert toy.undeclared("thing.json", "Thing", {"size": 1}) == ["/size"]
    assert toy.errors("thing.json", "Thing", {"properties": {}}) == [
        "properties: 'size' is a required property"
    ]


def test_enum_type_and_format_violations_are_reported_with_their_path(toy: SpecSet) -> None:
    body = thing(state="Sideways", created="yesterday", peer=thing(size="big"))
    assert toy.errors("thing.json", "Thing", body) == [
        "properties/created: 'yesterday' is not a 'date-time'",
        "properties/peer/properties/size: 'big' is not of type 'integer'",
        "properties/state: 'Sideways' is not one of ['Succeeded', 'Failed']",
    ]


def test_x_nullable_allows_null_and_nothing_else_does(toy: SpecSet) -> None:
    assert toy.errors("thing.json", "Thing", thing(length=None)) == []
    assert toy.errors("thing.json", "Thing", {**thing(), "name": None}) == ["name: None is not of type 'string'"]


def test_undeclared_fields_are_found_at_any_depth_but_maps_are_open(toy: SpecSet) -> None:
    body = thing(invented=True, peer=thing(alsoInvented=1), labels={"any-key": "fine"})
    body["topLevelExtra"] = "x"
    assert toy.undeclared("thing.json", "Thing", body) == [
        "/properties/invented", "/properties/peer/properties/alsoInvented", "/topLevelExtra",
    ]


def test_a_reference_outside_the_excerpt_is_opaque_and_listed(toy: SpecSet) -> None:
    assert toy.opaque == {"gadget.json#/definitions/Gadget"}
    assert conformance_problems(toy, "thing.json", "Thing", thing(gadget={"anything": {"goes": 1}})) == []
    assert toy.errors("thing.json", "Thing", thing(gadget="not an object")) == [
        "properties/gadget: 'not an object' is not of type 'object'"
    ]


def test_unsupported_references_and_unknown_definitions_fail_loudly(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"definitions": {"A": {"$ref": "#/parameters/X"}}}))
    with pytest.raises(ValueError, match="unsupported"):
        SpecSet.load(tmp_path)
    (tmp_path / "a.json").write_text(json.dumps({"definitions": {}}))
    with pytest.raises(KeyError, match="no definition 'Nope'"):
        SpecSet.load(tmp_path).schema_for("a.json", "Nope")


# -- the vendored excerpts -------------------------------------------------------------------------


def test_the_excerpts_stop_only_at_the_listed_references() -> None:
    # Everything the emulator returns lies inside the excerpt; these targets are never
    # answered by it (tests/fixtures/azure-specs/README.md says why each is left out).
    assert SpecSet.load(CONSUMPTION_DIR).opaque == set()
    assert SpecSet.load(NETWORK_DIR).opaque == {
        "applicationGateway.json#/definitions/ApplicationGatewayBackendAddressPool",
        "applicationGateway.json#/definitions/ApplicationGatewayIPConfiguration",
        "applicationSecurityGroup.json#/definitions/ApplicationSecurityGroup",
        "loadBalancer.json#/definitions/BackendAddressPool",
        "loadBalancer.json#/definitions/InboundNatRule",
        "networkInterface.json#/definitions/NetworkInterfaceTapConfiguration",
        "networkProfile.json#/definitions/IPConfigurationProfile",
        "networkWatcher.json#/definitions/FlowLog",
        "privateEndpoint.json#/definitions/PrivateEndpoint",
        "privateLinkService.json#/definitions/PrivateLinkService",
        "publicIpAddress.json#/definitions/PublicIPAddress",
        "serviceEndpointPolicy.json#/definitions/ServiceEndpointPolicy",
        "virtualNetwork.json#/definitions/IpamPoolPrefixAllocation",
        "virtualNetwork.json#/definitions/ResourceNavigationLink",
        "virtualNetwork.json#/definitions/ServiceAssociationLink",
        "virtualNetwork.json#/definitions/VirtualNetworkPeering",
        "virtualNetworkTap.json#/definitions/VirtualNetworkTap",
    }


def test_the_route_table_spec_catches_an_invented_field_and_an_unknown_next_hop() -> None:
    specs = SpecSet.load(NETWORK_DIR)
    table = {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt",
        "name": "rt", "type": "Microsoft.Network/routeTables", "location": "japaneast", "etag": 'W/"1"',
        "properties": {"provisioningState": "Succeeded", "routes": [{
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt/routes/r",
            "name": "r", "properties": {"addressPrefix": "10.0.0.0/16", "nextHopType": "Appliance",
                                        "nextHopIp": "192.168.30.10"},
        }]},
    }
    assert conformance_problems(specs, "routeTable.json", "RouteTable", table) == [
        "schema properties/routes/0/properties/nextHopType: 'Appliance' is not one of "
        "['VirtualNetworkGateway', 'VnetLocal', 'Internet', 'VirtualAppliance', 'None']",
        "undeclared /properties/routes/0/properties/nextHopIp",
    ]


def _rest_names(model: type) -> set[str]:
    # The generated models build their field table on first use; the REST names are the wire keys.
    model()
    return {field._rest_name for field in model._attr_to_rest_field.values()}  # type: ignore[attr-defined]


# Properties the installed SDKs (network 2026-03-01, consumption 2024-08-01) know and the
# excerpts (network 2024-05-01) do not: what later api-versions added. A new SDK that adds more
# fails here, which is the cue to move the excerpts to the newer version.
LATER_ADDITIONS = {
    "RouteTablePropertiesFormat": {"disablePeeringRoute"},
    "RoutePropertiesFormat": {"nextHop"},
    "SubnetPropertiesFormat": {"serviceGateway"},
    "VirtualNetworkPropertiesFormat": {"defaultPublicNatGateway", "summarizedGatewayPrefixes"},
    "Budget": {"systemData"},
    "ProxyResource": {"systemData"},
}


@pytest.mark.parametrize(("directory", "models"), [(NETWORK_DIR, network_models),
                                                   (CONSUMPTION_DIR, consumption_models)])
def test_the_excerpts_declare_what_the_sdk_models_generated_from_the_specs_declare(
    directory: Path, models: Any
) -> None:
    # The excerpts were copied by hand; the SDK is generated from the same specs. Every name
    # the excerpt declares must exist in the SDK model (a typo would not), and the SDK may only
    # add the names later api-versions are known to have added.
    specs = SpecSet.load(directory)
    compared = 0
    for key, definition in specs.definitions.items():
        name = key.split(":", 1)[1]
        model = getattr(models, name, None)
        if model is None or "properties" not in definition:
            continue  # enums, list results and error bodies have no public SDK model
        sdk = _rest_names(model)
        spec = set(definition["properties"])
        if name == "ProxyResource":
            spec -= {"eTag"}  # the consumption SDK declares eTag on Budget itself
        assert spec <= sdk, f"{key}: not in the SDK model: {sorted(spec - sdk)}"
        assert sdk - spec == LATER_ADDITIONS.get(name, set()), key
        compared += 1
    assert compared >= (20 if directory == NETWORK_DIR else 8)
