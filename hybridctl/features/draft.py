"""`hybridctl init`: a draft inventory from what exists in the clouds (and what the user says of home).

Discovery reads, never writes: one AWS VPC (by Name tag or id) with its subnets, their route
tables (the explicit association, else the VPC's main table), ENIs and instances; one Azure
VNet of a resource group with its subnets, their route tables and the NICs in it. Every call
goes through :mod:`hybridctl.backends.clouds`.

The bridge of a cloud site is, in order: the instance / ENI / VM / NIC that ``--bridge NAME``
names; the one tagged ``hybridctl-role=vpn-bridge``; the single instance (AWS) or VM (Azure, else
the single NIC) there is. When none or several fit, the gateway is a placeholder whose comment
lists the candidates: a wrong guess here would route a whole site through the wrong host.

What discovery cannot know (the server's public address, SSH users, which subnets join the
overlay, the transit network) becomes a placeholder, a string ``<FILL: what to write>`` with a
comment above it. :func:`hybridctl.core.inventory.load.parse_inventory` refuses every placeholder left,
all at once, so a half-filled draft never plans (the placeholder form and its search live in
:mod:`hybridctl.core.inventory.placeholders`; this module re-exports them for `hybridctl init`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from hybridctl.backends.arm_json import last, lower, props
from hybridctl.backends.clouds import ArmClient, AwsApi, Hints, arm_call, name_of, tags
from hybridctl.core.errors import InputError, Problem
from hybridctl.core.inventory.models import NAME_PATTERN, AwsSettings, AzureSettings
from hybridctl.core.inventory.placeholders import PLACEHOLDER_PREFIX, is_placeholder, placeholder, placeholders
from hybridctl.core.secrets import SecretStore

BRIDGE_TAG = ("hybridctl-role", "vpn-bridge")
HINTS = Hints(
    permission="grant the caller {action} (read-only: `hybridctl init` only describes)",
    rerun="run `hybridctl init` again",
)
ARGS = "command line"  # the Problem.file of a bad flag
_Pair = tuple[dict[str, Any], dict[str, Any] | None]  # an ENI and the instance it belongs to


# -- a YAML document with comments -----------------------------------------------------------------


@dataclass
class Entry:
    key: str
    value: Any  # scalar, Map or list
    comment: str | None = None


@dataclass
class Map:
    entries: list[Entry] = field(default_factory=list)

    def add(self, key: str, value: Any, comment: str | None = None) -> Map:
        self.entries.append(Entry(key, value, comment))
        return self


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _comment_lines(comment: str | None, indent: str) -> list[str]:
    if not comment:
        return []
    return [f"{indent}# {line}".rstrip() for line in comment.splitlines()]


def render(node: Map, indent: int = 0) -> list[str]:
    """YAML lines of ``node``, each entry's comment above it."""
    pad = " " * indent
    lines: list[str] = []
    for entry in node.entries:
        lines += _comment_lines(entry.comment, pad)
        value = entry.value
        if isinstance(value, Map):
            lines.append(f"{pad}{entry.key}:")
            lines += render(value, indent + 2)
        elif isinstance(value, list) and value:
            lines.append(f"{pad}{entry.key}:")
            for item in value:
                if isinstance(item, Map):
                    inner = render(item, indent + 4)
                    # "- " replaces the first entry's indentation (after its comment lines).
                    first = next(i for i, line in enumerate(inner) if not line.lstrip().startswith("#"))
                    inner[first] = f"{pad}  - {inner[first][indent + 4 :]}"
                    lines += inner
                else:
                    lines.append(f"{pad}  - {_scalar(item)}")
        else:
            lines.append(f"{pad}{entry.key}: {_scalar(value if not isinstance(value, list) else [])}")
    return lines


# -- what discovery found --------------------------------------------------------------------------


@dataclass
class Subnet:
    name: str
    cidr: str
    route_table: str | None  # name or id; None: none (Azure)
    table_note: str = ""


@dataclass
class Bridge:
    name: str
    private_ip: str
    nic_ref: str  # AWS: ENI Name tag or id; Azure: NIC name
    security_group: str | None
    public_ip: str | None
    why: str  # how it was chosen


