"""The ARM front end: routing, api-version checks, resource groups, long-running operations,
paging, and dispatch to the network and consumption resource providers.

This module never touches sockets: :meth:`ArmService.handle` maps a :class:`Request` to a
:class:`Response` (or raises :class:`ArmError`). Authentication, fault injection and request
counting live in ``server.py`` in front of it.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import authorization, consumption, extensions, network
from .errors import ArmError
from .store import RESOURCE_GROUP_TYPE, Store, Transaction, resource_group_of

if TYPE_CHECKING:
    from .admin import FaultInjector

# api-versions each provider accepts. They include what the installed SDKs send by default
# (azure-mgmt-network 33.x: 2026-03-01, azure-mgmt-consumption 11.x: 2024-08-01) and the
# versions other recent SDK releases and the az CLI use.
API_VERSIONS: dict[str, tuple[str, ...]] = {
    "microsoft.resources": (
        "2019-10-01", "2020-06-01", "2020-10-01", "2021-01-01", "2021-04-01", "2022-01-01", "2022-09-01",
        "2022-12-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01", "2025-04-01",
    ),
    "microsoft.network": (
        "2020-11-01", "2021-02-01", "2021-03-01", "2021-05-01", "2021-08-01", "2022-01-01", "2022-05-01",
        "2022-07-01", "2022-09-01", "2022-11-01", "2023-02-01", "2023-04-01", "2023-05-01", "2023-06-01",
        "2023-09-01", "2023-11-01", "2024-01-01", "2024-03-01", "2024-05-01", "2024-07-01", "2024-10-01",
        "2025-01-01", "2025-03-01", "2025-05-01", "2025-07-01", "2026-01-01", "2026-03-01",
    ),
    "microsoft.consumption": (
        "2019-10-01", "2021-05-01", "2021-10-01", "2022-06-01", "2023-03-01", "2023-05-01", "2023-11-01",
        "2024-08-01",
    ),
    "microsoft.authorization": authorization.API_VERSIONS,
}
PROVIDER_NAMES = {
    "microsoft.resources": "Microsoft.Resources",
    "microsoft.network": "Microsoft.Network",
    "microsoft.consumption": "Microsoft.Consumption",
    "microsoft.authorization": authorization.PROVIDER,
}
RG_NAME = re.compile(r"^[-\w._()]{1,90}$")
# Cost Management, compute disks and public IPs (hybridctl cost / leaks) live in extensions.py.
API_VERSIONS.update(extensions.API_VERSIONS)
PROVIDER_NAMES.update(extensions.PROVIDER_NAMES)
NOT_FOUND_FIX = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"


@dataclass
class Request:
    method: str
    path: str  # percent-decoded
    raw_path: str  # as received, without the query
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # scheme://host:port the client used, for links we hand back

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ArmConfig:
    """Knobs the tests and the lab turn (also through ``/_emulator/config``)."""

    lro_polls: int = 1  # status polls answered "InProgress" before an operation completes
    lro_retry_after_ms: int = 100  # sent as Retry-After (whole seconds) or retry-after-ms
    lro_auto_complete_s: float = 10.0  # an operation nobody polls completes on its own after this
    page_size: int = 50  # items per page of list responses

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _not_found(kind: str, name: str, rg: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{kind}/{name}' under resource group '{rg}' was not found. {NOT_FOUND_FIX}",
    )


def _rg_not_found(rg: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")


def _parent_not_found(name: str) -> ArmError:
    return ArmError(
        404,
        "ParentResourceNotFound",
        f"Can not perform requested operation on nested resource. Parent resource '{name}' not found.",
    )


def _method_not_allowed(method: str, path: str) -> ArmError:
    return ArmError(
        405, "HttpMethodNotAllowed", f"The HTTP method '{method}' is not supported for the path '{path}'."
    )


class ArmService:
    """ARM semantics over a :class:`Store`."""

    def __init__(
        self,
        store: Store,
        subscription_id: str,
        tenant_id: str,
        config: ArmConfig | None = None,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.store = store
        self.subscription_id = subscription_id
        self.tenant_id = tenant_id
        self.config = config or ArmConfig()
        self._today = today or (lambda: dt.datetime.now(dt.UTC).date())
        self._config_lock = threading.Lock()
        # Set by the server: where operation-ending faults (Failed / Canceled) come from.
        self.faults: FaultInjector | None = None
        self.permissions = authorization.Permissions()
        store.set_renderer(self.render)

    # -- rendering ----------------------------------------------------------------------------

    def render(self, body: dict[str, Any]) -> dict[str, Any]:
        rtype = str(body["type"]).lower()
        if rtype == consumption.BUDGET.lower():
            return consumption.render(body)
        if rtype == RESOURCE_GROUP_TYPE.lower():
            return {k: copy.deepcopy(v) for k, v in body.items() if not k.startswith("_")}
        if rtype in extensions.OWN_TYPES:
            return extensions.render(body)
        out = extensions.render_network(network.render(body, Transaction(self.store)), Transaction(self.store))
        return {k: v for k, v in out.items() if not k.startswith("_")}

    # -- entry point --------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        self.complete_due()
        segs = [s for s in req.path.split("/") if s]
        low = [s.lower() for s in segs]
        if not low or low[0] != "subscriptions":
            raise ArmError(404, "NotFound", f"The requested path '{req.path}' was not found.")
        namespace = "microsoft.resources"
        if "providers" in low:
            index = low.index("providers")
            if index + 1 >= len(low):
                raise ArmError(404, "NotFound", f"The requested path '{req.path}' was not found.")
            namespace = low[index + 1]
        self._check_api_version(req, namespace)
        if len(low) == 1:
            if req.method != "GET":
                raise _method_not_allowed(req.method, req.path)
            return self._page(req, [self._subscription_body()])
        if low[1] != self.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{segs[1]}' could not be found.")
        rest, rest_low = segs[2:], low[2:]
        if not rest:
            if req.method != "GET":
                raise _method_not_allowed(req.method, req.path)
            return Response(200, self._subscription_body())
        if rest_low[0] == "resourcegroups":
            if len(rest) == 1:
                if req.method != "GET":
                    raise _method_not_allowed(req.method, req.path)
                return self._page(req, self.store.list(RESOURCE_GROUP_TYPE))
            rg = rest[1]
            if len(rest) == 2:
                return self._resource_group(req, rg)
            if rest_low[2] == "providers" and len(rest) >= 4:
                tail = rest[4:]
                if namespace == "microsoft.network":
                    return self._network(req, rg, tail)
                if namespace == "microsoft.consumption":
                    return self._budgets(req, rg, tail)
                if namespace in extensions.NAMESPACES:
                    return extensions.handle(self, req, rg, tail, namespace)
                if namespace == "microsoft.authorization":
                    return self._permissions(req, rg, tail)
            raise self._invalid_type(req, namespace, rest[4] if len(rest) > 4 else "")
        if rest_low[0] == "operationresults" and len(rest) == 2:
            return self._operation_result(req, rest[1], final_status=200)
        if rest_low[0] == "providers" and len(rest) >= 2:
            tail, tail_low = rest[2:], rest_low[2:]
            if namespace == "microsoft.network":
                if len(tail) == 4 and tail_low[0] == "locations" and tail_low[2] == "operations":
                    return self._operation_status(req, tail[3])
                if len(tail) == 4 and tail_low[0] == "locations" and tail_low[2] == "operationresults":
                    return self._operation_result(req, tail[3], final_status=204)
                if len(tail) == 1:
                    spec = network.TYPES.get(tail_low[0])
                    if spec is None:
                        raise self._invalid_type(req, namespace, tail[0])
                    if req.method != "GET":
                        raise _method_not_allowed(req.method, req.path)
                    return self._page(req, self.store.list(spec.type, subscription_id=self.subscription_id))
            if namespace == "microsoft.consumption":
                return self._budgets(req, None, tail)
            if namespace in extensions.NAMESPACES:
                return extensions.handle(self, req, None, tail, namespace)
            if namespace == "microsoft.authorization":
                return self._permissions(req, None, tail)
            raise self._invalid_type(req, namespace, tail[0] if tail else "")
        raise ArmError(404, "NotFound", f"The requested path '{req.path}' was not found.")

    def _permissions(self, req: Request, rg: str | None, tail: list[str]) -> Response:
        """``GET {scope}/providers/Microsoft.Authorization/permissions`` (see authorization.py)."""
        if len(tail) != 1 or tail[0].lower() != "permissions":
            raise self._invalid_type(req, "microsoft.authorization", tail[0] if tail else "")
        if req.method != "GET":
            raise _method_not_allowed(req.method, req.path)
        if rg is not None and self.store.get(self.rg_id(rg)) is None:
            raise _rg_not_found(rg)
        return Response(200, self.permissions.response(rg))

    def _check_api_version(self, req: Request, namespace: str) -> None:
        version = req.query.get("api-version")
        if not version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        supported = API_VERSIONS.get(namespace)
        if supported is None:
            raise ArmError(
                404,
                "InvalidResourceNamespace",
                f"The resource namespace '{namespace}' is invalid.",
            )
        if version not in supported:
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are "
                f"'{','.join(sorted(supported, reverse=True))}'. Please see https://aka.ms/api-version for "
                "more information.",
            )

    def _invalid_type(self, req: Request, namespace: str, rtype: str) -> ArmError:
        return ArmError(
            400,
            "InvalidResourceType",
            f"The resource type '{rtype}' could not be found in the namespace "
            f"'{PROVIDER_NAMES.get(namespace, namespace)}' for api version '{req.api_version}'.",
        )

    def _subscription_body(self) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{self.subscription_id}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": self.subscription_id,
            "tenantId": self.tenant_id,
            "displayName": "hybridctl lab subscription",
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
        }

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _json_body(req: Request) -> dict[str, Any]:
        try:
            body = json.loads(req.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArmError(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: '{exc}'.",
            ) from None
        if not isinstance(body, dict):
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: a JSON object is required.",
            )
        return body

    @staticmethod
    def _location(body: dict[str, Any], existing: dict[str, Any] | None, rid: str, rg: str) -> str:
        raw = body.get("location")
        if not isinstance(raw, str) or not raw.strip():
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        location = raw.replace(" ", "").lower()
        if existing is not None and str(existing.get("location", "")).lower() != location:
            raise ArmError(
                400,
                "InvalidResourceLocation",
                f"The resource '{rid.rsplit('/', 1)[-1]}' already exists in location '{existing['location']}' "
                f"in resource group '{rg}'. A resource with the same name cannot be created in location "
                f"'{location}'. Please select a new resource name.",
            )
        return location

    @staticmethod
    def _tags(body: dict[str, Any]) -> dict[str, str] | None:
        tags = body.get("tags")
        if tags is None:
            return None
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and len(k) <= 512 and len(v) <= 256
            for k, v in tags.items()
        ) or len(tags) > 50:
            raise ArmError(
                400,
                "InvalidTag",
                "Tags must be an object of at most 50 string names (up to 512 characters) and string "
                "values (up to 256 characters).",
            )
        return dict(tags)

    @staticmethod
    def _check_if_match(req: Request, current_etag: str | None) -> None:
        if_match = req.headers.get("if-match")
        if if_match and if_match != "*" and if_match != current_etag:
            raise ArmError(412, "PreconditionFailed", "The specified precondition 'If-Match' failed.")
        if req.headers.get("if-none-match") == "*" and current_etag is not None:
            raise ArmError(412, "PreconditionFailed", "The specified precondition 'If-None-Match' failed.")

    def _page(self, req: Request, items: list[dict[str, Any]]) -> Response:
        if req.method != "GET":
            raise _method_not_allowed(req.method, req.path)
        with self._config_lock:
            size = max(1, int(self.config.page_size))
        token = req.query.get("$skiptoken")
        offset = 0
        if token:
            try:
                offset = int(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
            except (ValueError, UnicodeDecodeError):
                raise ArmError(400, "InvalidSkipToken", f"The skip token '{token}' is invalid.") from None
        body: dict[str, Any] = {"value": items[offset: offset + size]}
        if offset + size < len(items):
            next_token = base64.urlsafe_b64encode(str(offset + size).encode()).decode().rstrip("=")
            body["nextLink"] = (
                f"{req.base_url}{req.raw_path}?api-version={quote(req.api_version)}&%24skiptoken={next_token}"
            )
        return Response(200, body)

    # -- long-running operations --------------------------------------------------------------

    def _retry_headers(self) -> dict[str, str]:
        with self._config_lock:
            ms = max(1, int(self.config.lro_retry_after_ms))
        # azure-core reads Retry-After (seconds) first, then retry-after-ms; a whole number of
        # seconds goes out the standard way, anything shorter keeps tests fast.
        if ms % 1000 == 0:
            return {"Retry-After": str(ms // 1000)}
        return {"retry-after-ms": str(ms)}

    def _start_operation(
        self, tx: Transaction, req: Request, kind: str, targets: list[str], location: str, provider: str
    ) -> tuple[str, dict[str, str]]:
        op_id = str(uuid.uuid4())
        with self._config_lock:
            polls = max(0, int(self.config.lro_polls))
            auto = float(self.config.lro_auto_complete_s)
        self._prune_operations(tx)
        tx.operations[op_id] = {
            "id": op_id,
            "kind": kind,
            "targets": targets,
            "status": "InProgress",
            "polls_left": polls,
            "deadline": time.time() + auto,
            "startTime": _now_iso(),
            "provider": provider,
            "location": location,
        }
        fault = self.faults.take(req.method, req.path, operation=True) if self.faults is not None else None
        if fault is not None:
            # Ends Failed / Canceled with this error when it completes (injected, admin API).
            tx.operations[op_id]["outcome"] = {
                "status": fault.operation_status, "error": {"code": fault.code, "message": fault.message}
            }
        tx.touch()
        version = quote(req.api_version)
        base = f"{req.base_url}/subscriptions/{self.subscription_id}"
        headers = self._retry_headers()
        if provider == "Microsoft.Resources":
            headers["Location"] = f"{base}/operationresults/{op_id}?api-version={version}"
        else:
            prefix = f"{base}/providers/{provider}/locations/{location}"
            headers["Azure-AsyncOperation"] = f"{prefix}/operations/{op_id}?api-version={version}"
            if kind == "delete":
                headers["Location"] = f"{prefix}/operationResults/{op_id}?api-version={version}"
        return op_id, headers

    @staticmethod
    def _prune_operations(tx: Transaction) -> None:
        cutoff = time.time() - 3600
        for op_id in [k for k, op in tx.operations.items() if op["status"] != "InProgress"
                      and op.get("completed", 0) < cutoff]:
            del tx.operations[op_id]

    def _complete(self, tx: Transaction, op: dict[str, Any]) -> None:
        outcome = op.get("outcome")
        op["status"] = outcome["status"] if outcome else "Succeeded"
        if outcome:
            op["error"] = outcome["error"]
        op["endTime"] = _now_iso()
        op["completed"] = time.time()
        tx.touch()
        for target in op["targets"]:
            if outcome:
                # As the network RP does: the resource keeps the goal state it was sent, in
                # provisioningState Failed (or Canceled); a failed delete leaves it in place.
                self._finish_put(tx, target, outcome["status"], "Deleting" if op["kind"] == "delete" else "Updating")
            elif op["kind"] == "delete":
                self._finish_delete(tx, target)
            else:
                self._finish_put(tx, target)

    def _split_child(self, tx: Transaction, target: str) -> tuple[dict[str, Any], network.ChildSpec, str] | None:
        """(parent record, child spec, child name) when ``target`` is a child resource id."""
        head, _, name = target.rpartition("/")
        parent_id, _, segment = head.rpartition("/")
        parent = tx.get(parent_id)
        if parent is None:
            return None
        spec = network.spec_for_type(str(parent["type"]))
        if spec is None or segment.lower() not in spec.children:
            return None
        return parent, spec.children[segment.lower()], name

    def _finish_put(self, tx: Transaction, target: str, state: str = "Succeeded", pending: str = "Updating") -> None:
        record = tx.get(target)
        if record is not None:
            updated = copy.deepcopy(record)
            self._set_state(updated, state, only_updating=True, pending=pending)
            tx.put(updated)
            return
        child = self._split_child(tx, target)
        if child is None:
            return
        parent, spec, name = child
        updated = copy.deepcopy(parent)
        for entry in updated.get("properties", {}).get(spec.prop, []):
            if str(entry["name"]).lower() == name.lower() and entry["properties"].get("provisioningState") == (
                pending
            ):
                entry["properties"]["provisioningState"] = state
        tx.put(updated)

    def _finish_delete(self, tx: Transaction, target: str) -> None:
        record = tx.get(target)
        if record is not None:
            if str(record["type"]).lower() == RESOURCE_GROUP_TYPE.lower():
                prefix = str(record["id"]).lower() + "/"
                for other in list(tx.records()):
                    if str(other["id"]).lower().startswith(prefix):
                        tx.delete(str(other["id"]))
            tx.delete(target)
            return
        child = self._split_child(tx, target)
        if child is None:
            return
        parent, spec, name = child
        updated = copy.deepcopy(parent)
        entries = updated.get("properties", {}).get(spec.prop, [])
        updated["properties"][spec.prop] = [e for e in entries if str(e["name"]).lower() != name.lower()]
        self._stamp_etag(updated)
        tx.put(updated)

    def _set_state(
        self, record: dict[str, Any], state: str, only_updating: bool = False, pending: str = "Updating"
    ) -> None:
        props = record.setdefault("properties", {})
        if not only_updating or props.get("provisioningState") == pending:
            props["provisioningState"] = state
        spec = network.spec_for_type(str(record["type"]))
        if spec is None:
            return
        for child in spec.children.values():
            for entry in props.get(child.prop, []):
                cprops = entry.setdefault("properties", {})
                if not only_updating or cprops.get("provisioningState") == pending:
                    cprops["provisioningState"] = state

    @staticmethod
    def _stamp_etag(record: dict[str, Any]) -> None:
        # In the network RP every child carries its parent's etag.
        etag = network.new_etag()
        record["etag"] = etag
        spec = network.spec_for_type(str(record["type"]))
        if spec is None:
            return
        for child in spec.children.values():
            for entry in record.get("properties", {}).get(child.prop, []):
                entry["etag"] = etag

    def complete_due(self) -> None:
        """Complete operations whose auto-completion deadline has passed."""
        now = time.time()
        with self.store.transaction() as tx:
            for op in list(tx.operations.values()):
                if op["status"] == "InProgress" and op["deadline"] <= now:
                    self._complete(tx, op)

    def complete_all(self) -> None:
        """Complete every operation in progress (lab seeding, shutdown)."""
        with self.store.transaction() as tx:
            for op in list(tx.operations.values()):
                if op["status"] == "InProgress":
                    self._complete(tx, op)

    def _poll(self, op_id: str) -> dict[str, Any]:
        with self.store.transaction() as tx:
            op = tx.operations.get(op_id)
            if op is None:
                raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
            if op["status"] == "InProgress":
                if op["polls_left"] > 0:
                    op["polls_left"] -= 1
                    tx.touch()
                else:
                    self._complete(tx, op)
            return copy.deepcopy(op)

    def _operation_status(self, req: Request, op_id: str) -> Response:
        if req.method != "GET":
            raise _method_not_allowed(req.method, req.path)
        op = self._poll(op_id)
        body = {"id": req.raw_path, "name": op_id, "status": op["status"], "startTime": op["startTime"]}
        if op["status"] != "InProgress":
            body["endTime"] = op["endTime"]
            if op.get("error"):
                body["error"] = op["error"]  # Azure-AsyncOperation: Failed / Canceled carry the error
            return Response(200, body)
        return Response(200, body, self._retry_headers())

    def _operation_result(self, req: Request, op_id: str, final_status: int) -> Response:
        if req.method != "GET":
            raise _method_not_allowed(req.method, req.path)
        op = self._poll(op_id)
        if op["status"] == "InProgress":
            headers = self._retry_headers()
            headers["Location"] = f"{req.base_url}{req.raw_path}?api-version={quote(req.api_version)}"
            return Response(202, None, headers)
        if op.get("error"):
            return Response(500 if op["status"] == "Failed" else 409, {"error": op["error"]})
        return Response(final_status, None)

    # -- resource groups ----------------------------------------------------------------------

    def rg_id(self, name: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{name}"

    def _require_rg(self, tx: Transaction, rg: str) -> dict[str, Any]:
        record = tx.get(self.rg_id(rg))
        if record is None:
            raise _rg_not_found(rg)
        return record

    def _resource_group(self, req: Request, rg: str) -> Response:
        rid = self.rg_id(rg)
        if req.method in ("GET", "HEAD"):
            body = self.store.get(rid)
            if body is None:
                if req.method == "HEAD":
                    return Response(404, None)
                raise _rg_not_found(rg)
            return Response(204, None) if req.method == "HEAD" else Response(200, body)
        if req.method == "PUT":
            payload = self._json_body(req)
            if not RG_NAME.match(rg) or rg.endswith("."):
                raise ArmError(
                    400,
                    "InvalidResourceGroup",
                    f"The provided resource group name '{rg}' has these invalid characters or length. "
                    "Resource group names can only include alphanumeric, underscore, parentheses, hyphen, "
                    "period (except at end), and up to 90 characters.",
                )
            raw_location = payload.get("location")
            if not isinstance(raw_location, str) or not raw_location.strip():
                raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
            location = raw_location.replace(" ", "").lower()
            tags = self._tags(payload)
            with self.store.transaction() as tx:
                existing = tx.get(rid)
                if existing is not None:
                    if existing["location"] != location:
                        raise ArmError(
                            409,
                            "InvalidResourceGroupLocation",
                            f"Invalid resource group location '{location}'. The Resource group already exists "
                            f"in location '{existing['location']}'.",
                        )
                    if existing["properties"].get("provisioningState") == "Deleting":
                        raise ArmError(
                            409,
                            "ResourceGroupBeingDeleted",
                            f"The resource group '{existing['name']}' is in deprovisioning state and cannot "
                            "perform this operation.",
                        )
                body = copy.deepcopy(existing) if existing else {
                    "id": rid,
                    "name": rg,
                    "type": RESOURCE_GROUP_TYPE,
                    "location": location,
                    "properties": {"provisioningState": "Succeeded"},
                }
                body.pop("tags", None)
                if tags is not None:
                    body["tags"] = tags
                if isinstance(payload.get("managedBy"), str):
                    body["managedBy"] = payload["managedBy"]
                tx.put(body)
            return Response(200 if existing else 201, self.render(body))
        if req.method == "PATCH":
            payload = self._json_body(req)
            tags = self._tags(payload)
            with self.store.transaction() as tx:
                existing = self._require_rg(tx, rg)
                body = copy.deepcopy(existing)
                if "tags" in payload:
                    body.pop("tags", None)
                    if tags is not None:
                        body["tags"] = tags
                tx.put(body)
            return Response(200, self.render(body))
        if req.method == "DELETE":
            with self.store.transaction() as tx:
                existing = self._require_rg(tx, rg)
                body = copy.deepcopy(existing)
                body["properties"]["provisioningState"] = "Deleting"
                tx.put(body)
                _, headers = self._start_operation(
                    tx, req, "delete", [str(existing["id"])], str(existing["location"]), "Microsoft.Resources"
                )
            return Response(202, None, headers)
        raise _method_not_allowed(req.method, req.path)

    # -- Microsoft.Network --------------------------------------------------------------------

    def _network(self, req: Request, rg: str, tail: list[str]) -> Response:
        if not tail:
            raise self._invalid_type(req, "microsoft.network", "")
        spec = network.TYPES.get(tail[0].lower())
        if spec is None or len(tail) > 4:
            raise self._invalid_type(req, "microsoft.network", "/".join(tail[0::2]))
        with self.store.transaction() as tx:
            rg_record = self._require_rg(tx, rg)
        rg_name = str(rg_record["name"])
        if len(tail) == 1:
            return self._page(req, self.store.list(spec.type, resource_group=rg_name,
                                                   subscription_id=self.subscription_id))
        name = tail[1]
        rid = f"{self.rg_id(rg_name)}/providers/{spec.type}/{name}"
        if len(tail) == 2:
            return self._network_resource(req, spec, rid, name, rg_name)
        child = spec.children.get(tail[2].lower())
        if child is None:
            raise self._invalid_type(req, "microsoft.network", f"{spec.type.split('/')[1]}/{tail[2]}")
        if len(tail) == 3:
            parent = self.store.get(rid)
            if parent is None:
                raise _parent_not_found(name)
            return self._page(req, parent.get("properties", {}).get(child.prop, []))
        return self._network_child(req, spec, child, rid, name, tail[3])

    def _network_resource(
        self, req: Request, spec: network.TypeSpec, rid: str, name: str, rg: str
    ) -> Response:
        if req.method == "GET":
            found = self.store.get(rid)
            if found is None:
                raise _not_found(spec.type, name, rg)
            return Response(200, found)
        body: dict[str, Any]
        if req.method == "PUT":
            payload = self._json_body(req)
            with self.store.transaction() as tx:
                existing = tx.get(rid)
                self._check_if_match(req, existing.get("etag") if existing else None)
                if existing is None:
                    network.check_name(name, spec.type)
                location = self._location(payload, existing, rid, rg)
                tags = self._tags(payload)
                props = spec.normalize(tx, rid, payload, existing, location)
                body = {
                    "id": existing["id"] if existing else rid,
                    "name": existing["name"] if existing else name,
                    "type": spec.type,
                    "location": location,
                    "properties": props,
                }
                if tags is not None:
                    body["tags"] = tags
                self._stamp_etag(body)
                self._set_state(body, "Updating")
                tx.put(body)
                _, headers = self._start_operation(tx, req, "put", [str(body["id"])], location, "Microsoft.Network")
                rendered = self.render(body)
            return Response(200 if existing else 201, rendered, headers)
        if req.method == "PATCH":
            payload = self._json_body(req)
            tags = self._tags(payload)
            with self.store.transaction() as tx:
                existing = tx.get(rid)
                if existing is None:
                    raise _not_found(spec.type, name, rg)
                self._check_if_match(req, existing.get("etag"))
                body = copy.deepcopy(existing)
                body.pop("tags", None)
                if tags is not None:
                    body["tags"] = tags
                self._stamp_etag(body)
                tx.put(body)
                rendered = self.render(body)
            return Response(200, rendered)
        if req.method == "DELETE":
            with self.store.transaction() as tx:
                existing = tx.get(rid)
                if existing is None:
                    return Response(204, None)
                self._check_if_match(req, existing.get("etag"))
                network.check_delete(tx, existing)
                extensions.check_delete(tx, existing)
                body = copy.deepcopy(existing)
                self._set_state(body, "Deleting")
                tx.put(body)
                _, headers = self._start_operation(
                    tx, req, "delete", [str(existing["id"])], str(existing["location"]), "Microsoft.Network"
                )
            return Response(202, None, headers)
        raise _method_not_allowed(req.method, req.path)

    def _network_child(
        self,
        req: Request,
        spec: network.TypeSpec,
        child: network.ChildSpec,
        parent_id: str,
        parent_name: str,
        name: str,
    ) -> Response:
        child_id = f"{parent_id}/{child.segment}/{name}"
        if req.method == "GET":
            parent = self.store.get(parent_id)
            if parent is None:
                raise _parent_not_found(parent_name)
            for entry in parent.get("properties", {}).get(child.prop, []):
                if str(entry["name"]).lower() == name.lower():
                    return Response(200, entry)
            raise ArmError(404, "NotFound", f"Resource {child_id} not found.")
        if req.method not in ("PUT", "DELETE") or not child.writable:
            raise _method_not_allowed(req.method, req.path)
        payload = self._json_body(req) if req.method == "PUT" else {}
        with self.store.transaction() as tx:
            parent = tx.get(parent_id)
            if parent is None:
                raise _parent_not_found(parent_name)
            props = parent.get("properties", {})
            entries = [copy.deepcopy(e) for e in props.get(child.prop, [])]
            index = next((i for i, e in enumerate(entries) if str(e["name"]).lower() == name.lower()), None)
            if index is not None:
                self._check_if_match(req, entries[index].get("etag"))
            if req.method == "DELETE":
                if index is None:
                    return Response(204, None)
                del entries[index]
            else:
                entry = network.child_entry_for_put(child, parent_id, name, payload)
                if index is None:
                    entries.append(entry)
                else:
                    entry["name"] = entries[index]["name"]
                    entries[index] = entry
            request_body = {"properties": {**copy.deepcopy(props), child.prop: entries}}
            new_props = spec.normalize(tx, str(parent["id"]), request_body, parent, str(parent["location"]))
            if req.method == "DELETE":
                # The entry stays, marked Deleting, until the operation completes.
                body = copy.deepcopy(parent)
                for entry in body["properties"].get(child.prop, []):
                    if str(entry["name"]).lower() == name.lower():
                        entry["properties"]["provisioningState"] = "Deleting"
                tx.put(body)
                _, headers = self._start_operation(
                    tx, req, "delete", [child_id], str(parent["location"]), "Microsoft.Network"
                )
                return Response(202, None, headers)
            body = copy.deepcopy(parent)
            body["properties"] = new_props
            body["properties"]["provisioningState"] = props.get("provisioningState", "Succeeded")
            for cs in spec.children.values():
                old = {
                    str(e["name"]).lower(): e.get("properties", {}).get("provisioningState", "Succeeded")
                    for e in props.get(cs.prop, [])
                }
                for entry in new_props.get(cs.prop, []):
                    key = str(entry["name"]).lower()
                    state = "Updating" if cs is child and key == name.lower() else old.get(key, "Succeeded")
                    entry.setdefault("properties", {})["provisioningState"] = state
            self._stamp_etag(body)
            tx.put(body)
            _, headers = self._start_operation(tx, req, "put", [child_id], str(parent["location"]),
                                               "Microsoft.Network")
            rendered = self.render(body)
        for entry in rendered["properties"].get(child.prop, []):
            if str(entry["name"]).lower() == name.lower():
                return Response(200 if index is not None else 201, entry, headers)
        raise ArmError(500, "InternalServerError", "The child resource vanished while it was written.")

    # -- Microsoft.Consumption/budgets --------------------------------------------------------

    def budget_id(self, rg: str | None, name: str) -> str:
        scope = self.rg_id(rg) if rg else f"/subscriptions/{self.subscription_id}"
        return f"{scope}/providers/Microsoft.Consumption/budgets/{name}"

    @staticmethod
    def _budget_not_found(name: str, rid: str) -> ArmError:
        return ArmError(
            404, "ResourceNotFound", f"The Resource 'Microsoft.Consumption/budgets/{name}' under scope "
            f"'{rid.split('/providers/')[0]}' was not found. {NOT_FOUND_FIX}",
        )

    def _budgets(self, req: Request, rg: str | None, tail: list[str]) -> Response:
        if not tail or tail[0].lower() != "budgets" or len(tail) > 2:
            raise self._invalid_type(req, "microsoft.consumption", tail[0] if tail else "")
        rg_name = None
        if rg is not None:
            with self.store.transaction() as tx:
                rg_name = str(self._require_rg(tx, rg)["name"])
        if len(tail) == 1:
            scope = self.rg_id(rg_name) if rg_name else f"/subscriptions/{self.subscription_id}"
            # A subscription-scope list also returns its resource groups' budgets (spec example
            # Microsoft.Consumption/stable/2024-08-01/examples/BudgetsList.json); a resource
            # group's list returns only its own.
            items = [
                b for b in self.store.list(consumption.BUDGET)
                if str(b["id"]).lower().startswith(scope.lower() + "/")
            ]
            return self._page(req, items)
        name = tail[1]
        rid = self.budget_id(rg_name, name)
        if req.method == "GET":
            body = self.store.get(rid)
            if body is None:
                raise self._budget_not_found(name, rid)
            return Response(200, body)
        if req.method == "PUT":
            payload = self._json_body(req)
            with self.store.transaction() as tx:
                existing = tx.get(rid)
                current = existing.get("eTag") if existing else None
                sent = payload.get("eTag") or req.headers.get("if-match")
                if existing is not None and sent and sent != "*" and sent != current:
                    raise ArmError(
                        412,
                        "PreconditionFailed",
                        f"There are changes made to Budget {existing['name']}. Please get the latest budget to "
                        "avoid overwrite.",
                    )
                props = consumption.normalize_budget(name, payload, existing, self._today())
                body = {
                    "id": existing["id"] if existing else rid,
                    "name": existing["name"] if existing else name,
                    "type": consumption.BUDGET,
                    "eTag": consumption.new_etag(),
                    "properties": props,
                    "_spend": copy.deepcopy(existing.get("_spend", {})) if existing else {},
                }
                tx.put(body)
            return Response(200 if existing else 201, self.render(body))
        if req.method == "DELETE":
            with self.store.transaction() as tx:
                existing = tx.get(rid)
                if existing is None:
                    # Budgets_Delete (consumption.json 2024-08-01) answers 200 and otherwise an
                    # ErrorResponse: a missing budget is a 404 like the GET's, not a 204.
                    raise self._budget_not_found(name, rid)
                tx.delete(rid)
            return Response(200, None)
        raise _method_not_allowed(req.method, req.path)

    def set_spend(
        self,
        budget_id: str,
        current: float | None = None,
        forecast: float | None = None,
        unit: str | None = None,
    ) -> dict[str, Any]:
        """Seed a budget's currentSpend / forecastSpend (what Cost Management would compute)."""
        with self.store.transaction() as tx:
            existing = tx.get(budget_id)
            if existing is None or str(existing["type"]).lower() != consumption.BUDGET.lower():
                raise ArmError(404, "ResourceNotFound", f"Budget {budget_id} was not found.")
            body = copy.deepcopy(existing)
            spend = body.setdefault("_spend", {})
            if current is not None:
                spend["current"] = current
            if forecast is not None:
                spend["forecast"] = forecast
            if unit is not None:
                spend["unit"] = unit
            tx.put(body)
        return self.render(body)

    # -- configuration ------------------------------------------------------------------------

    def configure(self, **changes: Any) -> ArmConfig:
        with self._config_lock:
            for key, value in changes.items():
                if not hasattr(self.config, key):
                    raise ValueError(f"unknown emulator setting {key!r}")
                setattr(self.config, key, type(getattr(self.config, key))(value))
            return ArmConfig(**self.config.as_dict())


__all__ = ["API_VERSIONS", "ArmConfig", "ArmService", "Request", "Response", "resource_group_of"]
