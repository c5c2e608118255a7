"""`hybridctl doctor` for the overlay: can `up` do its job here? Every check read-only, each with a fix.

What `up` relies on, checked before it runs (all of it reported at once):

- clouds: every VPC, subnet, route table, ENI / instance, security group, VNet, NIC and NSG the
  inventory names resolves; each bridge's ENI / NIC sits in the subnet holding its private_ip
  and has that address; each route table has room for what the plan adds (the quota);
- Azure: the caller's permissions on each resource group (``GET {rg}/providers/
  Microsoft.Authorization/permissions``) cover the network writes `up` makes (the AWS side, IAM
  policy simulation of the overlay's EC2 actions, is :mod:`hybridctl.features.vip.doctor`'s);
- hosts: SSH answers with a known host key (else what ``--accept-new-host-keys`` would record),
  sudo works without a prompt, the distribution is one hybridctl supports, the SoftEther package
  the host needs is installable (``apt-cache policy``), and each bridge reaches the server's
  public address on its VPN port (a TCP connect from the bridge itself).

Nothing here writes: no API call but reads, no command but reads on the hosts, no host key
recorded. A remote failure is the verdict of its check, never an exception.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hybridctl.backends.arm_json import lower, props
from hybridctl.backends.aws_lookup import by_id_or_name
from hybridctl.backends.clouds import ArmClient, AwsApi, Hints, arm_base, arm_call
from hybridctl.core.errors import HostKeyError, HybridctlError, RemoteError
from hybridctl.core.inventory.models import AwsSettings, Inventory, Site, SshEndpoint
from hybridctl.core.planner.desired import DesiredState
from hybridctl.core.secrets import SecretStore
from hybridctl.features.vip.checks import Check, fail, ok, warn

HINTS = Hints(
    permission="grant the caller {action} (doctor only reads: docs/cloud-adapters.md lists every permission)",
    rerun="run `hybridctl doctor` again",
)
# /etc/os-release (ID, VERSION_ID) hybridctl installs SoftEther on from the distribution.
SUPPORTED_OS = {("debian", "12"), ("debian", "13"), ("ubuntu", "22.04"), ("ubuntu", "24.04")}
SUPPORTED_TEXT = "Debian 12/13, Ubuntu 22.04/24.04"
# What `up` writes in an Azure resource group (hybridctl/backends/azure.py), and reads. A PUT of a
# NIC or subnet re-sends its references, so ARM also checks join/action on the subnet and NSG.
AZURE_ACTIONS = (
    "Microsoft.Network/virtualNetworks/read",
    "Microsoft.Network/virtualNetworks/subnets/read",
    "Microsoft.Network/virtualNetworks/subnets/write",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/routeTables/read",
    "Microsoft.Network/routeTables/write",
    "Microsoft.Network/routeTables/delete",
    "Microsoft.Network/routeTables/join/action",
    "Microsoft.Network/routeTables/routes/read",
    "Microsoft.Network/routeTables/routes/write",
    "Microsoft.Network/routeTables/routes/delete",
    "Microsoft.Network/networkInterfaces/read",
    "Microsoft.Network/networkInterfaces/write",
    "Microsoft.Network/networkSecurityGroups/read",
    "Microsoft.Network/networkSecurityGroups/join/action",
    "Microsoft.Network/networkSecurityGroups/securityRules/read",
    "Microsoft.Network/networkSecurityGroups/securityRules/write",
    "Microsoft.Network/networkSecurityGroups/securityRules/delete",
)
PERMISSIONS_API = "2022-04-01"


def azure_role(inventory: Inventory) -> dict[str, Any]:
    """A custom role (``az role definition create --role-definition @FILE``) with exactly AZURE_ACTIONS,
    assignable on the resource groups of the inventory's Azure sites."""
    subscription = inventory.azure.subscription_id if inventory.azure else "SUBSCRIPTION_ID"
    groups = sorted({str(s.resource_group) for s in inventory.sites if s.kind == "azure" and s.resource_group})
    return {
        "Name": f"hybridctl overlay ({inventory.name})",
        "IsCustom": True,
        "Description": "What `hybridctl up` / `down` read and write in the overlay's resource groups.",
        "Actions": list(AZURE_ACTIONS),
        "NotActions": [],
        "AssignableScopes": [f"/subscriptions/{subscription}/resourceGroups/{rg}" for rg in groups]
        or [f"/subscriptions/{subscription}"],
    }


