"""The VIP as a local address of the active node (``ip addr add VIP/32 dev IFACE``).

Route tables bring packets for the VIP to the node's ENI; the node answers only if the
address is its own. The OCF agent adds it on ``start`` and removes it on ``stop``. Plain
iproute2 commands (argv lists, no shell).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Address


@dataclass
class AddressError(Exception):
    """``kind``: ``missing-tool``, ``no-device``, ``permission`` or ``failed``."""

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def _run(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        raise AddressError("missing-tool", f"{argv[0]} not found (install iproute2)")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip()
        lowered = err.lower()
        if "cannot find device" in lowered or "does not exist" in lowered:
            raise AddressError("no-device", f"{' '.join(argv)}: {err}")
        if "not permitted" in lowered or "permission denied" in lowered:
            raise AddressError("permission", f"{' '.join(argv)}: {err}")
        raise AddressError("failed", f"{' '.join(argv)}: {err}")
    return proc.stdout


def has_address(interface: str, address: IPv4Address) -> bool:
    out = _run(["ip", "-j", "-4", "addr", "show", "dev", interface])
    for link in json.loads(out or "[]"):
        for info in link.get("addr_info", []):
            if info.get("local") == str(address):
                return True
    return False


def add_address(interface: str, address: IPv4Address) -> bool:
    """Add ``address/32``; ``False`` when it was there already."""
    if has_address(interface, address):
        return False
    _run(["ip", "addr", "add", f"{address}/32", "dev", interface])
    return True


def remove_address(interface: str, address: IPv4Address) -> bool:
    """Remove it; ``False`` when it was not there (or the device is gone: nothing to remove)."""
    try:
        if not has_address(interface, address):
            return False
    except AddressError as exc:
        if exc.kind == "no-device":
            return False
        raise
    _run(["ip", "addr", "del", f"{address}/32", "dev", interface])
    return True
