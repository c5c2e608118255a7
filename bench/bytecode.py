"""Byte-compile the checkout before a benchmark times ``hybridctl`` as a command.

pip compiles a package's modules when it installs it (pipx, a wheel), so a user's ``hybridctl``
starts from bytecode. An editable checkout only gets bytecode when Python may write it: with
PYTHONDONTWRITEBYTECODE set (some machines set it for every process) every command would
compile all of hybridctl's modules again, ~0.1 s of CPU per command that no installed copy pays.
"""

from __future__ import annotations

import compileall
from pathlib import Path

import hybridctl
import hybridctl_lab


def byte_compile_checkout() -> None:
    """Write (or refresh) the bytecode of the hybridctl and hybridctl_lab packages being run."""
    for package in (hybridctl, hybridctl_lab):
        compileall.compile_dir(str(Path(package.__file__).parent), quiet=1)
