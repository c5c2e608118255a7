"""What one run shares with every backend: the plan, the stores, the options, the connected backends.

It lives in the backends layer because backends are built from it (``backend_for(context)``);
the engine (:mod:`hybridctl.features.engine`) opens it and drives the backends through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hybridctl.backends.base import Backend
from hybridctl.backends.journal import Journal
from hybridctl.backends.timeline import Timeline
from hybridctl.core.inventory.load import LoadedInventory
from hybridctl.core.planner.desired import DesiredState
from hybridctl.core.secrets import SecretStore


@dataclass
class Options:
    accept_new_host_keys: bool = False
    layers: list[str] | None = None
    purge: bool = False


@dataclass
class Context:
    """Everything a run shares: the plan, the stores, the connected backends."""

    loaded: LoadedInventory
    desired: DesiredState
    journal: Journal
    secrets: SecretStore
    options: Options
    backends: list[Backend] = field(default_factory=list)
    # Where the run's time went: each backend's read / apply / verify, and (the SSH host
    # backend records into the same timeline) every host's steps. `up --timings` renders it.
    timeline: Timeline = field(default_factory=Timeline)
    phase: str = "read"  # "verify" once changes were applied

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
