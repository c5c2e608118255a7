"""Read a SoftEther server/bridge in one vpncmd process and parse it into a SoftEtherConfig.

:func:`read_commands` builds the batch (server-wide lists, then one section per hub selected with
``Hub NAME`` inside the batch), :func:`parse_read` turns vpncmd's ``/CSV`` transcript into the
actual :class:`SoftEtherConfig` plus :class:`SoftEtherFacts` (runtime state the config does not
hold: admin password set or not, cascade established, switch running, bridge device status).

Names we need details for (hub users, switch interfaces, cascade settings) come from the desired
config: vpncmd cannot branch inside a batch, and what exists but is not desired is only ever
deleted as a whole, for which the list commands' names are enough.

Passwords are unknown in actual state: secret names are ``""``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from hybridctl.core.errors import RemoteError
from hybridctl.core.softether.model import (
    Cascade,
    Hub,
    HubUser,
    L3Interface,
    L3Route,
    L3Switch,
    LocalBridge,
    SoftEtherConfig,
    SoftEtherRole,
)
from hybridctl.core.softether.vpncmd import Transcript, check_transcript, parse_transcript

# Error codes that are answers, not failures, in a read batch.
READ_TOLERATED: dict[str, set[int]] = {
    "hub": {8},  # the hub does not exist (yet)
    "routeriflist": {93},  # the switch does not exist (yet)
    "routertablelist": {93},
    "cascadeget": {29},  # the cascade does not exist (yet)
    "cascadestatusget": {29, 61},  # 61: the cascade is offline
}


@dataclass(frozen=True)
class CascadeState:
    """What ``CascadeList`` says about one cascade right now."""

    hub: str
    name: str
    # "Offline (Stopped)", "Online (Connecting)", "Online (Established)", or after a failure
    # "Error 13: Time-out occurred during VPN session communication. ..." (still set online: retrying)
    status: str
    established_at: str | None = None

    @property
    def online(self) -> bool:
        """Configured online (connected or retrying), as opposed to set offline."""
        return not self.status.lower().startswith("offline")

    @property
    def established(self) -> bool:
        return "(established)" in self.status.lower()

    @property
    def error(self) -> str | None:
        return self.status if self.status.lower().startswith("error") else None


@dataclass(frozen=True)
class SoftEtherFacts:
    """Runtime facts read alongside the configuration."""

    product: str = ""
    role: SoftEtherRole | None = None
    admin_password_set: bool = False
    disabled_listeners: tuple[int, ...] = ()
    hubs_online: dict[str, bool] = field(default_factory=dict)
    bridge_status: dict[tuple[str, str], str] = field(default_factory=dict)  # (hub, device) -> status
    bridge_devices: tuple[str, ...] = ()  # NICs SoftEther can bridge (its own taps are not listed)
    l3_running: dict[str, bool] = field(default_factory=dict)
    cascades: dict[tuple[str, str], CascadeState] = field(default_factory=dict)

    def cascade(self, hub: str, name: str) -> CascadeState | None:
        return self.cascades.get((hub, name))


@dataclass(frozen=True)
class ReadResult:
    config: SoftEtherConfig
    facts: SoftEtherFacts
    transcript: Transcript


def read_commands(role: SoftEtherRole, desired: SoftEtherConfig | None = None) -> tuple[str, ...]:
    """The single read batch for a server or bridge.

    ``Hub`` (no argument) before every ``Hub NAME`` unselects the previous hub, so if NAME does
    not exist the hub-scoped commands fail instead of reading the previously selected hub.
    """
    cmds: list[str] = ["ServerInfoGet", "ListenerList", "HubList", "BridgeList", "BridgeDeviceList"]
    hub_names: list[str] = []
    switch_names: list[str] = []
    cascades_by_hub: dict[str, list[str]] = {}
    if desired is not None:
        hub_names = [h.name for h in desired.hubs]
        switch_names = [s.name for s in desired.l3_switches]
        for c in desired.cascades:
            cascades_by_hub.setdefault(c.hub, []).append(c.name)
            if c.hub not in hub_names:
                hub_names.append(c.hub)
    if role == "vpn-bridge" and "BRIDGE" not in hub_names:
        hub_names.insert(0, "BRIDGE")
    if role == "vpn-server":
        cmds.append("RouterList")
        for sw in switch_names:
            cmds += [f"RouterIfList {sw}", f"RouterTableList {sw}"]
    for hub in hub_names:
        cmds += ["Hub", f"Hub {hub}", "StatusGet"]
        if role == "vpn-server":
            cmds.append("UserList")
        cmds.append("CascadeList")
        cmds += [f"CascadeGet {name}" for name in cascades_by_hub.get(hub, [])]
    if hub_names:
        cmds.append("Hub")
    return tuple(cmds)


def csv_rows(lines: Iterable[str]) -> list[list[str]]:
    """CSV rows of a command's output, header included; stops at the first blank line."""
    block: list[str] = []
    for line in lines:
        if not line.strip():
            break
        block.append(line)
    return [row for row in csv.reader(block) if row]


