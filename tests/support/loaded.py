"""Which modules a hybridctl command loads: run it in a fresh interpreter and read its sys.modules.

A test process has imported the lab, moto and both SDKs long before, so the question can only
be answered by a new interpreter: it runs the real entry point (``hybridctl.cli.main.main``) and,
after the command returns, writes its exit code and ``sorted(sys.modules)`` to a JSON file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

# Runs in the child: the command through main(), then what it loaded. A module named in
# argv[2] is made absent first (None in sys.modules: importing it raises ModuleNotFoundError and
# importlib.util.find_spec returns None), as on a machine without that package.
_WRAPPER = """
import json, sys

report, absent, args = sys.argv[1], sys.argv[2], sys.argv[3:]
for name in filter(None, absent.split(",")):
    sys.modules[name] = None
from hybridctl.cli.main import main

try:
    main(args)
    code = 0
except SystemExit as done:
    code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
with open(report, "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""

LAB = ("hybridctl_lab",)
MOTO = ("moto",)
AZURE_SDK = ("azure",)
AWS_SDK = ("boto3", "botocore")


@dataclass(frozen=True)
class Loaded:
    code: int
    modules: list[str]
    output: str

    def under(self, *packages: str) -> list[str]:
        """The loaded modules that are one of ``packages`` or inside one."""
        return [m for m in self.modules if any(m == p or m.startswith(p + ".") for p in packages)]


def modules_after(args: list[str], tmp_path: Path, *, absent: Sequence[str] = (), timeout: float = 300) -> Loaded:
    """Run ``hybridctl ARGS`` in a new interpreter (state under ``tmp_path``); what it loaded.

    ``absent``: top-level packages the child behaves as if not installed.
    """
    report = tmp_path / "loaded.json"
    env = {**os.environ, "HYBRIDCTL_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(report), ",".join(absent), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0 and report.exists(), output
    document = json.loads(report.read_text())
    return Loaded(code=document["code"], modules=document["modules"], output=output)