def _subject(site: Site) -> str:
    return f"site {site.name}"


# -- pure: Azure permission blocks and route quotas -------------------------------------------------


def _matches(pattern: str, action: str) -> bool:
    # ARM action patterns are case-insensitive, '*' matching any run of characters ('/' included).
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def azure_denied(blocks: Iterable[dict[str, Any]], actions: Sequence[str] = AZURE_ACTIONS) -> list[str]:
    """The actions no permission block allows (a block allows what its actions match, minus its notActions)."""
    blocks = list(blocks)
    denied = []
    for action in actions:
        if not any(
            any(_matches(p, action) for p in b.get("actions") or [])
            and not any(_matches(p, action) for p in b.get("notActions") or [])
            for b in blocks
        ):
            denied.append(action)
    return denied


def quota_check(site: Site, table: str, existing: int, planned: int, limit: int, provider: str) -> Check:
    """Routes the table already holds (not hybridctl's) plus those the plan adds, against the quota."""
    subject = f"{_subject(site)}: route table {table}"
    total = existing + planned
    if total > limit:
        return fail(
            "route-quota",
            subject,
            f"{existing} existing + {planned} planned routes = {total}, over the {provider} limit of {limit}",
            "raise the quota (AWS: 'Routes per route table' in Service Quotas) and set route_limit, "
            "or summarize the sites' networks",
        )
    return ok("route-quota", subject, f"{existing} existing + {planned} planned of {limit} routes")


# -- clouds ---------------------------------------------------------------------------------------