def csv_table(lines: Iterable[str]) -> list[dict[str, str]]:
    rows = csv_rows(lines)
    if not rows:
        return []
    header = rows[0]
    return [dict(zip(header, row, strict=False)) for row in rows[1:]]


def item_values(lines: Iterable[str]) -> dict[str, str]:
    """``Item,Value`` output (StatusGet, CascadeGet, ServerInfoGet) as a dict."""
    rows = csv_rows(lines)
    if rows and rows[0][:2] == ["Item", "Value"]:
        rows = rows[1:]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def _mask_to_prefix(mask: str) -> int:
    return IPv4Network(f"0.0.0.0/{mask}").prefixlen


def _role_of(product: str) -> SoftEtherRole | None:
    text = product.lower()
    if "vpn bridge" in text:
        return "vpn-bridge"
    if "vpn server" in text:
        return "vpn-server"
    return None


def parse_read(
    text: str,
    role: SoftEtherRole,
    *,
    target: str = "vpncmd",
) -> ReadResult:
    """Parse the transcript of :func:`read_commands` into actual config + facts.

    Raises :class:`RemoteError` if vpncmd could not connect, the password was refused, the
    edition does not match ``role``, or a read command failed in an unexpected way.
    """
    transcript = parse_transcript(text)
    check_transcript(transcript, (), target=target, tolerate=READ_TOLERATED, tolerate_unselected=True)

    product = ""
    listeners: list[int] = []
    disabled: list[int] = []
    hub_order: list[str] = []
    hubs_online: dict[str, bool] = {}
    bridges: list[tuple[str, str, str]] = []  # hub, device, status
    bridge_devices: list[str] = []
    switch_running: dict[str, bool] = {}
    switch_ifs: dict[str, list[L3Interface]] = {}
    switch_routes: dict[str, list[L3Route]] = {}
    secure_nat: dict[str, bool] = {}
    users: dict[str, list[HubUser]] = {}
    cascade_states: dict[tuple[str, str], CascadeState] = {}
    cascade_cfg: dict[tuple[str, str], Cascade] = {}

    for r in transcript.results:
        if r.failed:
            continue
        name = r.name
        if name == "serverinfoget":
            product = item_values(r.lines).get("Product Name", "")
        elif name == "listenerlist":
            for row in csv_table(r.lines):
                port = int(row["Port Number"].split()[-1])
                listeners.append(port)
                if row.get("Status", "").lower() != "listening":
                    disabled.append(port)
        elif name == "hublist":
            for row in csv_table(r.lines):
                hub_order.append(row["Virtual Hub Name"])
                hubs_online[row["Virtual Hub Name"]] = row.get("Status", "") == "Online"
        elif name == "bridgelist":
            for row in csv_table(r.lines):
                bridges.append(
                    (
                        row["Virtual Hub Name"],
                        row["Network Adapter or Tap Device Name"],
                        row.get("Status", ""),
                    )
                )
        elif name == "bridgedevicelist":
            bridge_devices = [x.strip() for x in r.lines if x.strip()]
        elif name == "routerlist":
            for row in csv_table(r.lines):
                switch_running[row["Layer 3 Switch Name"]] = "running" in row["Running Status"].lower()
        elif name == "routeriflist":
            switch_ifs[r.args] = [
                L3Interface(
                    row["Virtual Hub Name"],
                    IPv4Interface(f"{row['IP Address']}/{_mask_to_prefix(row['Subnet Mask'])}"),
                )
                for row in csv_table(r.lines)
            ]
        elif name == "routertablelist":
            switch_routes[r.args] = [
                L3Route(
                    IPv4Network(f"{row['Network Address']}/{row['Subnet Mask']}"),
                    IPv4Address(row["Gateway Address"]),
                    int(row["Metric"]),
                )
                for row in csv_table(r.lines)
            ]
        elif r.hub is None:
            continue  # hub-scoped command without a selected hub: its hub does not exist
        elif name == "statusget":
            secure_nat[r.hub] = item_values(r.lines).get("SecureNAT", "").lower() == "enabled"
        elif name == "userlist":
            users[r.hub] = [HubUser(row["User Name"], "") for row in csv_table(r.lines)]
        elif name == "cascadelist":
            for row in csv_table(r.lines):
                at = row.get("Established at", "")
                cascade_states[(r.hub, row["Setting Name"])] = CascadeState(
                    r.hub, row["Setting Name"], row.get("Status", ""), None if at in ("", "(None)") else at
                )
        elif name == "cascadeget":
            values = item_values(r.lines)
            cname = values.get("VPN Connection Setting Name", r.args)
            state = cascade_states.get((r.hub, cname))
            cascade_cfg[(r.hub, cname)] = Cascade(
                name=cname,
                hub=r.hub,
                server_host=values.get("Destination VPN Server Host Name", ""),
                server_port=int(values.get("Destination VPN Server Port Number", "0") or 0),
                remote_hub=values.get("Destination VPN Server Virtual Hub Name", ""),
                username=values.get("User Name", ""),
                password_secret="",
                online=state.online if state is not None else False,
            )

    detected = _role_of(product)
    if detected is not None and detected != role:
        raise RemoteError(target, f"expected a SoftEther {role} but found {product!r}")

    cascades: list[Cascade] = []
    for (hub, cname), state in sorted(cascade_states.items()):
        cfg = cascade_cfg.get((hub, cname))
        if cfg is None:
            # Not read in detail (not desired): enough to know it exists, to delete it.
            cfg = Cascade(cname, hub, "", 0, "", "", "", state.online)
        cascades.append(cfg)

    hubs = tuple(
        Hub(name, tuple(sorted(users.get(name, []))), secure_nat.get(name, False)) for name in hub_order
    )
    local_bridges = tuple(
        sorted(LocalBridge(hub, dev, tap=dev not in bridge_devices) for hub, dev, _ in bridges)
    )
    switches = tuple(
        L3Switch(
            name,
            tuple(sorted(switch_ifs.get(name, []))),
            tuple(sorted(switch_routes.get(name, []))),
            running,
        )
        for name, running in switch_running.items()
    )
    config = SoftEtherConfig(
        role=detected or role,
        admin_password_secret="",
        listeners=tuple(sorted(listeners)),
        hubs=hubs,
        local_bridges=local_bridges,
        l3_switches=switches,
        cascades=tuple(cascades),
    )
    facts = SoftEtherFacts(
        product=product,
        role=detected,
        admin_password_set=transcript.admin_password_asked,
        disabled_listeners=tuple(sorted(disabled)),
        hubs_online=hubs_online,
        bridge_status={(hub, dev): status for hub, dev, status in bridges},
        bridge_devices=tuple(bridge_devices),
        l3_running=switch_running,
        cascades=cascade_states,
    )
    return ReadResult(config, facts, transcript)

