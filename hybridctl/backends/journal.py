"""What hybridctl created and what it found before changing it.

`down` deletes only what hybridctl created and restores flags to the values it found. Cloud
objects that carry tags or names (Azure routes and rules named ``hybridctl-*``, AWS rules with a
``hybridctl:`` description, kernel routes with hybridctl's protocol number) are recognised on
their own; the journal adds what cannot carry a mark: AWS routes and subnet associations it
created, and the original value of every flag it changed. Kept next to the secrets store
(``<state dir>/<inventory>/journal.json``), written atomically after every change.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from hybridctl.core.secrets import state_dir


def _key(layer: str, key: tuple[str, ...]) -> str:
    return "|".join((layer, *key))


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {"created": {}, "found": {}}
        if path.exists():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            self._data["created"].update(loaded.get("created", {}))
            self._data["found"].update(loaded.get("found", {}))

    @classmethod
    def for_inventory(cls, inventory_name: str) -> Journal:
        return cls(state_dir() / inventory_name / "journal.json")

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self._data, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    # -- created objects -------------------------------------------------------------------
    def created(self, layer: str, key: tuple[str, ...], detail: Any = True) -> None:
        with self._lock:
            self._data["created"][_key(layer, key)] = detail
            self._save()

    def was_created(self, layer: str, key: tuple[str, ...]) -> bool:
        with self._lock:
            return _key(layer, key) in self._data["created"]

    def created_detail(self, layer: str, key: tuple[str, ...]) -> Any:
        with self._lock:
            return self._data["created"].get(_key(layer, key))

    def forget(self, layer: str, key: tuple[str, ...]) -> None:
        with self._lock:
            self._data["created"].pop(_key(layer, key), None)
            self._save()

    # -- values found before a change --------------------------------------------------------
    def found(self, layer: str, key: tuple[str, ...], value: Any) -> None:
        """Record the value found before the first change; later changes keep the first one."""
        with self._lock:
            self._data["found"].setdefault(_key(layer, key), value)
            self._save()

    def original(self, layer: str, key: tuple[str, ...]) -> Any:
        with self._lock:
            return self._data["found"].get(_key(layer, key))

    def restored(self, layer: str, key: tuple[str, ...]) -> None:
        with self._lock:
            self._data["found"].pop(_key(layer, key), None)
            self._save()

    def entries(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._data))
