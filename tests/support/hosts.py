"""What the SSH host backend's integration tests share: a hosts-only context and an argv watcher."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from hybridctl.backends import hosts
from hybridctl.core.inventory.load import load_inventory, plan_loaded
from hybridctl.features.engine import Context, Options, open_context


def hosts_context(inventory: Path, *, purge: bool = False) -> Context:
    """The engine's context for ``inventory`` with the SSH host backend only (no cloud backends)."""
    loaded = load_inventory(inventory)
    return open_context(loaded, plan_loaded(loaded), Options(purge=purge), factories=[hosts.backend_for])


class ArgvSampler:
    """`ps -eo args` every 10 ms while a block runs: what any local user could see in argv."""

    def __init__(self) -> None:
        self.lines: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            self.lines.update(out.splitlines())
            time.sleep(0.01)

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
