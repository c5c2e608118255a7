"""The emulator's state: every ARM resource it holds, persisted as one JSON file.

Top-level resources (resource groups, VNets, NICs, route tables, NSGs, budgets) are records
keyed by their lower-cased ARM id, because ARM ids are case-insensitive. Child resources
(subnets, routes, security rules, IP configurations) live inside their parent's body, as ARM
itself returns them, so a child PUT and an inline PUT of the parent cannot disagree.

Writers use :meth:`Store.transaction`; on commit the file is rewritten atomically
(temp file + fsync + rename) and every subscriber is called with the changes, outside the
lock, in the writer's thread. The lab's fabric reconciler subscribes in-process.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridctl_lab.subscribers import Subscribers

STATE_FORMAT = 1
RESOURCE_GROUP_TYPE = "Microsoft.Resources/resourceGroups"


@dataclass(frozen=True)
class StoreChange:
    """One committed change. ``body`` is the stored body after the change (None once deleted)."""

    action: str  # "put" or "delete"
    resource_id: str
    resource_type: str
    body: dict[str, Any] | None


Subscriber = Callable[[list[StoreChange]], None]
Renderer = Callable[[dict[str, Any]], dict[str, Any]]


def resource_group_of(resource_id: str) -> str | None:
    """The resource group name in an ARM id (as written), or None for subscription scope."""
    parts = resource_id.strip("/").split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower() == "resourcegroups":
            return parts[index + 1]
    return None


def subscription_of(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1]
    return None


@dataclass
class Transaction:
    """Mutations made under the store lock; committed together."""

    store: Store
    changes: list[StoreChange] = field(default_factory=list)

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.store._resources.get(resource_id.lower())

    def put(self, body: dict[str, Any]) -> None:
        key = str(body["id"]).lower()
        self.store._resources[key] = body
        self.changes.append(StoreChange("put", str(body["id"]), str(body["type"]), copy.deepcopy(body)))

    def delete(self, resource_id: str) -> None:
        body = self.store._resources.pop(resource_id.lower(), None)
        if body is not None:
            self.changes.append(StoreChange("delete", str(body["id"]), str(body["type"]), None))

    def records(self) -> list[dict[str, Any]]:
        return list(self.store._resources.values())

    @property
    def operations(self) -> dict[str, dict[str, Any]]:
        return self.store._operations

    @property
    def meta(self) -> dict[str, Any]:
        return self.store._meta

    def touch(self) -> None:
        """Mark the transaction dirty without a resource change (operations, meta)."""
        self.store._dirty = True


class Store:
    """Thread-safe resource store with JSON persistence and change subscribers."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.RLock()
        self._resources: dict[str, dict[str, Any]] = {}
        self._operations: dict[str, dict[str, Any]] = {}
        self._meta: dict[str, Any] = {}
        self._subscribers: Subscribers[list[StoreChange]] = Subscribers("azure emulator store")
        self._renderer: Renderer | None = None
        self._dirty = False
        self._depth = 0
        self._pending: list[StoreChange] = []
        if path is not None and path.exists():
            self._load(path)

    # -- persistence -------------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"{path}: unsupported state format {data.get('format')!r}")
        self._meta = dict(data.get("meta", {}))
        self._resources = {str(k): v for k, v in data.get("resources", {}).items()}
        self._operations = dict(data.get("operations", {}))

    def _save(self) -> None:
        if self._path is None:
            return
        data = {
            "format": STATE_FORMAT,
            "meta": self._meta,
            "resources": self._resources,
            "operations": self._operations,
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        # 0600 from creation: the state holds the emulated client secret and token signing key.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        # rename is atomic on POSIX: a reader (or a crash) sees the old file or the new one.
        os.replace(tmp, self._path)

    # -- writing ------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Hold the lock, collect changes, then persist and notify (outermost level only)."""
        notify: list[StoreChange] = []
        with self._lock:
            self._depth += 1
            tx = Transaction(self)
            try:
                yield tx
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    # Nothing of a failed outermost transaction is kept: reload from disk
                    # would be costly, so handlers validate before mutating instead.
                    self._pending.clear()
                raise
            self._depth -= 1
            self._pending.extend(tx.changes)
            if tx.changes:
                self._dirty = True
            if self._depth == 0:
                if self._dirty:
                    self._save()
                    self._dirty = False
                notify, self._pending = self._pending, []
        if notify:
            self._notify(notify)

    def _notify(self, changes: list[StoreChange]) -> None:
        self._subscribers.notify(changes)  # a broken subscriber is logged, never raised to the API

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(changes)`` after every committed change; returns an unsubscribe."""
        return self._subscribers.subscribe(callback)

    # -- reading ------------------------------------------------------------------------------

    def set_renderer(self, renderer: Renderer) -> None:
        """The ARM layer installs how a stored body looks on the wire (computed fields)."""
        self._renderer = renderer

    def _view(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._renderer is not None:
            return self._renderer(body)
        return {k: copy.deepcopy(v) for k, v in body.items() if not k.startswith("_")}

    def get(self, resource_id: str) -> dict[str, Any] | None:
        """A top-level resource as an ARM GET returns it, or None."""
        with self._lock:
            body = self._resources.get(resource_id.lower())
            return None if body is None else self._view(body)

    def list(
        self,
        resource_type: str | None = None,
        resource_group: str | None = None,
        subscription_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Top-level resources filtered by type / resource group / subscription (case-insensitive)."""
        with self._lock:
            out = []
            for body in self._resources.values():
                rid = str(body["id"])
                if resource_type and str(body["type"]).lower() != resource_type.lower():
                    continue
                if resource_group is not None and (resource_group_of(rid) or "").lower() != (
                    resource_group.lower()
                ):
                    continue
                if subscription_id and (subscription_of(rid) or "").lower() != subscription_id.lower():
                    continue
                out.append(self._view(body))
            return sorted(out, key=lambda b: str(b["id"]).lower())

    def snapshot(self) -> dict[str, Any]:
        """Everything, rendered, for the admin dump."""
        with self._lock:
            return {
                "resources": [self._view(b) for b in sorted(self._resources.values(), key=lambda b: b["id"])],
                "operations": copy.deepcopy(self._operations),
            }

    @property
    def meta(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._meta)

    def raw(self, resource_id: str) -> dict[str, Any] | None:
        """The stored body without computed fields (copy)."""
        with self._lock:
            body = self._resources.get(resource_id.lower())
            return None if body is None else copy.deepcopy(body)
