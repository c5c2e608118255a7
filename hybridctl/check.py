"""`hybridctl check`: probe every test host and service from every prober in other sites.

Probers are test hosts and LAN clients with SSH. Each prober gets one SSH command that runs
all its probes in parallel (ping, and TCP connects for services) and prints one line each.
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

from hybridctl.diff import Change
from hybridctl.inventory.models import Inventory, SshEndpoint
from hybridctl.planner.desired import DesiredState, Resource
from hybridctl.planner.trace import TraceError, trace


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
    port: int | None  # None: ping

    @property
    def kind(self) -> str:
        return "ping" if self.port is None else "tcp"

    @property
    def label(self) -> str:
        return f"{self.target}" if self.port is None else f"{self.target}:{self.port}"


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    ok: bool
    rtt_ms: float | None = None
    detail: str = ""
    suspect: str = ""  # layer most likely at fault, when failed


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


def probes(inventory: Inventory) -> list[Probe]:
    """Every prober to every endpoint and service of every other site."""
    all_endpoints = endpoints(inventory)
    services = _service_targets(inventory)
    out: list[Probe] = []
    for source in all_endpoints:
        if source.ssh is None:
            continue
        for target in all_endpoints:
            if target.site != source.site:
                out.append(Probe(source.name, source.site, target.name, target.site, target.address, None))
        for name, site, address, port in services:
            if site != source.site:
                out.append(Probe(source.name, source.site, name, site, address, port))
    return out


def probe_script(items: Sequence[Probe], timeout: int = 2) -> str:
    """One shell script running ``items`` in parallel; prints ``PROBE <index> <rc> <rtt_ms|->`` lines."""
    lines = ["#!/bin/bash", "set -u"]
    for index, probe in enumerate(items):
        address = shlex.quote(str(probe.address))
        if probe.port is None:
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
    lines.append("wait")
    return "\n".join(lines) + "\n"


_LINE = re.compile(r"^PROBE (\d+) (\d+) (\S+)$")


def parse_probe_output(items: Sequence[Probe], output: str) -> list[ProbeResult]:
    results: dict[int, ProbeResult] = {}
    for line in output.splitlines():
        match = _LINE.match(line.strip())
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