@dataclass
class CloudSite:
    kind: str  # aws | azure
    name: str
    ref: str  # what the user named
    cidrs: list[str]
    subnets: list[Subnet]
    bridge: Bridge | None
    candidates: list[str]  # when no bridge was chosen: what could be
    region: str | None = None
    vpc: str | None = None
    resource_group: str | None = None
    vnet: str | None = None
    location: str | None = None
    new_table: str | None = None  # Azure: the table `up` creates for subnets without one


def _not_found(flag: str, message: str, fix: str) -> InputError:
    return InputError([Problem(ARGS, flag, message, fix)])


def _safe_name(text: str, fallback: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("-.")[:64]
    return cleaned if cleaned and re.fullmatch(NAME_PATTERN, cleaned) else fallback


# -- AWS -------------------------------------------------------------------------------------------


def _pick(
    candidates: Sequence[tuple[str, Any]], bridge_names: Iterable[str], tagged: Sequence[Any], alone: Sequence[Any]
) -> tuple[Any | None, str]:
    """(chosen, why): a named candidate, else the single tagged one, else the single one there is."""
    wanted = {n.lower() for n in bridge_names}
    named = [obj for label, obj in candidates if label.lower() in wanted]
    if named:
        return named[0], "named by --bridge"
    if len(tagged) == 1:
        return tagged[0], f"tagged {BRIDGE_TAG[0]}={BRIDGE_TAG[1]}"
    if len(alone) == 1 and not tagged:
        return alone[0], "the only candidate"
    return None, ""


def discover_aws(api: AwsApi, vpc_ref: str, bridge_names: Sequence[str], site_name: str = "aws") -> CloudSite:
    region = api.region()
    vpcs = api.pages_by_id_or_name(
        "ec2", "describe_vpcs", "Vpcs", region, [vpc_ref], id_prefix="vpc-", id_filter="vpc-id"
    )
    if not vpcs:
        raise _not_found(
            "--aws",
            f"no VPC '{vpc_ref}' (Name tag or vpc-id) in {region}",
            "pass the VPC's Name tag or id, and the region it is in (AWS_REGION or the profile's region)",
        )
    if len(vpcs) > 1:
        ids = ", ".join(sorted(str(v["VpcId"]) for v in vpcs))
        raise _not_found("--aws", f"{len(vpcs)} VPCs are named '{vpc_ref}' in {region}: {ids}", "pass the vpc-id")
    vpc = vpcs[0]
    vpc_id = str(vpc["VpcId"])
    by_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    subnets = api.pages("ec2", "describe_subnets", "Subnets", region, Filters=by_vpc)
    tables = api.pages("ec2", "describe_route_tables", "RouteTables", region, Filters=by_vpc)
    enis = api.pages("ec2", "describe_network_interfaces", "NetworkInterfaces", region, Filters=by_vpc)
    reservations = api.pages("ec2", "describe_instances", "Reservations", region, Filters=by_vpc)
    groups = {
        str(g["GroupId"]): g
        for g in api.pages("ec2", "describe_security_groups", "SecurityGroups", region, Filters=by_vpc)
    }
    instances = [
        i
        for r in reservations
        for i in r.get("Instances") or []
        if (i.get("State") or {}).get("Name") not in ("terminated", "shutting-down")
    ]

    def table_ref(table: dict[str, Any]) -> str:
        return name_of(table) or str(table["RouteTableId"])

    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations") or [])), None)
    explicit = {str(a["SubnetId"]): t for t in tables for a in t.get("Associations") or [] if a.get("SubnetId")}
    found: list[Subnet] = []
    for subnet in sorted(subnets, key=lambda s: ipaddress.ip_network(s["CidrBlock"])):
        subnet_id = str(subnet["SubnetId"])
        table = explicit.get(subnet_id)
        note = ""
        if table is None and main is not None:
            table = main
            note = (
                f"{name_of(subnet) or subnet_id} has no route table of its own: it uses the VPC's main table "
                f"({main['RouteTableId']}), which every such subnet shares; `up` adds the overlay routes there.\n"
                "To keep them off the main table, name another table here and `up` associates the subnet with it."
            )
        found.append(
            Subnet(name_of(subnet) or subnet_id, str(subnet["CidrBlock"]), table_ref(table) if table else None, note)
        )

    eni_by_id = {str(e["NetworkInterfaceId"]): e for e in enis}

    def primary_eni(instance: dict[str, Any]) -> dict[str, Any] | None:
        attached = sorted(
            instance.get("NetworkInterfaces") or [], key=lambda n: (n.get("Attachment") or {}).get("DeviceIndex", 0)
        )
        return eni_by_id.get(str(attached[0]["NetworkInterfaceId"])) if attached else None

    def is_tagged(obj: dict[str, Any] | None) -> bool:
        return obj is not None and tags(obj).get(BRIDGE_TAG[0]) == BRIDGE_TAG[1]

    # Each candidate is an ENI and the instance it belongs to; an instance stands for its primary ENI.
    by_instance: list[_Pair] = [(eni, i) for i in instances if (eni := primary_eni(i)) is not None]
    owner = {str(e["NetworkInterfaceId"]): i for e, i in by_instance}
    by_eni: list[_Pair] = [
        (
            e,
            owner.get(str(e["NetworkInterfaceId"]))
            or next((i for i in instances if i["InstanceId"] == (e.get("Attachment") or {}).get("InstanceId")), None),
        )
        for e in enis
    ]
    labelled: list[tuple[str, _Pair]] = []
    for eni, inst in by_instance:
        assert inst is not None  # by construction
        labelled += [(label, (eni, inst)) for label in (name_of(inst), str(inst["InstanceId"])) if label]
    for eni, inst in by_eni:
        labelled += [(label, (eni, inst)) for label in (name_of(eni), str(eni["NetworkInterfaceId"])) if label]
    tagged = [(e, i) for e, i in by_eni if is_tagged(e) or is_tagged(i)]
    alone = by_instance
    chosen, why = _pick(labelled, bridge_names, tagged, alone)
    bridge = None
    if chosen is not None:
        eni, inst = chosen
        group_ids = [str(g["GroupId"]) for g in eni.get("Groups") or []]
        group = groups.get(group_ids[0]) if group_ids else None
        bridge = Bridge(
            name=_safe_name((name_of(inst) if inst else None) or name_of(eni) or f"{site_name}-bridge", "bridge"),
            private_ip=str(eni["PrivateIpAddress"]),
            nic_ref=name_of(eni) or str(eni["NetworkInterfaceId"]),
            security_group=str(group["GroupName"]) if group else None,
            public_ip=((eni.get("Association") or {}).get("PublicIp")) or None,
            why=why,
        )
    candidates = sorted(
        f"{name_of(i) or '(no Name)'} {i['InstanceId']} {i.get('PrivateIpAddress', '')}".strip() for i in instances
    )
    cidrs = [str(a["CidrBlock"]) for a in vpc.get("CidrBlockAssociationSet") or []] or [str(vpc["CidrBlock"])]
    return CloudSite(
        "aws",
        site_name,
        vpc_ref,
        cidrs,
        found,
        bridge,
        candidates,
        region=region,
        vpc=name_of(vpc) or vpc_id,
    )


# -- Azure -----------------------------------------------------------------------------------------


def discover_azure(
    arm: ArmClient, rg: str, vnet_name: str, bridge_names: Sequence[str], *, site_name: str, new_table: str
) -> CloudSite:
    from azure.core.exceptions import HttpResponseError

    from hybridctl.backends.clouds import arm_error, arm_error_code

    client = arm.client()
    target = f"azure {rg}"
    try:
        vnets = [v.as_dict() for v in client.virtual_networks.list(rg)]
    except HttpResponseError as exc:
        if arm_error_code(exc) == "ResourceGroupNotFound":
            raise _not_found(
                "--azure",
                f"no resource group '{rg}' in subscription {arm.settings.subscription_id}",
                "pass RESOURCE_GROUP/VNET as `az network vnet list -o table` shows them",
            ) from None
        raise arm_error(exc, target, "virtual_networks.list", HINTS) from None
    vnet = next((v for v in vnets if lower(v.get("name")) == vnet_name.lower()), None)
    if vnet is None:
        names = ", ".join(sorted(str(v.get("name")) for v in vnets)) or "none"
        raise _not_found(
            "--azure",
            f"no virtual network '{vnet_name}' in resource group {rg} (it has: {names})",
            "pass RESOURCE_GROUP/VNET",
        )
    nics = arm_call(
        lambda: [n.as_dict() for n in client.network_interfaces.list(rg)], target, "network_interfaces.list", HINTS
    )
    vnet_id = lower(vnet.get("id"))
    found: list[Subnet] = []
    for sub in sorted(
        props(vnet).get("subnets") or [], key=lambda s: ipaddress.ip_network(str(props(s).get("addressPrefix")))
    ):
        table_id = str((props(sub).get("routeTable") or {}).get("id") or "")
        note = "" if table_id else f"{sub.get('name')} has no route table: `up` creates {new_table} and associates it."
        found.append(
            Subnet(
                str(sub.get("name")),
                str(props(sub).get("addressPrefix")),
                last(table_id) if table_id else new_table,
                note,
            )
        )

    def in_vnet(nic: dict[str, Any]) -> bool:
        return any(
            lower((props(c).get("subnet") or {}).get("id")).startswith(vnet_id + "/")
            for c in props(nic).get("ipConfigurations") or []
        )

    mine = [n for n in nics if in_vnet(n)]

    def vm_of(nic: dict[str, Any]) -> str | None:
        vm = str((props(nic).get("virtualMachine") or {}).get("id") or "")
        return last(vm) if vm else None

    labelled = [(str(n.get("name")), n) for n in mine] + [(vm, n) for n in mine if (vm := vm_of(n))]
    tagged = [n for n in mine if (n.get("tags") or {}).get(BRIDGE_TAG[0]) == BRIDGE_TAG[1]]
    with_vm = [n for n in mine if vm_of(n)]
    chosen, why = _pick(labelled, bridge_names, tagged, with_vm or mine)
    bridge = None
    if chosen is not None:
        config = next(
            (c for c in props(chosen).get("ipConfigurations") or [] if props(c).get("primary", True)),
            (props(chosen).get("ipConfigurations") or [{}])[0],
        )
        nsg = str((props(chosen).get("networkSecurityGroup") or {}).get("id") or "")
        bridge = Bridge(
            name=_safe_name(vm_of(chosen) or str(chosen.get("name")).removesuffix("-nic"), "bridge"),
            private_ip=str(props(config).get("privateIPAddress")),
            nic_ref=str(chosen.get("name")),
            security_group=last(nsg) if nsg else None,
            public_ip=None,  # a public IP is a resource of its own: its address needs another read
            why=why,
        )
    candidates = sorted(
        f"{n.get('name')} (VM {vm_of(n) or 'none'}) "
        + ",".join(str(props(c).get("privateIPAddress")) for c in props(n).get("ipConfigurations") or [])
        for n in mine
    )
    return CloudSite(
        "azure",
        site_name,
        f"{rg}/{vnet_name}",
        [str(p) for p in (props(vnet).get("addressSpace") or {}).get("addressPrefixes") or []],
        found,
        bridge,
        candidates,
        resource_group=rg,
        vnet=str(vnet.get("name")),
        location=str(vnet.get("location") or "") or None,
        new_table=new_table if any(s.table_note for s in found) else None,
    )


# -- the draft -------------------------------------------------------------------------------------


@dataclass
class OnPrem:
    name: str
    cidrs: list[str]
    server: str


@dataclass
class Request:
    """What `hybridctl init` was asked for (parsed flags)."""

    name: str
    onprem: OnPrem | None
    aws_vpc: str | None = None
    azure: tuple[str, str] | None = None  # (resource group, vnet)
    bridges: list[str] = field(default_factory=list)
    transit: str | None = None
    aws: AwsSettings | None = None
    azure_settings: AzureSettings | None = None
    azure_route_table: str = "hybridctl-rt"
    command: str = ""


def discover(request: Request, secrets: SecretStore) -> list[CloudSite]:
    """Read the clouds the request names (read-only calls only)."""
    sites: list[CloudSite] = []
    if request.aws_vpc:
        with AwsApi(request.aws or AwsSettings.model_validate({}), hints=HINTS) as api:
            sites.append(discover_aws(api, request.aws_vpc, request.bridges))
    if request.azure:
        if request.azure_settings is None:
            raise _not_found(
                "--azure-subscription",
                "an Azure site needs the subscription",
                "pass --azure-subscription ID (or set AZURE_SUBSCRIPTION_ID, or --settings FILE with an azure section)",
            )
        arm = ArmClient("azure.mgmt.network.NetworkManagementClient", request.azure_settings, secrets)
        try:
            rg, vnet = request.azure
            sites.append(
                discover_azure(arm, rg, vnet, request.bridges, site_name="azure", new_table=request.azure_route_table)
            )
        finally:
            arm.close()
    return sites


def _settings_map(settings: AwsSettings | AzureSettings, region: str | None = None) -> Map:
    out = Map()
    data = settings.model_dump(exclude_defaults=True, exclude_none=True, mode="json")
    if region and "region" not in data:
        data = {"region": region, **data}
    for key, value in data.items():
        out.add(key, value)
    return out


def _ssh(host: str | None, host_hint: str, user_hint: str) -> Map:
    ssh = Map()
    ssh.add(
        "host",
        host or placeholder(host_hint),
        None if host else f"How hybridctl reaches this host over SSH: {host_hint}.",
    )
    ssh.add("user", placeholder(user_hint), "The SSH login (root, or a user with passwordless sudo).")
    return ssh


# The default login of the images people start bridges from (what the guide's commands create).
_USERS = {
    "aws": "the SSH login: admin on Debian AMIs, ubuntu on Ubuntu AMIs",
    "azure": "the SSH login: the VM's admin user (azureuser unless you chose another)",
}


def _networks(subnets: list[Subnet]) -> list[Map]:
    out = []
    for subnet in subnets:
        net = Map().add("name", subnet.name).add("cidr", subnet.cidr)
        if subnet.route_table:
            net.add("route_table", subnet.route_table, subnet.table_note or None)
        net.add(
            "overlay",
            placeholder("true or false"),
            "Does this subnet send traffic into the overlay? true: its route table gets every other site's routes.",
        )
        out.append(net)
    return out


def _cloud_site(site: CloudSite) -> tuple[Map, str | None]:
    out = Map().add("name", site.name).add("kind", site.kind)
    if site.kind == "aws":
        out.add("vpc", site.vpc, f"read from {site.region}: {', '.join(site.cidrs)}")
    else:
        out.add("resource_group", site.resource_group)
        out.add("vnet", site.vnet, f"address space {', '.join(site.cidrs)}")
        if site.location:
            out.add("location", site.location)
    tables: dict[str, Map] = {}
    for subnet in site.subnets:
        if subnet.route_table and subnet.route_table not in tables:
            table = Map().add("name", subnet.route_table)
            if site.new_table and subnet.route_table == site.new_table:
                table.add("create", True, "does not exist yet: `up` creates it")
            tables[subnet.route_table] = table
    out.add("route_tables", list(tables.values()))
    out.add("networks", _networks(site.subnets))
    gw = Map()
    bridge = site.bridge
    comment = None
    if bridge is None:
        listing = "\n".join(f"  {c}" for c in site.candidates) or "  (none: create the bridge host first)"
        comment = (
            "No bridge host could be chosen (pass --bridge NAME, or tag it "
            f"{BRIDGE_TAG[0]}={BRIDGE_TAG[1]}). Candidates:\n{listing}"
        )
        gw.add("name", f"{site.name}-bridge").add("role", "vpn-bridge")
        gw.add("ssh", _ssh(None, "its address or ~/.ssh/config alias", _USERS[site.kind]))
        gw.add("private_ip", placeholder("the bridge NIC's private address"))
        gw.add(
            "eni" if site.kind == "aws" else "nic",
            placeholder("the bridge's ENI (Name tag or eni-id)" if site.kind == "aws" else "the bridge's NIC name"),
        )
    else:
        comment = f"Bridge: {bridge.nic_ref} ({bridge.why})."
        gw.add("name", bridge.name).add("role", "vpn-bridge")
        gw.add(
            "ssh",
            _ssh(bridge.public_ip, "its public address or ~/.ssh/config alias", _USERS[site.kind]),
        )
        gw.add("private_ip", bridge.private_ip)
        if bridge.public_ip:
            gw.add("public_address", bridge.public_ip)
        gw.add("eni" if site.kind == "aws" else "nic", bridge.nic_ref)
        if bridge.security_group:
            gw.add("security_group", bridge.security_group, "the bridge NIC's group: `up` adds the overlay's rules")
    out.add("gateway", gw, comment)
    return out, comment


def _server_site(onprem: OnPrem) -> Map:
    out = Map().add("name", onprem.name).add("kind", "onprem")
    out.add(
        "networks", [Map().add("name", f"lan{i}" if i else "lan").add("cidr", c) for i, c in enumerate(onprem.cidrs)]
    )
    gw = Map().add(
        "name", _safe_name(onprem.server.split(".")[0], "vpnserver") if not _is_ip(onprem.server) else "vpnserver"
    )
    gw.add("role", "vpn-server")
    ssh = Map().add("host", onprem.server)
    ssh.add(
        "user", placeholder("the SSH login on the server"), "The SSH login (root, or a user with passwordless sudo)."
    )
    gw.add("ssh", ssh)
    lan = ipaddress.IPv4Network(onprem.cidrs[0])
    if _is_ip(onprem.server) and ipaddress.ip_address(onprem.server) in lan:
        gw.add("private_ip", onprem.server)
    else:
        gw.add("private_ip", placeholder(f"the server's address on {lan}"))
    gw.add(
        "public_address",
        placeholder("the address or DNS name bridges dial (the home router's public address)"),
        "Bridges connect here on vpn_port; forward that port on the home router to the server.",
    )
    gw.add("lan_device", placeholder("the server's NIC on the LAN, e.g. eth0"), "`ip -br addr` on the server shows it.")
    gw.add(
        "switch_address",
        placeholder(f"a free address of {lan} with its prefix length, e.g. {_example_address(lan)}/{lan.prefixlen}"),
        "The L3 switch's LAN address: LAN clients route the overlay through it. Keep it out of DHCP.",
    )
    out.add("gateway", gw)
    return out


def _example_address(lan: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """Near the top of the LAN, where the reference puts its switch (.249 of a /24); DHCP pools rarely reach it."""
    return lan.broadcast_address - 6 if lan.num_addresses > 8 else lan.network_address + 1


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def draft(request: Request, sites: list[CloudSite]) -> str:
    """The draft inventory's text."""
    doc = Map()
    doc.add(
        "version",
        1,
        "Draft written by `hybridctl init`" + (f" ({request.command})" if request.command else "") + ".\n"
        "Every '<FILL: ...>' is something init could not know: replace each (`hybridctl plan` lists\n"
        "those left), then run `hybridctl doctor` and `hybridctl plan`.",
    )
    doc.add("name", request.name)
    in_use = [c for s in sites for c in s.cidrs] + (request.onprem.cidrs if request.onprem else [])
    transit = Map()
    transit.add(
        "cidr",
        request.transit or placeholder("a free network for the VPN's transit hub, e.g. a /24 no site uses"),
        None if request.transit else f"Must not overlap any site's network (in use: {', '.join(in_use)}).",
    )
    doc.add("transit", transit)
    aws_site = next((s for s in sites if s.kind == "aws"), None)
    if aws_site is not None:
        doc.add("aws", _settings_map(request.aws or AwsSettings.model_validate({}), aws_site.region))
    if request.azure_settings is not None and any(s.kind == "azure" for s in sites):
        doc.add("azure", _settings_map(request.azure_settings))
    site_maps: list[Map] = []
    if request.onprem:
        site_maps.append(_server_site(request.onprem))
    for site in sites:
        site_maps.append(_cloud_site(site)[0])
    doc.add("sites", site_maps)
    return "\n".join(render(doc)) + "\n"


__all__ = [
    "BRIDGE_TAG",
    "PLACEHOLDER_PREFIX",
    "CloudSite",
    "OnPrem",
    "Request",
    "discover",
    "discover_aws",
    "discover_azure",
    "draft",
    "is_placeholder",
    "placeholder",
    "placeholders",
]
