#!/usr/bin/env bash
# The main job end to end on the local lab: install, plan the reference overlay.
# (Grows with the lab: bring it up, `hybridctl up`, `hybridctl check`.) Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
hybridctl plan -i inventory/reference.yaml
