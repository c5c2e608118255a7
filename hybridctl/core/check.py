"""`hybridctl check`: probe every test host and service from every prober in other sites.

Probers are test hosts and LAN clients with SSH. Each prober gets one SSH command that runs
all its probes in parallel and prints one line each: per pair of sites a ping, a
don't-fragment ping at the overlay's MTU (``transit.mtu``; when it fails, a binary search
for the largest size that passes), and, towards targets with SSH, a bulk TCP transfer of
:data:`BULK_BYTES` each way to a one-shot listener started there. What ping alone cannot
show, an MTU black hole (big packets dropped, the ICMP "fragmentation needed" lost), then
fails by name instead of hanging an application; TCP connects probe the services.
When a probe fails, :func:`diagnose` follows the planned path (planner.trace) and names the
first layer on it whose actual state differs from the plan (flag, cloud route, host route,
L3 switch, cascade), using the same read as `routes diff`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address

from hybridctl.core.diff import Change
from hybridctl.core.inventory.models import Inventory, SshEndpoint
from hybridctl.core.planner.desired import DesiredState, Resource
from hybridctl.core.planner.trace import TraceError, trace


@dataclass(frozen=True)
class Endpoint:
    name: str
    site: str
    address: IPv4Address
    ssh: SshEndpoint | None


@dataclass(frozen=True)
class Probe:
    source: str
    source_site: str
    target: str
    target_site: str
    address: IPv4Address
    port: int | None  # None: ping, mtu or bulk
    check: str | None = None  # "mtu" or "bulk"; None: ping (no port) or tcp connect (port)

    @property
    def kind(self) -> str:
        return self.check or ("ping" if self.port is None else "tcp")

    @property
    def label(self) -> str:
        if self.check:
            return f"{self.target} ({self.check})"
        return f"{self.target}" if self.port is None else f"{self.target}:{self.port}"


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    ok: bool
    rtt_ms: float | None = None
    detail: str = ""
    suspect: str = ""  # layer most likely at fault, when failed
    size: int | None = None  # mtu: the largest packet that passed; bulk: bytes received back


def endpoints(inventory: Inventory) -> list[Endpoint]:
    out: list[Endpoint] = []
    for site in inventory.sites:
        out.extend(Endpoint(t.name, site.name, t.address, t.ssh) for t in site.test_hosts)
        out.extend(Endpoint(c.name, site.name, c.address, c.ssh) for c in site.clients)
    seen: set[IPv4Address] = set()
    unique = []
    for endpoint in out:  # a client may also be listed as a test host
        if endpoint.address not in seen:
            seen.add(endpoint.address)
            unique.append(endpoint)
    return unique


def _service_targets(inventory: Inventory) -> list[tuple[str, str, IPv4Address, int]]:
    by_name = {e.name: e for e in endpoints(inventory)}
    for site in inventory.sites:
        by_name.setdefault(
            site.gateway.name, Endpoint(site.gateway.name, site.name, site.gateway.private_ip, site.gateway.ssh)
        )
    out = []
    for site in inventory.sites:
        for service in site.services:
            host, _, port = service.rpartition(":")
            try:
                address = IPv4Address(host)
                name = host
            except ValueError:
                address = by_name[host].address
                name = host
            out.append((name, site.name, address, int(port)))
    return out


BULK_BYTES = 256 * 1024  # each way: far more than a window of segments, so a black hole stalls it
IP_ICMP_HEADERS = 28  # a ping's packet is its payload plus these (IPv4 20, ICMP 8)


def probes(inventory: Inventory, *, deep: bool = True, bulk: bool = False) -> list[Probe]:
    """Every prober to every endpoint and service of every other site.

    ``deep``: also a don't-fragment ping at the overlay's MTU per pair; ``bulk``: and a bulk TCP
    transfer towards every target with SSH (where the listener can be started).
    """
    all_endpoints = endpoints(inventory)
    services = _service_targets(inventory)
    out: list[Probe] = []
    for source in all_endpoints:
        if source.ssh is None:
            continue
        for target in all_endpoints:
            if target.site != source.site:
                out.append(Probe(source.name, source.site, target.name, target.site, target.address, None))
                if deep:
                    out.append(Probe(source.name, source.site, target.name, target.site, target.address, None, "mtu"))
                    if bulk and target.ssh is not None:
                        out.append(
                            Probe(source.name, source.site, target.name, target.site, target.address, None, "bulk")
                        )
        for name, site, address, port in services:
            if site != source.site:
                out.append(Probe(source.name, source.site, name, site, address, port))
    return out


# The bulk client: send n bytes, half-close, read n back; one BULK line either way.
BULK_CLIENT = """
import socket, sys, time
i, a, p, n, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
sent = got = 0
err = "-"
start = time.monotonic()
end = start + 3 * t  # the whole transfer, however slowly the bytes trickle
try:
    c = socket.create_connection((a, p), timeout=t)
    c.settimeout(t)
    chunk = bytes(65536)
    while sent < n:
        if time.monotonic() > end:
            raise TimeoutError
        sent += c.send(chunk[: n - sent])
    c.shutdown(socket.SHUT_WR)
    while got < n:
        if time.monotonic() > end:
            raise TimeoutError
        b = c.recv(65536)
        if not b:
            break
        got += len(b)
