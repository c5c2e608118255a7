"""Which Linux distributions the host backend supports, from a host's /etc/os-release. Pure.

The read script prints /etc/os-release (section ``os``; no extra exec). Only the releases in
:data:`SUPPORTED` are configured; any other gets one clear error per host and the engine plans
nothing on ANY host (``ReadResult.blocking``): a half-configured overlay is worse than none.

What differs between the supported releases, and what does not:

| release | SoftEther (distribution packages) | where from | packaged unit file |
|---|---|---|---|
| Debian 12 bookworm | softether-vpnserver, -vpnbridge, -vpncmd (5.01 build 9674) | main | /lib/systemd/system |
| Debian 13 trixie | the same three packages (a newer 5.x upstream) | main | /usr/lib/systemd/system |
| Ubuntu 22.04 jammy | the same three packages (Debian's packaging) | universe | /lib/systemd/system |
| Ubuntu 24.04 noble | the same three packages (Debian's packaging) | universe | /usr/lib/systemd/system |

Same in all four: package names, the binaries under /usr/libexec/softether/vpn{server,bridge}/
(``hostfiles.SOFTETHER_BINARIES``), /usr/bin/vpncmd, the state directory /var/lib/softether, the
service names ``softether-vpn{server,bridge}`` (hybridctl writes its own units to
/etc/systemd/system, which take precedence over the packaged ones wherever those live), apt,
dpkg-query and iproute2's JSON. On Ubuntu the packages are in ``universe``: a host without it
enabled fails the package step saying so (and with the upstream-tarball pointer, docs/hosts.md,
as any host whose repositories lack the package). Only Debian 12 runs in this project's lab and CI; the
other rows come from the distributions' package file lists.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Distribution:
    id: str  # os-release ID
    version: str  # os-release VERSION_ID
    label: str
    component: str  # the archive area SoftEther comes from
    unit_dir: str  # where the packages put their own unit files (informational)


SUPPORTED: tuple[Distribution, ...] = (
    Distribution("debian", "12", "Debian 12 (bookworm)", "main", "/lib/systemd/system"),
    Distribution("debian", "13", "Debian 13 (trixie)", "main", "/usr/lib/systemd/system"),
    Distribution("ubuntu", "22.04", "Ubuntu 22.04 LTS (jammy)", "universe", "/lib/systemd/system"),
    Distribution("ubuntu", "24.04", "Ubuntu 24.04 LTS (noble)", "universe", "/usr/lib/systemd/system"),
)
SUPPORTED_TEXT = ", ".join(d.label for d in SUPPORTED)


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines of os-release(5); values may be quoted shell-style; comments skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        out[key.strip()] = parts[0] if parts else ""
    return out


@dataclass(frozen=True)
class Verdict:
    distribution: Distribution | None
    error: str  # empty when supported

    @property
    def ok(self) -> bool:
        return self.distribution is not None


def check(os_release: dict[str, str]) -> Verdict:
    """Whether a host with this os-release is supported; if not, why, in one sentence."""
    if not os_release:
        return Verdict(None, f"no /etc/os-release: cannot tell the distribution (supported: {SUPPORTED_TEXT})")
    ident = os_release.get("ID", "").lower()
    version = os_release.get("VERSION_ID", "")
    name = os_release.get("PRETTY_NAME") or f"{ident} {version}".strip()
    for distribution in SUPPORTED:
        if distribution.id == ident and distribution.version == version:
            return Verdict(distribution, "")
    return Verdict(None, f"{name} is not a supported distribution (supported: {SUPPORTED_TEXT})")
