"""Microsoft.Network/publicIPAddresses: what `hybridctl leaks` needs to tell a used address from a billing one.

Registered into :data:`network.TYPES` (so PUT/GET/DELETE/list, long-running operations and etags
work as for every network resource). As in the network RP: ``publicIPAllocationMethod`` is
``Static`` or ``Dynamic`` (a Standard SKU must be Static: ``StandardSkuPublicIPAddressesMustBeStatic``),
a static address is allocated at once, ``ipConfiguration`` is a computed back-reference to the
NIC IP configuration that points at the address, and an address in use cannot be deleted
(``PublicIPAddressInUseCannotBeDeleted``). Addresses come from 198.51.100.0/24 (TEST-NET-2).
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from . import network
from .errors import ArmError, bad_request, invalid_format

PUBLIC_IP = "Microsoft.Network/publicIPAddresses"
POOL = ipaddress.ip_network("198.51.100.0/24")


def _users(lookup: network.Lookup, public_ip_id: str) -> list[str]:
    """Ids of the NIC IP configurations whose ``publicIPAddress`` points at ``public_ip_id``."""
    target = public_ip_id.lower()
    out = []
    for record in lookup.records():
        if str(record["type"]).lower() != network.NIC.lower():
            continue
        for config in record.get("properties", {}).get("ipConfigurations", []):
            ref = (config.get("properties", {}).get("publicIPAddress") or {}).get("id", "")
            if str(ref).lower() == target:
                out.append(str(config.get("id") or f"{record['id']}/ipConfigurations/{config['name']}"))
    return out


def _taken(lookup: network.Lookup) -> set[str]:
    return {
        str(r.get("properties", {}).get("ipAddress"))
        for r in lookup.records()
        if str(r["type"]).lower() == PUBLIC_IP.lower() and r.get("properties", {}).get("ipAddress")
    }


def normalize(
    lookup: network.Lookup, resource_id: str, body: dict[str, Any], existing: dict[str, Any] | None, location: str
) -> dict[str, Any]:
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise invalid_format(f"'properties' of {resource_id} must be an object.")
    props = copy.deepcopy(props)
    props.pop("ipConfiguration", None)  # read-only back-reference
    props.pop("provisioningState", None)
    sku = body.get("sku") or (existing or {}).get("_sku") or {"name": "Standard"}
    sku_name = str(sku.get("name", "Standard")) if isinstance(sku, dict) else "Standard"
    method = str(props.get("publicIPAllocationMethod") or ("Static" if sku_name == "Standard" else "Dynamic"))
    if method.lower() not in ("static", "dynamic"):
        raise bad_request(
            "InvalidRequestFormat", f"publicIPAllocationMethod of {resource_id} must be Static or Dynamic."
        )
    method = method.capitalize()
    if sku_name.lower() == "standard" and method != "Static":
        raise bad_request(
            "StandardSkuPublicIPAddressesMustBeStatic",
            f"Standard sku publicIp /subscriptions/.../{resource_id.rsplit('/', 1)[-1]} must have AllocationMethod "
            "set to Static.",
        )
    old = (existing or {}).get("properties", {}).get("ipAddress")
    if method == "Static":
        if old:
            props["ipAddress"] = old
        else:
            taken = _taken(lookup)
            free = next((str(h) for h in POOL.hosts() if str(h) not in taken), None)
            if free is None:
                raise ArmError(409, "PublicIPCountLimitReached", "No public IP address is left in the lab's pool.")
            props["ipAddress"] = free
    else:
        props.pop("ipAddress", None)
    props["publicIPAllocationMethod"] = method
    props.setdefault("publicIPAddressVersion", "IPv4")
    props.setdefault("idleTimeoutInMinutes", 4)
    props["_sku"] = {"name": sku_name, "tier": "Regional"}
    return props


def render(out: dict[str, Any], lookup: network.Lookup) -> dict[str, Any]:
    """Add ``sku`` and the computed ``ipConfiguration`` back-reference."""
    if str(out.get("type", "")).lower() != PUBLIC_IP.lower():
        return out
    props = out.setdefault("properties", {})
    sku = props.pop("_sku", None)
    if sku:
        out["sku"] = sku
    users = _users(lookup, str(out["id"]))
    if users:
        props["ipConfiguration"] = {"id": users[0]}
    return out


def check_delete(lookup: network.Lookup, record: dict[str, Any]) -> None:
    if str(record["type"]).lower() != PUBLIC_IP.lower():
        return
    users = _users(lookup, str(record["id"]))
    if users:
        raise bad_request(
            "PublicIPAddressInUseCannotBeDeleted",
            f"Public IP address {record['id']} can not be deleted since it is still allocated to resource "
            f"{users[0]}. In order to delete the public IP, disassociate/detach the Public IP address from the "
            "resource.",
        )


def register() -> None:
    """Serve publicIPAddresses like the other network resource types (idempotent)."""
    network.TYPES.setdefault("publicipaddresses", network.TypeSpec(PUBLIC_IP, {}, normalize))


__all__ = ["PUBLIC_IP", "check_delete", "normalize", "register", "render"]
