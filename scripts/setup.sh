#!/usr/bin/env bash
# Everything hybridctl, its lab and its tests need on a fresh Debian 12 machine (run as root).
# Idempotent: re-running only checks. Leaves a virtualenv in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (the lab creates network namespaces)" >&2
  exit 2
fi

APT_PACKAGES=(
  python3 python3-venv python3-pip ca-certificates git
  iproute2 iputils-ping nftables procps psmisc util-linux netcat-openbsd
  openssh-server openssh-client sudo openssl systemd dbus
  softether-vpnserver softether-vpnbridge softether-vpncmd
  graphviz
  resource-agents libxml2-utils
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep package scripts from starting sshd / vpnserver in the machine's own namespace.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"hybridctl needs Python >= 3.11, found {sys.version.split()[0]}")
PY
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# Pinned to the versions the suite last passed with: moto's internals, which the lab's AWS
# emulator extends, change between patch releases.
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
echo "setup: ready ($(.venv/bin/hybridctl --help >/dev/null && echo hybridctl ok))"
