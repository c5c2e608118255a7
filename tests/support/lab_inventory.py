"""The lab's generated inventory, written for unit tests (no lab running: nothing is started)."""

from __future__ import annotations

from pathlib import Path

from hybridctl_lab import inventory, seed
from hybridctl_lab.topology import build_topology


def write_lab_inventory(
    root: Path, extra_clients: int = 0, extra_sites: int = 0, *, aws_port: int = 5511, azure_port: int = 5512
) -> Path:
    """``root/lab.yaml`` for a lab dir at ``root``, with the Azure client secret file it refers to."""
    (root / "azure").mkdir(exist_ok=True)
    (root / seed.AZURE_CLIENT_SECRET).write_text("lab-secret\n")
    topology = build_topology(extra_clients, extra_sites)
    return inventory.write(root / "lab.yaml", topology, root, aws_port=aws_port, azure_port=azure_port)


def never(layer: str, key: tuple[str, ...]) -> bool:
    """An ownership journal that created nothing."""
    return False
