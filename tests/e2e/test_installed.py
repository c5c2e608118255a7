"""hybridctl as a user installs it: a built wheel in a fresh virtualenv outside the checkout.

1. `pip wheel --no-deps` builds the wheel from this checkout; a new virtualenv under
   /var/lib/hybridctl-test (not the checkout, not the test's .venv) installs it with
   `-c constraints.txt`;
2. the installed `hybridctl plan -i inventory/reference.yaml`, run from a directory outside
   the checkout (with no PYTHONPATH), renders every host file from the package's templates;
3. on a lab brought up with the test helpers, the installed `hybridctl up --yes` configures it
   and the installed `hybridctl routes diff` finds every layer in sync;
4. without the `lab` extra, `hybridctl lab` says how to install it (exit 2); once the wheel's
   `[lab]` extra is installed, the wheel's `hybridctl.plugins` entry point provides the command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.e2e.test_lab import running_lab

pytestmark = [pytest.mark.lab]

REPO = Path(__file__).resolve().parents[2]
BASE = Path("/var/lib/hybridctl-test")
LAB_DIR = Path("/var/lib/hybridctl-lab-test-installed")


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """The ``hybridctl`` executable of a fresh virtualenv holding only the wheel and its dependencies."""
    require(os.geteuid() == 0, "root (the virtualenv lives under /var/lib/hybridctl-test)")
    require(subprocess.run([sys.executable, "-m", "venv", "--help"], capture_output=True).returncode == 0,
            "python3-venv")
    BASE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="installed-", dir=BASE))
    try:
        dist = root / "dist"
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(REPO)],
            capture_output=True, text=True, timeout=600,
        )
        assert built.returncode == 0, built.stdout + built.stderr
        wheels = list(dist.glob("hybridctl-*.whl"))
        assert len(wheels) == 1, wheels
        venv = root / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        install = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", str(wheels[0]), "-c", str(REPO / "constraints.txt")],
            capture_output=True, text=True, timeout=1200, cwd=root,
        )
        assert install.returncode == 0, install.stdout + install.stderr
        yield venv / "bin" / "hybridctl"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(command: Path, *args: str, state_dir: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"HYBRIDCTL_STATE_DIR": str(state_dir), "COLUMNS": "200"})
    return subprocess.run(
        [str(command), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=state_dir
    )


def test_the_installed_package_runs_from_its_own_files(installed: Path, tmp_path: Path) -> None:
    python = installed.parent / "python"
    code = "import hybridctl, hybridctl.core.hostfiles as h; print(hybridctl.__file__); print(h.TEMPLATES)"
    where = subprocess.run(
        [str(python), "-c", code],
        capture_output=True, text=True, cwd=tmp_path, env={"PATH": os.environ["PATH"]}, check=True,
    ).stdout.split()
    for path in where:
        assert path.startswith(str(installed.parent.parent)) and not path.startswith(str(REPO)), where


def test_installed_plan_renders_every_host_file(installed: Path, tmp_path: Path) -> None:
    done = run(installed, "plan", "-i", str(REPO / "inventory" / "reference.yaml"), "-o", "json", state_dir=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    for path in ("/etc/systemd/system/softether-vpnserver.service", "/etc/hybridctl/overlay.sh",
                 "/etc/sysctl.d/60-hybridctl.conf", "/etc/systemd/system/hybridctl-overlay.service"):
        assert path in text, path
    json.loads(text)  # still a JSON document


def test_installed_up_and_routes_diff_on_the_lab(installed: Path, tmp_path: Path) -> None:
    with running_lab(LAB_DIR) as lab:
        up = run(installed, "up", "-i", str(lab.inventory), "--yes", "-o", "json", state_dir=tmp_path)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        diff = run(installed, "routes", "diff", "-i", str(lab.inventory), "-o", "json", state_dir=tmp_path)
        assert diff.returncode == 0, diff.stdout[-3000:] + diff.stderr[-3000:]


def test_the_lab_command_comes_with_the_lab_extra(installed: Path, tmp_path: Path) -> None:
    missing = run(installed, "lab", "status", state_dir=tmp_path, timeout=120)
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "hybridctl lab is not available (missing Python package moto)" in missing.stderr
    assert "pipx install --force 'hybridctl[lab]'" in missing.stderr
    listed = run(installed, "--help", state_dir=tmp_path, timeout=120)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "(not installed)" in next(line for line in listed.stdout.splitlines() if " lab " in line)

    root = installed.parent.parent.parent  # ROOT/venv/bin/hybridctl
    (wheel,) = (root / "dist").glob("hybridctl-*.whl")
    extra = subprocess.run(
        [str(installed.parent / "pip"), "install", "-q", f"{wheel}[lab]", "-c", str(REPO / "constraints.txt")],
        capture_output=True, text=True, timeout=1200, cwd=root,
    )
    assert extra.returncode == 0, extra.stdout + extra.stderr
    present = run(installed, "lab", "--help", state_dir=tmp_path, timeout=120)
    assert present.returncode == 0, present.stdout + present.stderr
    for command in ("up", "down", "status", "exec", "pings"):
        assert f" {command} " in present.stdout, present.stdout
