#!/usr/bin/env bash
# The main job end to end on the local lab, as root on a fresh Debian 12 machine:
#   install -> bring the lab up (namespaces, sshd, SoftEther packages, AWS/Azure emulators)
#   -> `hybridctl up` builds the overlay from bare hosts -> `hybridctl check` pings every pair
#   -> `hybridctl budget set` puts the reference's spend guard in both emulated clouds and
#      `hybridctl budget status` shows it (exit 3 would mean a threshold is crossed)
#   -> what it costs (`cost`), what bills while unused (`leaks`), and a picture (`graph`).
# The lab stays up afterwards so you can look around; `hybridctl lab down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
LAB_DIR="${HYBRIDCTL_LAB_DIR:-/var/lib/hybridctl-lab}"

hybridctl lab up
hybridctl plan -i "$LAB_DIR/lab.yaml" --layer cloud-route --layer host-route
hybridctl up -i "$LAB_DIR/lab.yaml" --yes
hybridctl check -i "$LAB_DIR/lab.yaml"
hybridctl check -i "$LAB_DIR/lab.yaml" -o json > "$LAB_DIR/check.json"  # what `graph` colours by
hybridctl routes diff -i "$LAB_DIR/lab.yaml"
hybridctl budget set -i "$LAB_DIR/lab.yaml"
hybridctl budget status -i "$LAB_DIR/lab.yaml"
# Spend this month (the lab seeds some weeks of it) and the forgotten resources the lab seeds.
hybridctl cost -i "$LAB_DIR/lab.yaml" --since "$(date -u -d '13 days ago' +%F)" --plot "$LAB_DIR/spend.png"
hybridctl leaks -i "$LAB_DIR/lab.yaml"
hybridctl graph -i "$LAB_DIR/lab.yaml" --from-check "$LAB_DIR/check.json" -o svg -f "$LAB_DIR/overlay.svg"
echo
echo "The overlay is up. Pictures: $LAB_DIR/overlay.svg (the overlay, coloured by check), $LAB_DIR/spend.png"
echo "Try: hybridctl lab status | hybridctl routes diff -i $LAB_DIR/lab.yaml | hybridctl budget list -i $LAB_DIR/lab.yaml"
echo "                  and: hybridctl down -i $LAB_DIR/lab.yaml --yes; hybridctl lab down"
