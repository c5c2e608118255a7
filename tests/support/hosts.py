"""What the SSH host backend's integration tests share: a hosts-only context and an argv watcher."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from hybridctl.backends import hosts
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.features.engine import Context, Options, open_context


def shell_functions() -> str:
    """The host scripts' shell functions (hostscript's PRELUDE and APPLY_FUNCTIONS) for a test's
    own ``sh -c``, without PRELUDE's first line (which would take the test shell's stdin away)."""
    from hybridctl.backends.hostscript import APPLY_FUNCTIONS, PRELUDE

    return PRELUDE.replace("exec 3<&0 </dev/null 2>&1\n", "") + APPLY_FUNCTIONS


def hosts_context(inventory: Path, *, purge: bool = False) -> Context:
    """The engine's context for ``inventory`` with the SSH host backend only (no cloud backends)."""
    loaded = load_inventory(inventory)
    return open_context(loaded, plan_loaded(loaded), Options(purge=purge), factories=[hosts.backend_for])


def argv_lines() -> set[str]:
    """Every process's command line as ``ps -eo args`` shows it (arguments joined by spaces)."""
    lines: set[str] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "cmdline").read_bytes()
        except OSError:  # the process ended meanwhile
            continue
        if raw:
            lines.add(raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace"))
    return lines


class ArgvSampler:
    """Every process's argv every 10 ms while a block runs: what any local user could see.

    Read from /proc in-process, as ps reads it, rather than by running ps: on a loaded machine
    a fork and exec per sample could miss the short-lived sudo and script processes.
    """

    def __init__(self) -> None:
        self.lines: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.lines.update(argv_lines())
            time.sleep(0.01)

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