@dataclass
class Preflight:
    inventory: Inventory
    desired: DesiredState
    secrets: SecretStore
    timeout: float = 15.0
    with_hosts: bool = True

    def __post_init__(self) -> None:
        self.checks: list[Check] = []

    def add(self, *checks: Check) -> None:
        self.checks.extend(checks)

    def run(self) -> list[Check]:
        aws_sites = [s for s in self.inventory.sites if s.kind == "aws"]
        azure_sites = [s for s in self.inventory.sites if s.kind == "azure"]
        if aws_sites:
            self._guard("aws", lambda: self.aws(aws_sites))
        if azure_sites:
            self._guard("azure", lambda: self.azure(azure_sites))
        if self.with_hosts:
            self.hosts()
        return self.checks

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except HybridctlError as error:
            self.add(fail(f"{what}-read", what, f"could not read: {error}", "see the error; `hybridctl doctor` again"))

    def _planned(self, site: Site) -> dict[str, int]:
        return {t.name: len(t.routes) for t in self.desired.route_tables if t.site == site.name}

    # -- AWS ------------------------------------------------------------------------------------------

    def aws(self, sites: list[Site]) -> None:
        settings = self.inventory.aws or AwsSettings.model_validate({})
        with AwsApi(settings, hints=HINTS) as api:
            for site in sites:
                try:
                    self._aws_site(api, site, settings)
                except HybridctlError as error:
                    self.add(fail("aws-read", _subject(site), str(error), "see the error"))

    def _aws_site(self, api: AwsApi, site: Site, settings: AwsSettings) -> None:
        region = api.region(site.region)
        subject = _subject(site)
        ref = str(site.vpc)
        vpcs = api.pages_by_id_or_name(
            "ec2", "describe_vpcs", "Vpcs", region, [ref], id_prefix="vpc-", id_filter="vpc-id"
        )
        if len(vpcs) != 1:
            why = "no VPC" if not vpcs else f"{len(vpcs)} VPCs"
            self.add(fail("aws-vpc", subject, f"{why} named '{ref}' in {region}", "write the VPC's Name tag or vpc-id"))
            return
        vpc_id = str(vpcs[0]["VpcId"])
        self.add(ok("aws-vpc", subject, f"VPC {ref} is {vpc_id} in {region}"))
        by_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
        subnets = api.pages("ec2", "describe_subnets", "Subnets", region, Filters=by_vpc)
        tables = api.pages("ec2", "describe_route_tables", "RouteTables", region, Filters=by_vpc)
        enis = api.pages("ec2", "describe_network_interfaces", "NetworkInterfaces", region, Filters=by_vpc)
        groups = api.pages("ec2", "describe_security_groups", "SecurityGroups", region, Filters=by_vpc)

        subnet_of: dict[str, dict[str, Any]] = {}
        for network in site.networks:
            wanted = network.id or network.name
            found = by_id_or_name(subnets, wanted, id_key="SubnetId")
            if len(found) != 1:
                self.add(
                    fail(
                        "aws-subnet",
                        f"{subject}: network {network.name}",
                        f"{'no subnet' if not found else f'{len(found)} subnets'} '{wanted}' in {vpc_id}",
                        "tag the subnet Name with the network's name, or set networks[].id to its subnet-id",
                    )
                )
                continue
            subnet = found[0]
            if subnet.get("CidrBlock") != str(network.cidr):
                self.add(
                    fail(
                        "aws-subnet",
                        f"{subject}: network {network.name}",
                        f"subnet {subnet['SubnetId']} is {subnet.get('CidrBlock')}, the inventory says {network.cidr}",
                        "correct the cidr",
                    )
                )
                continue
            subnet_of[network.name] = subnet
            self.add(ok("aws-subnet", f"{subject}: network {network.name}", f"{subnet['SubnetId']} {network.cidr}"))

        planned = self._planned(site)
        limit = site.route_limit or settings.route_limit
        gateway_enis: set[str] = set()
        gw = site.gateway
        eni = None
        if gw.eni:
            found = by_id_or_name(enis, gw.eni, id_key="NetworkInterfaceId")
            if len(found) == 1:
                eni = found[0]
            else:
                self.add(
                    fail(
                        "aws-eni",
                        f"{subject}: gateway {gw.name}",
                        f"{'no ENI' if not found else f'{len(found)} ENIs'} '{gw.eni}' in {vpc_id}",
                        "write the ENI's Name tag or eni-id (gateway.eni)",
                    )
                )
        elif gw.instance:
            reservations = api.pages_by_id_or_name(
                "ec2",
                "describe_instances",
                "Reservations",
                region,
                [gw.instance],
                id_prefix="i-",
                id_filter="instance-id",
                filters=by_vpc,
            )
            instances = [i for r in reservations for i in r.get("Instances") or []]
            primary = [
                n
                for i in instances
                for n in i.get("NetworkInterfaces") or []
                if (n.get("Attachment") or {}).get("DeviceIndex") == 0
            ]
            found = [e for e in enis if primary and e["NetworkInterfaceId"] == primary[0]["NetworkInterfaceId"]]
            if len(instances) == 1 and found:
                eni = found[0]
            else:
                self.add(
                    fail(
                        "aws-instance",
                        f"{subject}: gateway {gw.name}",
                        f"{len(instances) or 'no'} instance(s) '{gw.instance}' in {vpc_id}",
                        "write the instance's Name tag or id (gateway.instance)",
                    )
                )
        if eni is not None:
            gateway_enis.add(str(eni["NetworkInterfaceId"]))
            self.add(ok("aws-eni", f"{subject}: gateway {gw.name}", f"ENI {eni['NetworkInterfaceId']}"))
            self._placement(
                site,
                "aws-eni-placement",
                str(eni["NetworkInterfaceId"]),
                str(eni.get("SubnetId")),
                {str(a.get("PrivateIpAddress")) for a in eni.get("PrivateIpAddresses") or []}
                | {str(eni.get("PrivateIpAddress"))},
                {name: str(s["SubnetId"]) for name, s in subnet_of.items()},
            )
        for group_ref, where in (
            (gw.security_group, "gateway.security_group"),
            (site.workload_security_group, "workload_security_group"),
        ):
            if not group_ref:
                continue
            found = [g for g in groups if group_ref in (g.get("GroupId"), g.get("GroupName"))] or by_id_or_name(
                groups, group_ref, id_key="GroupId"
            )
            if len(found) == 1:
                self.add(ok("aws-security-group", f"{subject}: {where}", f"{group_ref} is {found[0]['GroupId']}"))
            else:
                self.add(
                    fail(
                        "aws-security-group",
                        f"{subject}: {where}",
                        f"no security group '{group_ref}' in {vpc_id}",
                        "write the group's name or sg-id",
                    )
                )
        for spec in site.route_tables:
            wanted = spec.id or spec.name
            found = by_id_or_name(tables, wanted, id_key="RouteTableId")
            table_subject = f"{subject}: route table {spec.name}"
            if len(found) != 1:
                if spec.create and not found:
                    self.add(ok("aws-route-table", table_subject, "does not exist yet: `up` creates it (create: true)"))
                    self.add(quota_check(site, spec.name, 0, planned.get(spec.name, 0), limit, "AWS"))
                    continue
                self.add(
                    fail(
                        "aws-route-table",
                        table_subject,
                        f"{'no route table' if not found else f'{len(found)} route tables'} '{wanted}' in {vpc_id}",
                        "write the table's Name tag or rtb-id, or set create: true to let `up` create it",
                    )
                )
                continue
            table = found[0]
            self.add(ok("aws-route-table", table_subject, f"{table['RouteTableId']}"))
            existing = [
                r
                for r in table.get("Routes") or []
                if r.get("GatewayId") != "local" and r.get("NetworkInterfaceId") not in gateway_enis
            ]
            self.add(quota_check(site, spec.name, len(existing), planned.get(spec.name, 0), limit, "AWS"))

    def _placement(
        self,
        site: Site,
        check_id: str,
        nic: str,
        nic_subnet: str,
        addresses: set[str],
        subnet_ids: dict[str, str],
    ) -> None:
        """The bridge NIC is in the network holding private_ip, and has that address."""
        gw = site.gateway
        subject = f"{_subject(site)}: gateway {gw.name}"
        home = next((n for n in site.networks if gw.private_ip in n.cidr), None)
        problems = []
        if home is not None and home.name in subnet_ids and subnet_ids[home.name].lower() != nic_subnet.lower():
            actual = next((n for n, i in subnet_ids.items() if i.lower() == nic_subnet.lower()), nic_subnet)
            problems.append(
                f"{nic} is in {actual}, not in {home.name} ({home.cidr}) where private_ip {gw.private_ip} is"
            )
        if str(gw.private_ip) not in addresses:
            problems.append(f"{nic} has {', '.join(sorted(addresses))}, not private_ip {gw.private_ip}")
        if problems:
            self.add(
                fail(
                    check_id,
                    subject,
                    "; ".join(problems),
                    "name the NIC that really carries the bridge's address (every route's next hop), "
                    "or correct private_ip",
                )
            )
        else:
            self.add(ok(check_id, subject, f"{nic} is in {home.name if home else '?'} with {gw.private_ip}"))

    # -- Azure ----------------------------------------------------------------------------------------

    def azure(self, sites: list[Site]) -> None:
        arm = ArmClient(
            "azure.mgmt.network.NetworkManagementClient", self.inventory.azure, self.secrets, timeout=self.timeout
        )
        try:
            groups = sorted({str(s.resource_group) for s in sites})
            for rg in groups:
                self._azure_permissions(arm, rg)
            for site in sites:
                try:
                    self._azure_site(arm, site)
                except HybridctlError as error:
                    self.add(fail("azure-read", _subject(site), str(error), "see the error"))
        finally:
            arm.close()

    def _azure_permissions(self, arm: ArmClient, rg: str) -> None:
        from azure.core.rest import HttpRequest

        subject = f"azure resource group {rg}"
        base = arm.settings.subscription_id
        url = (
            f"{arm_base(arm.settings)}/subscriptions/{base}/resourceGroups/{rg}/providers/Microsoft.Authorization/permissions"
            f"?api-version={PERMISSIONS_API}"
        )
        client = arm.client()
        try:
            response = arm_call(
                lambda: client._client.send_request(HttpRequest("GET", url)), subject, "permissions", HINTS
            )
            if response.status_code != 200:
                raise RemoteError(subject, f"permissions: HTTP {response.status_code}: {response.text()[:200]}")
            blocks = response.json().get("value") or []
        except HybridctlError as error:
            self.add(
                warn(
                    "azure-permissions",
                    subject,
                    f"cannot read the caller's permissions: {error}",
                    "allow Microsoft.Authorization/permissions/read, or compare the role by hand (docs/real-clouds.md)",
                )
            )
            return
        denied = azure_denied(blocks)
        if denied:
            self.add(
                fail(
                    "azure-permissions",
                    subject,
                    f"the caller may not make {len(denied)} of the {len(AZURE_ACTIONS)} network calls `up` makes",
                    "assign the role of docs/real-clouds.md (or Network Contributor) on the resource group",
                    *denied,
                )
            )
        else:
            self.add(ok("azure-permissions", subject, f"the caller may make all {len(AZURE_ACTIONS)} network calls"))

    def _azure_site(self, arm: ArmClient, site: Site) -> None:
        client = arm.client()
        rg = str(site.resource_group)
        subject = _subject(site)
        target = f"azure {rg}"

        def listed(what: str, fn: Callable[[], Iterable[Any]]) -> list[dict[str, Any]]:
            return arm_call(lambda: [i.as_dict() for i in fn()], target, what, HINTS)

        vnets = listed("virtual_networks.list", lambda: client.virtual_networks.list(rg))
        vnet = next((v for v in vnets if str(v.get("name", "")).lower() == str(site.vnet).lower()), None)
        if vnet is None:
            self.add(fail("azure-vnet", subject, f"no virtual network '{site.vnet}' in {rg}", "write the VNet's name"))
            return
        self.add(ok("azure-vnet", subject, f"VNet {site.vnet} in {rg}"))
        vnet_props = props(vnet)
        subnets = {lower(s.get("name")): s for s in vnet_props.get("subnets") or []}
        subnet_ids: dict[str, str] = {}
        for network in site.networks:
            wanted = (network.id or network.name).lower()
            subnet = subnets.get(wanted) or next(
                (s for s in subnets.values() if str(s.get("id", "")).lower() == wanted), None
            )
            net_subject = f"{subject}: network {network.name}"
            if subnet is None:
                self.add(
                    fail("azure-subnet", net_subject, f"no subnet '{wanted}' in {site.vnet}", "write the subnet's name")
                )
                continue
            prefix = str(props(subnet).get("addressPrefix"))
            if prefix != str(network.cidr):
                self.add(
                    fail(
                        "azure-subnet",
                        net_subject,
                        f"subnet is {prefix}, the inventory says {network.cidr}",
                        "correct the cidr",
                    )
                )
                continue
            subnet_ids[network.name] = str(subnet.get("id"))
            self.add(ok("azure-subnet", net_subject, f"{subnet.get('name')} {prefix}"))
        nics = listed("network_interfaces.list", lambda: client.network_interfaces.list(rg))
        nsgs = listed("network_security_groups.list", lambda: client.network_security_groups.list(rg))
        tables = listed("route_tables.list", lambda: client.route_tables.list(rg))
        gw = site.gateway
        if gw.nic:
            nic = next((n for n in nics if str(n.get("name", "")).lower() == gw.nic.lower()), None)
            nic_subject = f"{subject}: gateway {gw.name}"
            if nic is None:
                self.add(
                    fail("azure-nic", nic_subject, f"no network interface '{gw.nic}' in {rg}", "write the NIC's name")
                )
            else:
                self.add(ok("azure-nic", nic_subject, f"NIC {gw.nic}"))
                configs = props(nic).get("ipConfigurations") or []
                primary = next(
                    (c for c in configs if props(c).get("primary", True)),
                    configs[0] if configs else {},
                )
                self._placement(
                    site,
                    "azure-nic-placement",
                    gw.nic,
                    str((props(primary).get("subnet") or {}).get("id", "")),
                    {str(props(c).get("privateIPAddress")) for c in configs},
                    subnet_ids,
                )
        for group_ref, where in (
            (gw.security_group, "gateway.security_group"),
            (site.workload_security_group, "workload_security_group"),
        ):
            if not group_ref:
                continue
            if any(str(n.get("name", "")).lower() == group_ref.lower() for n in nsgs):
                self.add(ok("azure-nsg", f"{subject}: {where}", f"NSG {group_ref}"))
            else:
                self.add(
                    fail(
                        "azure-nsg",
                        f"{subject}: {where}",
                        f"no network security group '{group_ref}' in {rg}",
                        "write the NSG's name",
                    )
                )
        planned = self._planned(site)
        limit = site.route_limit or (self.inventory.azure.route_limit if self.inventory.azure else 400)
        for spec in site.route_tables:
            wanted = (spec.id or spec.name).lower()
            table = next(
                (t for t in tables if wanted in (str(t.get("name", "")).lower(), str(t.get("id", "")).lower())), None
            )
            table_subject = f"{subject}: route table {spec.name}"
            if table is None:
                # The Azure backend creates a missing table (docs/cloud-adapters.md).
                self.add(ok("azure-route-table", table_subject, "does not exist yet: `up` creates it"))
                existing = 0
            else:
                self.add(ok("azure-route-table", table_subject, f"{table.get('name')} in {rg}"))
                hop = str(gw.private_ip)
                existing = sum(
                    1
                    for r in props(table).get("routes") or []
                    if str(props(r).get("nextHopIpAddress")) != hop
                )
            self.add(quota_check(site, spec.name, existing, planned.get(spec.name, 0), limit, "Azure"))

    # -- hosts ----------------------------------------------------------------------------------------

    def hosts(self) -> None:
        targets: list[tuple[Site, str, str, SshEndpoint]] = []
        for site in self.inventory.sites:
            if site.gateway.ssh is not None:
                targets.append((site, site.gateway.name, site.gateway.role, site.gateway.ssh))
            for client in site.clients:
                if client.ssh is not None:
                    targets.append((site, client.name, "client", client.ssh))
        if not targets:
            return
        server = self.inventory.server_site.gateway
        with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
            for checks in pool.map(
                lambda t: check_host(
                    t[1],
                    t[2],
                    t[3],
                    server_address=server.public_address,
                    server_port=server.vpn_port,
                    timeout=self.timeout,
                ),
                targets,
            ):
                self.add(*checks)


