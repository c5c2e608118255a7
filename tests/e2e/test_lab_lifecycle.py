"""`hybridctl lab up` / `down` through the CLI: idempotent up, down twice, nothing left behind."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
import yaml

from hybridctl.core.errors import PreconditionError
from hybridctl_lab import dataplane, manager, netns
from tests.conftest import require
from tests.e2e.test_lab import E2E_LAB_DIR, free_port, hybridctl, require_lab
from tests.integration.test_lab_dataplane import lab_leftovers, root_snapshot

pytestmark = [pytest.mark.lab]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_up_twice_then_down_twice_leaves_nothing() -> None:
    require_lab()
    env = {
        "HYBRIDCTL_LAB_DIR": str(E2E_LAB_DIR),
        "HYBRIDCTL_LAB_AWS_PORT": str(free_port()),
        "HYBRIDCTL_LAB_AZURE_PORT": str(free_port()),
    }
    with dataplane.lab_lock():
        before = root_snapshot()
        try:
            first = hybridctl("lab", "up", "--extra-clients", "2", "-o", "json", env=env)
            assert first.returncode == 0, first.stderr
            up1 = json.loads(first.stdout)
            assert "cleaning up leftovers" in first.stderr  # progress goes to stderr
            inv = yaml.safe_load(Path(up1["inventory"]).read_text())
            clients = [c["name"] for c in inv["sites"][0]["clients"]]
            assert clients == ["hl-home-c1", "hl-home-c100", "hl-home-c101"]
            assert inv["aws"]["endpoint_url"].endswith(env["HYBRIDCTL_LAB_AWS_PORT"])

            second = hybridctl("lab", "up", env=env)  # over a running lab: starts fresh
            assert second.returncode == 0, second.stderr
            assert str(E2E_LAB_DIR / "lab.yaml") in second.stdout and "ssh_config" in second.stdout
            status = json.loads(hybridctl("lab", "status", "-o", "json", env=env).stdout)
            assert status["up"]
            assert status["daemon"]["pid"] != up1["daemon_pid"]
            assert not alive(up1["daemon_pid"])
            assert status["dataplane"]["extra_clients"] == 0
            daemon = status["daemon"]["pid"]
        finally:
            down1 = hybridctl("lab", "down", env=env)
            down2 = hybridctl("lab", "down", env=env)
        assert down1.returncode == 0, down1.stderr
        assert down2.returncode == 0, down2.stderr
        assert not alive(daemon)
        assert lab_leftovers(E2E_LAB_DIR) == []  # namespaces, mounts, processes (daemon: --lab-dir in argv)
        assert netns.list_namespaces("hl-") == []
        assert root_snapshot() == before  # no link, address or mount in the root namespace
        assert hybridctl("lab", "status", env=env).returncode == 1
        # What persists: the client key, credentials, the Azure CA, the daemon's log.
        left = sorted(str(p.relative_to(E2E_LAB_DIR)) for p in E2E_LAB_DIR.rglob("*") if p.is_file())
        assert [f for f in left if not f.startswith("azure/tls/")] == [
            "aws/credentials",
            "azure/client_secret",
            "daemon.log",
            "id_ed25519",
            "id_ed25519.pub",
        ]


def test_missing_programs_are_named_with_their_packages() -> None:
    require(os.geteuid() == 0, "root (the root check comes first)")
    env = {"PATH": os.path.dirname(sys.executable), "HYBRIDCTL_LAB_DIR": str(E2E_LAB_DIR)}
    out = hybridctl("lab", "up", env=env)
    assert out.returncode == 1
    text = " ".join(out.stderr.split())
    assert "missing programs for the lab" in text and "apt-get install" in text


def test_a_taken_port_is_named_before_anything_starts() -> None:
    require_lab()
    with socket.socket() as taken, dataplane.lab_lock():
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PreconditionError, match=f"port {port} for the AWS emulator is in use"):
            manager.up(lab_dir=E2E_LAB_DIR, aws_port=port, azure_port=free_port())
        assert lab_leftovers(E2E_LAB_DIR) == []
        assert manager.status(lab_dir=E2E_LAB_DIR).daemon_pid is None
