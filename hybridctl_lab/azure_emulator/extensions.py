"""The providers that serve `hybridctl cost` and `hybridctl leaks`: Microsoft.CostManagement
(query, forecast), Microsoft.Compute/disks and Microsoft.Network/publicIPAddresses.

:class:`~.arm.ArmService` routes requests of these namespaces here (:func:`handle`) and lets
:func:`render` / :func:`check_delete` add what these types compute; the public IP type itself is
served by the network code once :func:`publicip.register` has added it.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import compute, costs, publicip
from .errors import ArmError

if TYPE_CHECKING:
    from .arm import ArmService, Request, Response

API_VERSIONS: dict[str, tuple[str, ...]] = {
    "microsoft.costmanagement": (
        "2021-10-01",
        "2022-10-01",
        "2023-03-01",
        "2023-04-01-preview",
        "2023-07-01-preview",
        "2023-08-01",
        "2023-09-01",
        "2023-11-01",
        "2024-08-01",
        "2025-03-01",
    ),
    "microsoft.compute": (
        "2022-03-02",
        "2022-07-02",
        "2023-01-02",
        "2023-04-02",
        "2023-10-02",
        "2024-03-02",
        "2025-01-02",
    ),
}
PROVIDER_NAMES = {"microsoft.costmanagement": "Microsoft.CostManagement", "microsoft.compute": "Microsoft.Compute"}
NAMESPACES = frozenset(API_VERSIONS)
SEED_API_VERSIONS = {"microsoft.costmanagement": "2023-03-01", "microsoft.compute": "2024-03-02"}
OWN_TYPES = frozenset({costs.SEED_TYPE.lower(), compute.DISK.lower()})

publicip.register()


def render(body: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in body.items() if not k.startswith("_")}


def handle(service: ArmService, req: Request, rg: str | None, tail: list[str], namespace: str) -> Response:
    if namespace == "microsoft.costmanagement":
        return _cost(service, req, rg, tail)
    return _disks(service, req, rg, tail)


def _scope(service: ArmService, rg: str | None) -> tuple[str, str | None]:
    if rg is None:
        return f"/subscriptions/{service.subscription_id}", None
    with service.store.transaction() as tx:
        record = service._require_rg(tx, rg)
    return service.rg_id(str(record["name"])), str(record["name"])


def _cost(service: ArmService, req: Request, rg: str | None, tail: list[str]) -> Response:
    from .arm import Response, _method_not_allowed

    if len(tail) != 1 or tail[0].lower() not in ("query", "forecast"):
        raise service._invalid_type(req, "microsoft.costmanagement", "/".join(tail))
    if req.method != "POST":
        raise _method_not_allowed(req.method, req.path)
    scope, rg_name = _scope(service, rg)
    body = service._json_body(req)
    seeded = costs.rows_of(service.store.raw(costs.seed_id(service.subscription_id)))
    today = service._today()
    if tail[0].lower() == "forecast":
        return Response(200, costs.forecast(body, seeded, scope=scope, resource_group=rg_name, today=today))
    with service._config_lock:
        size = max(1, int(service.config.page_size))
    next_url = f"{req.base_url}{req.raw_path}?api-version={quote(req.api_version)}"
    result = costs.query(
        body,
        seeded,
        scope=scope,
        resource_group=rg_name,
        today=today,
        url_query=req.query,
        next_url=next_url,
        page_size=size,
    )
    return Response(200, result)


def _disks(service: ArmService, req: Request, rg: str | None, tail: list[str]) -> Response:
    from .arm import Response, _method_not_allowed, _not_found

    if not tail or tail[0].lower() != "disks" or len(tail) > 2:
        raise service._invalid_type(req, "microsoft.compute", "/".join(tail[0::2]))
    scope, rg_name = _scope(service, rg)
    if len(tail) == 1:
        items = service.store.list(compute.DISK, resource_group=rg_name, subscription_id=service.subscription_id)
        return service._page(req, items)
    if rg_name is None:
        raise ArmError(404, "NotFound", f"The requested path '{req.path}' was not found.")
    name = tail[1]
    rid = f"{scope}/providers/{compute.DISK}/{name}"
    if req.method == "GET":
        found = service.store.get(rid)
        if found is None:
            raise _not_found(compute.DISK, name, rg_name)
        return Response(200, found)
    if req.method == "PUT":
        payload = service._json_body(req)
        with service.store.transaction() as tx:
            existing = tx.get(rid)
            location = service._location(payload, existing, rid, rg_name)
            tags = service._tags(payload)
            body = compute.normalize(name, rid, payload, existing, location)
            if tags is not None:
                body["tags"] = tags
            tx.put(body)
        return Response(200 if existing else 201, render(body))
    if req.method == "DELETE":
        with service.store.transaction() as tx:
            existing = tx.get(rid)
            if existing is None:
                return Response(204, None)
            compute.check_delete(existing)
            tx.delete(rid)
        return Response(200, None)
    raise _method_not_allowed(req.method, req.path)


def check_delete(lookup: Any, record: dict[str, Any]) -> None:
    publicip.check_delete(lookup, record)


def render_network(out: dict[str, Any], lookup: Any) -> dict[str, Any]:
    return publicip.render(out, lookup)


# -- in-process seeding (the lab, tests) ------------------------------------------------------------


def seed_costs(service: ArmService, rows: list[dict[str, Any]]) -> int:
    """Append daily cost rows (see :func:`costs.normalize_row`); returns how many are seeded in all."""
    rid = costs.seed_id(service.subscription_id)
    with service.store.transaction() as tx:
        record = costs.seed_record(service.subscription_id, rows, tx.get(rid))
        tx.put(record)
        return len(record["_rows"])


def clear_costs(service: ArmService) -> None:
    with service.store.transaction() as tx:
        tx.delete(costs.seed_id(service.subscription_id))


def attach_disk(service: ArmService, disk_id: str, vm_id: str | None) -> dict[str, Any]:
    """Mark a disk attached to ``vm_id`` (or detached), as a VM attach would."""
    with service.store.transaction() as tx:
        record = tx.get(disk_id)
        if record is None:
            raise ArmError(404, "ResourceNotFound", f"Disk {disk_id} was not found.")
        updated = compute.attach(record, vm_id)
        tx.put(updated)
    return render(updated)


__all__ = [
    "API_VERSIONS",
    "NAMESPACES",
    "SEED_API_VERSIONS",
    "attach_disk",
    "check_delete",
    "clear_costs",
    "handle",
    "render",
    "seed_costs",
]


def create_disk(
    emulator: Any,
    resource_group: str,
    name: str,
    location: str,
    size_gb: int = 32,
    sku: str = "StandardSSD_LRS",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create a managed disk through the ARM front end (``emulator``: an AzureEmulator)."""
    path = f"{emulator.arm.rg_id(resource_group)}/providers/{compute.DISK}/{name}"
    body: dict[str, Any] = {
        "location": location,
        "sku": {"name": sku},
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": size_gb},
    }
    if tags:
        body["tags"] = tags
    response = emulator.request("PUT", path, body, api_version=SEED_API_VERSIONS["microsoft.compute"])
    return dict(response.body)


def create_public_ip(
    emulator: Any, resource_group: str, name: str, location: str, tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """Create a Standard static public IP (``emulator``: an AzureEmulator)."""
    body: dict[str, Any] = {
        "location": location,
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
    }
    if tags:
        body["tags"] = tags
    return dict(emulator.put(emulator.network_id(resource_group, "publicIPAddresses", name), body))
