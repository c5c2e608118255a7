#!/usr/bin/env bash
# The full test suite: lint, types, unit, integration (moto, ARM emulator, sshd, SoftEther)
# and the lab end to end. Installs what it needs first. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check hybridctl hybridctl_lab tests bench
mypy hybridctl hybridctl_lab
# The layers of docs/architecture.md (contracts in pyproject.toml [tool.importlinter]).
lint-imports
# Unit tests are pure and run in parallel; backends and the lab use fixed names, so run serially.
pytest -q -n auto tests/unit
pytest -q tests/integration tests/e2e "$@"