except OSError as e:
    err = type(e).__name__
print("BULK", i, sent, got, round((time.monotonic() - start) * 1000), err)
"""

# The listener on a target: binds a free port, prints it, detaches; each connection gets n bytes
# back once it sent n (or closed); it exits when nobody connected for ``idle`` seconds.
BULK_LISTENER = """
import os, socket, sys, threading
n, idle = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
if os.fork():
    os._exit(0)
os.setsid()
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
def serve(c):
    c.settimeout(idle)
    try:
        got = 0
        while got < n:
            b = c.recv(65536)
            if not b:
                break
            got += len(b)
        c.sendall(bytes(n))
    except OSError:
        pass
    finally:
        c.close()
s.settimeout(idle)
while True:
    try:
        c, _ = s.accept()
    except OSError:
        break
    threading.Thread(target=serve, args=(c,)).start()
"""


def listener_command(idle: float = 30.0, size: int = BULK_BYTES) -> str:
    """The command starting a bulk listener on a target; its stdout is the port."""
    return f"python3 -c {shlex.quote(BULK_LISTENER)} {size} {idle:g}"


def _mtu_lines(index: int, address: str, mtu: int) -> str:
    """Full-size DF ping (twice: one lost packet is no finding), else a binary search down from it."""
    payload = mtu - IP_ICMP_HEADERS
    return (
        f'( t() {{ ping -n -M do -c 1 -W 1 -s "$1" {address} >/dev/null 2>&1; }}; '
        f'if t {payload} || t {payload}; then echo "MTU {index} 0 {payload}"; '
        f'elif ! t 0; then echo "MTU {index} 1 -"; '
        f"else lo=0; hi={payload}; while [ $((hi - lo)) -gt 1 ]; do mid=$(((lo + hi) / 2)); "
        f'if t $mid; then lo=$mid; else hi=$mid; fi; done; echo "MTU {index} 1 $lo"; fi ) &'
    )


def probe_script(
    items: Sequence[Probe],
    timeout: int = 2,
    *,
    mtu: int = 1500,
    bulk_ports: dict[str, int] | None = None,
    bulk_bytes: int = BULK_BYTES,
    bulk_timeout: float = 8.0,
) -> str:
    """One shell script running ``items`` in parallel.

    Prints ``PROBE <index> <rc> <rtt_ms|->`` (ping, tcp), ``MTU <index> <rc> <largest payload|->``
    and ``BULK <index> <sent> <received> <ms> <error|->`` lines. ``bulk_ports``: the listener's
    port per target name (a bulk probe to a target without one reports ``no-listener``).
    """
    lines = ["#!/bin/bash", "set -u", f"BULK_PY={shlex.quote(BULK_CLIENT)}"]
    bulk: list[str] = []  # one transfer at a time: concurrent ones queue in the tunnels and stall each other
    for index, probe in enumerate(items):
        address = shlex.quote(str(probe.address))
        if probe.check == "mtu":
            lines.append(_mtu_lines(index, address, mtu))
        elif probe.check == "bulk":
            port = (bulk_ports or {}).get(probe.target)
            if port is None:
                bulk.append(f'echo "BULK {index} 0 0 0 no-listener"')
            else:
                bulk.append(
                    f'python3 -c "$BULK_PY" {index} {address} {port} {bulk_bytes} {bulk_timeout:g} 2>/dev/null '
                    f'|| echo "BULK {index} 0 0 0 no-python3"'
                )
        elif probe.port is None:
            lines.append(
                f"( out=$(ping -n -c 1 -W {timeout} {address} 2>&1); rc=$?; "
                f"rtt=$(printf '%s' \"$out\" | sed -n 's/.*time=\\([0-9.]*\\).*/\\1/p' | head -n1); "
                f'echo "PROBE {index} $rc ${{rtt:--}}" ) &'
            )
        else:
            lines.append(
                f"( timeout {timeout} bash -c 'exec 3<>/dev/tcp/'{address}'/{probe.port}' 2>/dev/null; "
                f'echo "PROBE {index} $? -" ) &'
            )
    if bulk:
        lines.append("( " + "; ".join(bulk) + " ) &")
    lines.append("wait")
    return "\n".join(lines) + "\n"


_LINE = re.compile(r"^PROBE (\d+) (\d+) (\S+)$")
_MTU = re.compile(r"^MTU (\d+) (\d+) (\S+)$")
_BULK = re.compile(r"^BULK (\d+) (\d+) (\d+) (\d+) (\S+)$")


def _mtu_result(probe: Probe, rc: int, payload: str, mtu: int) -> ProbeResult:
    if rc == 0:
        return ProbeResult(probe, True, None, f"{mtu} bytes pass with don't-fragment", size=mtu)
    if payload == "-":
        return ProbeResult(probe, False, None, "no don't-fragment ping passes at any size")
    largest = int(payload) + IP_ICMP_HEADERS
    return ProbeResult(
        probe,
        False,
        None,
        f"don't-fragment pings pass up to {largest} bytes, not the overlay MTU {mtu}",
        size=largest,
    )


def _bulk_result(probe: Probe, sent: int, got: int, ms: int, error: str, size: int) -> ProbeResult:
    if error == "-" and sent == size and got == size:
        return ProbeResult(probe, True, float(ms), f"{size} bytes each way in {ms} ms", size=got)
    why = {
        "no-listener": "no listener could be started on the target",
        "no-python3": "python3 is missing on the prober",
        "TimeoutError": "stalled",
        "timeout": "stalled",
        "ConnectionRefusedError": "connection refused",
    }.get(error, error if error != "-" else "connection closed early")
    return ProbeResult(
        probe, False, None, f"bulk TCP {why}: sent {sent} of {size} bytes, received {got} back", size=got
    )


def parse_probe_output(
    items: Sequence[Probe], output: str, *, mtu: int = 1500, bulk_bytes: int = BULK_BYTES
) -> list[ProbeResult]:
    results: dict[int, ProbeResult] = {}
    for line in output.splitlines():
        text = line.strip()
        mtu_match = _MTU.match(text)
        if mtu_match and int(mtu_match[1]) < len(items):
            index = int(mtu_match[1])
            results[index] = _mtu_result(items[index], int(mtu_match[2]), mtu_match[3], mtu)
            continue
        bulk = _BULK.match(text)
        if bulk and int(bulk[1]) < len(items):
            index = int(bulk[1])
            results[index] = _bulk_result(items[index], int(bulk[2]), int(bulk[3]), int(bulk[4]), bulk[5], bulk_bytes)
            continue
        match = _LINE.match(text)
        if not match:
            continue
        index, rc, rtt = int(match[1]), int(match[2]), match[3]
        if index >= len(items):
            continue
        ok = rc == 0
        results[index] = ProbeResult(
            items[index],
            ok,
            float(rtt) if ok and rtt != "-" else None,
            "" if ok else ("no reply" if items[index].port is None else "connection failed"),
        )
    return [results.get(i, ProbeResult(p, False, None, "probe did not report")) for i, p in enumerate(items)]


# -- diagnosis -----------------------------------------------------------------------------------

LAYER_NAMES = {
    "flag": "forwarding flag",
    "cloud-route": "cloud route",
    "cloud-association": "cloud route table association",
    "host-route": "host route",
    "host-address": "host address",
    "client-route": "LAN client route",
    "l3": "L3 switch",
    "cascade": "cascade down",
    "host-service": "SoftEther service",
}


def _matching_prefix(prefixes: Iterable[IPv4Network], address: IPv4Address) -> IPv4Network | None:
    best = None
    for prefix in prefixes:
        if address in prefix and (best is None or prefix.prefixlen > best.prefixlen):
            best = prefix
    return best


def path_keys(inventory: Inventory, desired: DesiredState, src: IPv4Address, dst: IPv4Address) -> list[tuple[str, str]]:
    """(layer, key-text) of every resource the planned path src -> dst relies on, in path order."""
    try:
        hops = trace(inventory, desired, src, dst)
    except TraceError as error:
        hops = error.hops
    keys: list[tuple[str, str]] = []
    for hop in hops:
        kind, _, name = hop.where.partition(":")
        if hop.layer == "cloud-route":
            site = inventory.site(name)
            table = next(t for t in desired.route_tables if t.site == name and any(dst in r.prefix for r in t.routes))
            prefix = _matching_prefix((r.prefix for r in table.routes), dst)
            keys.append(("cloud-route", f"{name} {table.name} {prefix}"))
            keys.extend(("cloud-association", f"{name} {table.name} {s}") for s in table.subnets)
            gateway = site.gateway
            target = gateway.eni or gateway.instance or gateway.nic or gateway.name
            keys.append(("flag", f"{name} {target}"))
        elif hop.layer == "client-route":
            clients = [c for c in desired.clients if c.site == name]
            for client in clients:
                prefix = _matching_prefix(client.prefixes, dst)
                keys.append(("client-route", f"{client.client} {prefix}"))
        if kind == "bridge":
            gateway = inventory.site(name).gateway
            keys.append(("flag", f"{name} {gateway.name} net.ipv4.ip_forward"))
            keys.append(("cascade", gateway.name))
            keys.append(("host-service", gateway.name))
            keys.append(("host-address", gateway.name))
            if hop.layer == "host-route":
                host = desired.host(gateway.name)
                prefix = _matching_prefix((r.prefix for r in host.routes), dst)
                keys.append(("host-route", f"{gateway.name} {prefix}"))
        if kind == "switch":
            server = inventory.server_site.gateway.name
            keys.append(("host-service", server))
            keys.append(("l3", server))
    return keys


def _cascade_down(actual: Iterable[Resource], host: str) -> bool:
    for resource in actual:
        if resource.layer == "softether" and resource.key[0] == host and resource.key[1] == "cascade":
            return resource.get("online") != "true" or resource.get("status", "established") != "established"
    return False


def diagnose(
    inventory: Inventory,
    desired: DesiredState,
    src: IPv4Address,
    dst: IPv4Address,
    drift: Sequence[Change],
    actual: Sequence[Resource],
) -> str:
    """The layer most likely at fault for src -> dst (or its reply), from drift along the path."""
    drift_text = [(c.layer, " ".join(c.key), c) for c in drift if c.action != "delete"]
    for path in (path_keys(inventory, desired, src, dst), path_keys(inventory, desired, dst, src)):
        for layer, key in path:
            if layer == "cascade":
                if _cascade_down(actual, key) or any(
                    d_layer == "softether" and text.startswith(f"{key} cascade") for d_layer, text, _ in drift_text
                ):
                    return f"{LAYER_NAMES['cascade']} on {key}"
                continue
            if layer == "l3":
                for d_layer, text, _ in drift_text:
                    if d_layer == "softether" and text.startswith(key) and (" l3-" in text):
                        return f"{LAYER_NAMES['l3']} ({text})"
                continue
            for d_layer, text, _ in drift_text:
                if d_layer == layer and text.startswith(key):
                    return f"{LAYER_NAMES.get(layer, layer)} ({text})"
    return "no layer differs from the plan: look at security groups / NSGs and host firewalls"


def is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True
