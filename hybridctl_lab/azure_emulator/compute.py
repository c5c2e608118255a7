"""Microsoft.Compute/disks: managed disks, attached (``managedBy`` a VM) or not.

Enough of the compute RP for `hybridctl leaks`: PUT / GET / DELETE / list at resource-group
scope and list at subscription scope. As in Azure, ``managedBy`` and ``diskState`` are
read-only (the VM attach sets them; the lab seeds them in-process with :func:`attach`), a PUT
needs ``creationData.createOption`` and ``diskSizeGB`` for an empty disk, a disk attached to a
VM cannot be deleted (409 ``OperationNotAllowed``), and PUT/DELETE complete synchronously
(the RP may also answer 202; 200/201/204 are equally valid answers).
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from typing import Any

from .errors import ArmError, bad_request

DISK = "Microsoft.Compute/disks"
SKUS = (
    "Standard_LRS",
    "Premium_LRS",
    "StandardSSD_LRS",
    "UltraSSD_LRS",
    "Premium_ZRS",
    "StandardSSD_ZRS",
    "PremiumV2_LRS",
)
CREATE_OPTIONS = ("Empty", "Copy", "FromImage", "Import", "Restore", "Upload", "Attach")


def normalize(name: str, rid: str, body: dict[str, Any], existing: dict[str, Any] | None, location: str) -> dict:
    props = body.get("properties")
    if not isinstance(props, dict):
        raise bad_request("InvalidParameter", f"Disk {name}: properties are required.")
    creation = props.get("creationData")
    if not isinstance(creation, dict) or str(creation.get("createOption", "")).lower() not in [
        o.lower() for o in CREATE_OPTIONS
    ]:
        raise bad_request(
            "InvalidParameter",
            "Required parameter 'creationData.createOption' is missing or invalid "
            f"(allowed: {', '.join(CREATE_OPTIONS)}).",
        )
    size = props.get("diskSizeGB")
    if str(creation.get("createOption")).lower() == "empty" and (
        not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 65536
    ):
        raise bad_request("InvalidParameter", "Parameter 'diskSizeGB' must be between 1 and 65536 for an empty disk.")
    sku = body.get("sku") or {"name": "Standard_LRS"}
    sku_name = (
        next((s for s in SKUS if s.lower() == str(sku.get("name", "")).lower()), None)
        if isinstance(sku, dict)
        else None
    )
    if sku_name is None:
        raise bad_request(
            "InvalidParameter", f"The value of parameter sku.name is invalid (allowed: {', '.join(SKUS)})."
        )
    old = (existing or {}).get("properties", {})
    out = {k: copy.deepcopy(v) for k, v in props.items() if k not in ("diskState", "provisioningState", "timeCreated")}
    out["diskSizeGB"] = size if size is not None else old.get("diskSizeGB", 30)
    out["diskState"] = old.get("diskState", "Unattached")
    out["timeCreated"] = old.get("timeCreated") or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0+00:00")
    out["uniqueId"] = old.get("uniqueId") or str(uuid.uuid4())
    out["provisioningState"] = "Succeeded"
    body_out = {
        "id": existing["id"] if existing else rid,
        "name": existing["name"] if existing else name,
        "type": DISK,
        "location": location,
        "sku": {"name": sku_name, "tier": "Premium" if sku_name.startswith("Premium") else "Standard"},
        "properties": out,
    }
    if existing and existing.get("managedBy"):
        body_out["managedBy"] = existing["managedBy"]
    return body_out


def check_delete(record: dict[str, Any]) -> None:
    if record.get("managedBy"):
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Disk {record['name']} is attached to VM {record['managedBy']}.",
        )


def attach(record: dict[str, Any], vm_id: str | None) -> dict[str, Any]:
    """The disk with ``managedBy`` / ``diskState`` as a VM attach (or detach, ``vm_id=None``) leaves it."""
    out = copy.deepcopy(record)
    if vm_id:
        out["managedBy"] = vm_id
        out["properties"]["diskState"] = "Attached"
    else:
        out.pop("managedBy", None)
        out["properties"]["diskState"] = "Unattached"
    return out


__all__ = ["DISK", "attach", "check_delete", "normalize"]
