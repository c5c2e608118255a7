"""A network cut of the AWS bridge, then `up` one second after the network came back.

One lab for the module (LAB_DIR /var/lib/hybridctl-lab-test-blip, under the lab lock), converged
with `up`. The AWS bridge's veth on the VPC fabric (``hl-br`` in ``hl-aws-fab``) is set down
for at least 30 s and until its cascade's session has timed out (`routes diff` no longer sees
it established: SoftEther is on its own retry timer; a shorter cut is survived by the session
itself). Right after the link is back (the reconciler has re-installed the fabric's routes),
`up` must not fail on the retrying cascade: it reconnects it (the restart path), waits,
bounded, for the session, exits 0, and `check` passes on every pair.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridctl_lab import manager
from tests.e2e.test_check import cascades
from tests.e2e.test_lab import running_lab
from tests.e2e.test_up import Run

pytestmark = [pytest.mark.lab]

LAB_DIR = Path("/var/lib/hybridctl-lab-test-blip")
FABRIC, LINK = "hl-aws-fab", "hl-br"
CUT_S = 30


@pytest.fixture(scope="module")
def lab() -> Iterator[manager.LabUpResult]:
    with running_lab(LAB_DIR) as result:
        yield result


def link(state: str) -> None:
    done = subprocess.run(["ip", "-n", FABRIC, "link", "set", LINK, state], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_up_right_after_a_network_cut_reconnects_the_cascade(lab: manager.LabUpResult) -> None:
    with tempfile.TemporaryDirectory(prefix="hybridctl-e2e-blip-") as state_dir:
        first = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
        assert first.rc == 0, first
        link("down")
        try:
            time.sleep(CUT_S)
            deadline = time.monotonic() + 120
            while "aws-bridge" not in cascades(lab, state_dir):  # not established any more
                assert time.monotonic() < deadline, "the cascade never noticed the cut"
                time.sleep(2)
        finally:
            link("up")
        manager.wait_reconciled(timeout=10, kick=True, lab_dir=LAB_DIR)  # the fabric's routes are back
        time.sleep(1)
        again = Run(["up", "-i", str(lab.inventory), "--yes", "-o", "json"], state_dir)
        assert again.rc == 0, again
        touched = {(c["layer"], c["key"][0], c["key"][1]) for c in again.json()["changes"]}
        assert ("softether", "aws-bridge", "cascade") in touched, touched  # it was reconnected
        check = Run(["check", "-i", str(lab.inventory), "-o", "json"], state_dir)
        probes = check.json()["probes"]
        assert check.rc == 0 and all(p["ok"] for p in probes), [p for p in probes if not p["ok"]]