def check_host(
    name: str, role: str, ssh: SshEndpoint, *, server_address: str | None, server_port: int, timeout: float = 15.0
) -> list[Check]:
    """One host's checks over one SSH connection (never a host key recorded, nothing changed)."""
    from hybridctl.backends.ssh import SshSession

    subject = f"host {name}"
    session = SshSession(name, ssh, accept_new_host_keys=False, connect_timeout=timeout)
    try:
        session.connect()
    except HostKeyError as error:
        fix = (
            "verify the fingerprint out of band; then `hybridctl up --accept-new-host-keys` records it"
            if "not in known_hosts" in error.message
            else error.hint or "see the error"
        )
        return [fail("host-key", subject, error.message, fix)]
    except RemoteError as error:
        return [fail("ssh", subject, error.message, error.hint or "check ssh.host, ssh.user and ssh.key")]
    out = [
        ok("ssh", subject, f"reachable as {session.resolved.user if session.resolved else ssh.user}"),
        ok("host-key", subject, "host key known and matching"),
    ]
    try:
        out += _host_facts(session, subject, role, server_address, server_port)
    finally:
        session.close()
    return out


def _host_facts(session: Any, subject: str, role: str, server_address: str | None, server_port: int) -> list[Check]:
    package = {"vpn-server": "softether-vpnserver", "vpn-bridge": "softether-vpnbridge"}.get(role)
    lines = [
        'if [ "$(id -u)" = 0 ]; then echo "SUDO root"; '
        'elif sudo -n true 2>/dev/null; then echo "SUDO ok"; else echo "SUDO fail"; fi',
        '( . /etc/os-release 2>/dev/null; echo "OS ${ID:-unknown} ${VERSION_ID:-unknown} ${PRETTY_NAME:-}" )',
    ]
    if package:
        lines.append(
            f"c=$(apt-cache policy {package} 2>/dev/null | sed -n 's/^ *Candidate: //p'); "
            f'echo "PKG {package} ${{c:-none}}"'
        )
    if role == "vpn-bridge" and server_address:
        # Refused (an RST came back: the path is open, nothing listens yet) is not blocked (no answer).
        target = shlex.quote(f"/dev/tcp/{server_address}/{server_port}")
        lines.append(
            f"err=$(timeout 5 bash -c 'exec 3<>'{target} 2>&1); rc=$?; "
            'if [ $rc = 0 ]; then echo "TCP ok"; elif [ $rc = 124 ]; then echo "TCP timeout"; '
            'elif printf %s "$err" | grep -qi refused; then echo "TCP refused"; '
            'else echo "TCP error $(printf %s "$err" | tail -n1)"; fi'
        )
    try:
        result = session.run("bash -s", stdin="\n".join(lines) + "\n", timeout=60)
    except RemoteError as error:
        return [fail("host-facts", subject, f"could not run the read-only checks: {error}", "see the error")]
    return host_checks(result.stdout, subject, role, package, server_address, server_port)


def host_checks(
    output: str, subject: str, role: str, package: str | None, server_address: str | None, server_port: int
) -> list[Check]:
    """The verdicts of one host's read-only command output (pure: unit-tested on captured output)."""
    facts: dict[str, str] = {}
    for line in output.splitlines():
        key, _, rest = line.strip().partition(" ")
        if key in ("SUDO", "OS", "PKG", "TCP"):
            facts[key] = rest
    out: list[Check] = []
    sudo = facts.get("SUDO")
    if sudo == "root":
        out.append(ok("sudo", subject, "logged in as root: no sudo needed"))
    elif sudo == "ok":
        out.append(ok("sudo", subject, "sudo -n true works (no password prompt)"))
    else:
        out.append(
            fail(
                "sudo",
                subject,
                "sudo wants a password (sudo -n true failed)" if sudo == "fail" else "sudo not checked",
                "add a sudoers rule: '<user> ALL=(ALL) NOPASSWD: ALL' (visudo -f /etc/sudoers.d/hybridctl), "
                "or log in as root",
            )
        )
    os_id, _, rest = facts.get("OS", "unknown unknown").partition(" ")
    version, _, pretty = rest.partition(" ")
    if (os_id, version) in SUPPORTED_OS:
        out.append(ok("distribution", subject, pretty or f"{os_id} {version}"))
    else:
        out.append(
            fail(
                "distribution",
                subject,
                f"{pretty or os_id + ' ' + version} is not supported",
                f"use {SUPPORTED_TEXT}: hybridctl installs SoftEther from the distribution",
            )
        )
    if package:
        _, _, candidate = facts.get("PKG", f"{package} none").partition(" ")
        if candidate and candidate != "(none)" and candidate != "none":
            out.append(ok("package", subject, f"{package} {candidate} installable"))
        else:
            out.append(
                fail(
                    "package",
                    subject,
                    f"{package} has no installation candidate (apt-cache policy)",
                    "run `apt-get update`; on Debian enable the main component (and bookworm-backports on 12), "
                    "on Ubuntu the universe component",
                )
            )
    if role == "vpn-bridge" and server_address:
        tcp = facts.get("TCP", "")
        if tcp == "ok":
            out.append(ok("server-port", subject, f"TCP connect to {server_address}:{server_port} works"))
        elif tcp == "refused":
            out.append(
                warn(
                    "server-port",
                    subject,
                    f"{server_address}:{server_port} answers but refuses: the path is open, nothing listens yet",
                    "expected before the first `up` (it starts the server); after it, check the server and the "
                    "home router's port forward",
                )
            )
        else:
            out.append(
                fail(
                    "server-port",
                    subject,
                    f"cannot open TCP {server_address}:{server_port} from this bridge"
                    + (": no answer within 5 s (dropped on the way)" if tcp == "timeout" else f" ({tcp or 'not run'})"),
                    f"allow {server_port}/tcp to the server (home router port forward, firewalls) and egress from the "
                    "bridge's security group / NSG; check public_address",
                )
            )
    return out


def run(
    inventory: Inventory, desired: DesiredState, secrets: SecretStore, *, timeout: float = 15.0, hosts: bool = True
) -> list[Check]:
    return Preflight(inventory, desired, secrets, timeout=timeout, with_hosts=hosts).run()


__all__ = ["AZURE_ACTIONS", "SUPPORTED_OS", "azure_denied", "check_host", "host_checks", "quota_check", "run"]
