"""The Azure backend: NIC IP forwarding, NSG rules, route tables, routes and subnet associations.

A resource group is read once (:meth:`AzureBackend.read_group`): four paginated ARM list calls
(virtual networks with their subnets, route tables with their routes, network interfaces,
network security groups with their rules), whatever the number of routes. What they return goes,
as it is, to the pure parser (hybridctl/backends/azure_parse.py), which resolves the inventory's
names and lists the Resources; this module then applies the changes. Every request goes through
the management client's pipeline, where one policy counts it (before azure-core's retries, which
honour Retry-After on 429) and one wrapper turns failures into
:class:`~hybridctl.core.errors.RemoteError` with a hint. docs/cloud-adapters.md has the rules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from hybridctl.backends import arm_json
from hybridctl.backends.azure_parse import (
    AzureRead,
    AzureSite,
    hop_label,
    managed_table,
    normalize_prefix,
    parse_group,
    rule_items,
)
from hybridctl.backends.base import NoProgress, Outcome, Progress, ReadResult
from hybridctl.backends.cloudcommon import (
    CLOUD_FLAGS,
    MANAGED_TAG,
    TABLE_LAYER,
    CloudBackend,
    apply_flag,
    apply_site_changes,
    cloud_item,
    in_parallel,
    journal_detail,
    site_field,
    table_field,
    unresolved,
)
from hybridctl.backends.clouds import NETWORK_API_VERSION, ArmClient, Hints, arm_call, list_json
from hybridctl.backends.journal import Journal
from hybridctl.core.diff import Change
from hybridctl.core.errors import RemoteError
from hybridctl.core.inventory.models import AzureSettings, Inventory, Site
from hybridctl.core.planner.desired import (
    AssociationItem,
    DesiredState,
    RouteItem,
    RuleItem,
)
from hybridctl.core.secrets import SecretStore

if TYPE_CHECKING:
    from hybridctl.backends.context import Context

FLAG = CLOUD_FLAGS["azure"]
FIRST_PRIORITY = 1000  # hybridctl's NSG rules sit above the range people usually hand-write in
LAST_PRIORITY = 4096
# From this many route writes in one table, they go out as one route table PUT (one
# long-running operation instead of one per route; ARM serializes child writes anyway).
ROUTE_BATCH_MIN = 2

T = TypeVar("T")
HINTS = Hints(
    permission="give the identity Network Contributor on the resource group (docs/cloud-adapters.md)",
    rerun="run `hybridctl routes diff` and apply again",
    scope="sites[].resource_group",
)

_TO_AZURE_PROTOCOL = {"all": "*", "tcp": "Tcp", "udp": "Udp", "icmp": "Icmp"}


def free_priority(taken: Iterable[int]) -> int:
    """The lowest priority >= 1000 not in ``taken`` (deterministic for a given NSG state)."""
    used = set(taken)
    for priority in range(FIRST_PRIORITY, LAST_PRIORITY + 1):
        if priority not in used:
            return priority
    raise RemoteError("azure", "no free NSG priority between 1000 and 4096", "remove unused rules")


def _found_name(change: Change) -> str | None:
    """The name of the route as read (update, delete); None for a create."""
    return change.found.name or None if isinstance(change.found, RouteItem) else None


class AzureBackend(CloudBackend[AzureSite]):
    """:class:`~hybridctl.backends.base.Backend` for the ``azure`` sites of an inventory."""

    name = "azure"

    def __init__(
        self,
        inventory: Inventory,
        journal: Journal,
        secrets: SecretStore | None = None,
        *,
        credential: Any | None = None,
    ) -> None:
        super().__init__(inventory, journal)
        self.settings: AzureSettings | None = inventory.azure
        self.secrets = secrets or SecretStore.for_inventory(inventory.name, inventory.secrets.store)
        # Every request is counted once by the client's pipeline (before azure-core's retries).
        self.arm = ArmClient(
            "azure.mgmt.network.NetworkManagementClient",
            self.settings,
            self.secrets,
            credential=credential,
            on_call=self.counter.add,
        )
        # Optional observer of every resource group's read (the fixture capture script records them).
        self.recorder: Callable[[AzureRead], None] | None = None

    # -- client and the one call wrapper -------------------------------------------------------------

    def credential(self) -> Any:
        """ClientSecretCredential when tenant, client and secret are set; else DefaultAzureCredential."""
        return self.arm.credential()

    def client(self) -> Any:
        return self.arm.client()

    def call(self, target: str, what: str, fn: Callable[[], T]) -> T:
        return arm_call(fn, target, what, HINTS)

    def lro(self, target: str, what: str, fn: Callable[[], Any]) -> dict[str, Any]:
        """Start a long-running operation and wait for it (polling every azure.polling_interval)."""

        def run() -> dict[str, Any]:
            result = fn().result()
            return result.as_dict() if result is not None else {}

        return self.call(target, what, run)

    # -- Backend -------------------------------------------------------------------------------------

    def close(self) -> None:
        self.arm.close()

    def _group_of(self, site: Site) -> str:
        """Sites are read a resource group at a time."""
        if not site.resource_group:
            raise RemoteError(f"azure {site.name}", f"{site_field(site, '.resource_group')}: not set", "set it")
        return site.resource_group

    # -- reading -------------------------------------------------------------------------------------

    def _read_group(self, rg: str, sites: list[Site], desired: DesiredState, result: ReadResult) -> None:
        read = self.read_group(rg)
        if self.recorder is not None:
            self.recorder(read)
        parsed = parse_group(read, sites, desired, self.journal.was_created)
        self._failures.update(parsed.failures)
        self._state.update(parsed.states)
        result.resources.extend(parsed.resources)

    def read_group(self, rg: str) -> AzureRead:
        """The one read of a resource group: four paginated list calls.

        Plain ARM GETs through the management pipeline (:func:`arm_pipeline`), at the network
        SDK's API version: the JSON is what the SDK models' ``as_dict()`` gives, without importing
        the network SDK (~0.5 s on every read-only command; writes import it).
        """
        pipeline = self.arm.pipeline()
        target = f"azure {rg}"
        base = f"/subscriptions/{quote(self.arm.settings.subscription_id, safe='')}/resourceGroups/{quote(rg, safe='')}"

        def listed(what: str, kind: str) -> Callable[[], list[dict[str, Any]]]:
            path = f"{base}/providers/Microsoft.Network/{kind}"
            return lambda: self.call(target, what, lambda: list_json(pipeline, path, NETWORK_API_VERSION))

        # Four independent round trips: at once (the read is on every command's critical path).
        vnets, tables, nics, nsgs = in_parallel(
            listed("virtual_networks.list", "virtualNetworks"),
            listed("route_tables.list", "routeTables"),
            listed("network_interfaces.list", "networkInterfaces"),
            listed("network_security_groups.list", "networkSecurityGroups"),
        )
        return AzureRead(rg, vnets, tables, nics, nsgs)

    # -- applying ------------------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], desired: DesiredState, progress: Progress) -> list[Outcome]:
        progress = progress or NoProgress()
        if not self._read_once:
            self.read(desired)
        mine = [c for c in changes if self.owns(c)]
        # Names a create/update (re)writes in this batch: a delete of the same name is then
        # already done (the object was overwritten in place), not to be undone.
        rewritten: set[tuple[str, str, str]] = set()
        priorities: dict[tuple[str, str, str], set[int]] = {}
        # Route writes per table: several go out as one table PUT (see _apply_route_batch).
        batches: dict[tuple[str, str], list[Change]] = {}
        for change in mine:
            route = change.subject
            if isinstance(route, RouteItem) and change.action != "conflict":
                batches.setdefault((route.site, route.table), []).append(change)
        batch_errors: dict[tuple[str, str], RemoteError | None] = {}

        def apply_one(change: Change) -> None:
            item = cloud_item(change)
            state = self._state[item.site]
            if change.layer == "flag":
                self._apply_flag(state, change)
            elif change.layer == "security-rule":
                self._apply_rule(state, change, rewritten, priorities)
            elif isinstance(item, RouteItem):
                table_key = (item.site, item.table)
                batch = batches[table_key]
                if len(batch) < ROUTE_BATCH_MIN:
                    self._apply_route(state, change, rewritten)
                    return
                if table_key not in batch_errors:
                    try:
                        self._apply_route_batch(state, item.table, batch)
                        batch_errors[table_key] = None
                    except RemoteError as error:
                        batch_errors[table_key] = error
                failed = batch_errors[table_key]
                if failed is not None:
                    raise failed
            elif change.layer == "cloud-association":
                self._apply_association(state, change)
            else:
                raise RemoteError(f"azure {state.site.name}", f"layer {change.layer} is not the Azure backend's")

        outcomes = apply_site_changes(
            mine,
            "azure",
            self._state,
            self._failures,
            apply_one,
            progress,
            lambda site, table: self._drop_table_if_empty(self._state[site], table, progress),
        )
        self._read_once = False
        return outcomes

    def _target(self, state: AzureSite) -> str:
        return f"azure {state.site.name}"

    def _apply_flag(self, state: AzureSite, change: Change) -> None:
        assert state.nic is not None
        apply_flag(self.journal, change, lambda value: self._set_forwarding(state, value))

    def _set_forwarding(self, state: AzureSite, value: bool) -> None:
        from azure.mgmt.network import models as nm

        assert state.nic is not None
        body = dict(state.nic)
        body["properties"] = {**arm_json.props(state.nic), "enableIPForwarding": value}
        name = str(state.nic["name"])
        client = self.client()
        state.nic = self.lro(
            self._target(state),
            f"network_interfaces.begin_create_or_update {name}",
            lambda: client.network_interfaces.begin_create_or_update(state.rg, name, nm.NetworkInterface(body)),
        )

    def _apply_rule(
        self,
        state: AzureSite,
        change: Change,
        rewritten: set[tuple[str, str, str]],
        priorities: dict[tuple[str, str, str], set[int]],
    ) -> None:
        from azure.mgmt.network import models as nm

        rule = cloud_item(change)
        assert isinstance(rule, RuleItem)
        direction, protocol, port, peer = rule.direction, rule.protocol, rule.port, rule.peer
        nsg = state.groups.get(rule.group)
        if nsg is None:
            raise RemoteError(self._target(state), f"network security group '{rule.group}' was not resolved")
        nsg_name = str(nsg["name"])
        client = self.client()
        # The rule as read (delete, update): its name is the one to delete or replace.
        old_name = change.found.name if isinstance(change.found, RuleItem) else None
        if change.action == "delete":
            if old_name is None or (state.site.name, nsg_name, old_name.lower()) in rewritten:
                return
            self.lro(
                self._target(state),
                f"security_rules.begin_delete {nsg_name}/{old_name}",
                lambda: client.security_rules.begin_delete(state.rg, nsg_name, old_name),
            )
            return
        name = rule.name  # the planner's (names.rule_name): the one function naming rules
        taken = priorities.setdefault(
            (state.site.name, nsg_name, direction),
            {
                int(arm_json.props(r).get("priority", 0))
                for r in arm_json.props(nsg).get("securityRules") or []
                if arm_json.lower(arm_json.props(r).get("direction")) == direction
            },
        )
        priority = free_priority(taken)
        taken.add(priority)
        side, other = ("source", "destination") if direction == "inbound" else ("destination", "source")
        props = {
            "protocol": _TO_AZURE_PROTOCOL.get(protocol, protocol),
            "access": "Allow",
            "direction": direction.capitalize(),
            "priority": priority,
            "sourcePortRange": "*",
            "destinationPortRange": port,
            f"{side}AddressPrefix": peer,
            f"{other}AddressPrefix": "*",
            "description": change.why[:140],
        }
        rewritten.add((state.site.name, nsg_name, name.lower()))
        self.lro(
            self._target(state),
            f"security_rules.begin_create_or_update {nsg_name}/{name}",
            lambda: client.security_rules.begin_create_or_update(
                state.rg, nsg_name, name, nm.SecurityRule({"properties": props})
            ),
        )
        if change.action == "update" and old_name and old_name.lower() != name.lower():
            # The owned rule under its old name is replaced by the one just written.
            self.lro(
                self._target(state),
                f"security_rules.begin_delete {nsg_name}/{old_name}",
                lambda: client.security_rules.begin_delete(state.rg, nsg_name, old_name),
            )

    def _ensure_table(self, state: AzureSite, name: str) -> dict[str, Any]:
        from azure.mgmt.network import models as nm

        table = state.tables.get(name)
        if table is not None:
            return table
        body = self._new_table(state, name, [])
        client = self.client()
        created = self.lro(
            self._target(state),
            f"route_tables.begin_create_or_update {name}",
            lambda: client.route_tables.begin_create_or_update(state.rg, name, nm.RouteTable(body)),
        )
        self.journal.created(TABLE_LAYER, (state.site.name, name), {"id": created.get("id")})
        state.tables[name] = created
        state.rg_tables[arm_json.lower(created.get("id"))] = created
        return created

    def _new_table(self, state: AzureSite, name: str, routes: list[dict[str, Any]]) -> dict[str, Any]:
        """The body of a route table hybridctl creates (tagged as its own); only for create: true."""
        spec = state.specs.get(name)
        if spec is None or not spec.create:
            raise unresolved(
                self._target(state),
                table_field(state.site, name),
                "route table",
                name,
                f"in resource group {state.rg}",
                "set create: true",
            )
        return {
            "location": self._location(state),
            "tags": {MANAGED_TAG[0]: MANAGED_TAG[1]},
            "properties": {"routes": routes, "disableBgpRoutePropagation": False},
        }

    def _route_to_write(self, state: AzureSite, change: Change) -> tuple[str, dict[str, str]]:
        """(name, properties) of the route a create/update writes: the gateway as virtual appliance.

        The name is the planner's (names.azure_route_name, in CloudRoute.name); an update keeps
        the name of the route it overwrites in place (a table holds one route per prefix).
        """
        item = change.planned
        planned = item.route if isinstance(item, RouteItem) else None
        if planned is None or planned.target_kind != "virtual-appliance" or not planned.target:
            label = item.target if isinstance(item, RouteItem) else "(none)"
            raise RemoteError(self._target(state), f"route target {label} is not a virtual appliance next hop")
        name = _found_name(change) or planned.name
        props = {
            "addressPrefix": str(planned.prefix),
            "nextHopType": "VirtualAppliance",
            "nextHopIpAddress": planned.target,
        }
        return name, props

    def _apply_route(self, state: AzureSite, change: Change, rewritten: set[tuple[str, str, str]]) -> None:
        from azure.mgmt.network import models as nm

        route = cloud_item(change)
        assert isinstance(route, RouteItem)
        table_name = route.table
        client = self.client()
        old_name = _found_name(change)
        if change.action == "delete":
            existing = state.tables.get(table_name)
            if existing is None or old_name is None:
                return
            table_text = str(existing["name"])
            if (state.site.name, table_text.lower(), old_name.lower()) in rewritten:
                return
            self.lro(
                self._target(state),
                f"routes.begin_delete {table_text}/{old_name}",
                lambda: client.routes.begin_delete(state.rg, table_text, old_name),
            )
            return
        table = self._ensure_table(state, table_name)
        name, props = self._route_to_write(state, change)
        rewritten.add((state.site.name, str(table["name"]).lower(), name.lower()))
        self.lro(
            self._target(state),
            f"routes.begin_create_or_update {table['name']}/{name}",
            lambda: client.routes.begin_create_or_update(
                state.rg, table["name"], name, nm.Route({"properties": props})
            ),
        )

    def _apply_route_batch(self, state: AzureSite, table_name: str, changes: list[Change]) -> None:
        """Write every route change of one table with a single table PUT, guarded by its etag.

        Routes hybridctl does not write (foreign ones included) go back exactly as read: the raw
        ARM JSON of each, untouched, so properties this version does not know (an ECMP route's
        ``nextHop``, anything a later api-version adds) survive. If the table changed since the
        read, ARM answers 412 and nothing is written.
        """
        from azure.mgmt.network import models as nm

        table = state.tables.get(table_name)
        routes: dict[str, dict[str, Any]] = {}
        if table is not None:
            for route in arm_json.props(table).get("routes") or []:
                routes[str(route["name"]).lower()] = copy.deepcopy(route)
        for change in changes:
            if change.action == "delete":
                old_name = _found_name(change)
                if old_name is not None:
                    routes.pop(old_name.lower(), None)
        for change in changes:
            if change.action == "delete":
                continue
            name, props = self._route_to_write(state, change)
            routes[name.lower()] = {"name": name, "properties": props}
        if table is None:
            body = self._new_table(state, table_name, list(routes.values()))
            headers = {"If-None-Match": "*"}
        else:
            # The table's own properties go back as read too; only the routes list is new.
            body = {
                "location": table.get("location") or self._location(state),
                "tags": table.get("tags") or {},
                "properties": {**copy.deepcopy(arm_json.props(table)), "routes": list(routes.values())},
            }
            headers = {"If-Match": str(table["etag"])} if table.get("etag") else {}
        client = self.client()
        written = self.lro(
            self._target(state),
            f"route_tables.begin_create_or_update {table_name} ({len(changes)} routes)",
            lambda: client.route_tables.begin_create_or_update(
                state.rg, table_name if table is None else table["name"], nm.RouteTable(body), headers=headers
            ),
        )
        if table is None:
            self.journal.created(TABLE_LAYER, (state.site.name, table_name), {"id": written.get("id")})
            state.rg_tables[arm_json.lower(written.get("id"))] = written
        state.tables[table_name] = written

    def _location(self, state: AzureSite) -> str:
        if not state.location:
            raise RemoteError(
                self._target(state), f"{site_field(state.site, '.location')}: not set", "set the site's location"
            )
        return state.location

    def _apply_association(self, state: AzureSite, change: Change) -> None:
        association = cloud_item(change)
        assert isinstance(association, AssociationItem)
        table_name, network = association.table, association.subnet
        subnet = state.subnets.get(network)
        if subnet is None:
            raise RemoteError(self._target(state), f"subnet of network {network} was not resolved")
        props = dict(arm_json.props(subnet))
        previous = (props.get("routeTable") or {}).get("id")
        if change.action == "delete":
            before = journal_detail(self.journal, "cloud-association", change.key).get("previous")
            if before and str(before).lower() in state.rg_tables and str(before).lower() != arm_json.lower(previous):
                props["routeTable"] = {"id": before}
            else:
                props.pop("routeTable", None)
            self._put_subnet(state, subnet, props)
            self.journal.forget("cloud-association", change.key)
            return
        table = self._ensure_table(state, table_name)
        props["routeTable"] = {"id": table["id"]}
        self._put_subnet(state, subnet, props)
        self.journal.created("cloud-association", change.key, {"previous": previous, "subnet": subnet.get("id")})

    def _put_subnet(self, state: AzureSite, subnet: dict[str, Any], props: dict[str, Any]) -> None:
        from azure.mgmt.network import models as nm

        vnet = str(subnet["_vnet"])
        name = str(subnet["name"])
        body = {k: v for k, v in subnet.items() if not k.startswith("_")}
        body["properties"] = props
        client = self.client()
        updated = self.lro(
            self._target(state),
            f"subnets.begin_create_or_update {vnet}/{name}",
            lambda: client.subnets.begin_create_or_update(state.rg, vnet, name, nm.Subnet(body)),
        )
        subnet.clear()
        subnet.update(updated, _vnet=vnet)

    def _drop_table_if_empty(self, state: AzureSite, name: str, progress: Progress) -> Outcome | None:
        """After deletes: remove a table hybridctl created once it has no subnets and no routes left."""
        table = state.tables.get(name)
        created = journal_detail(self.journal, TABLE_LAYER, (state.site.name, name))
        if table is None or not (created or managed_table(table)):
            return None
        client = self.client()
        target = self._target(state)
        try:
            current = self.call(target, f"route_tables.get {name}", lambda: client.route_tables.get(state.rg, name))
            props = arm_json.props(current.as_dict())
            if props.get("routes") or props.get("subnets"):
                return None
            progress.step(target, f"- route table {name} (created by hybridctl, now empty)")
            self.lro(
                target, f"route_tables.begin_delete {name}", lambda: client.route_tables.begin_delete(state.rg, name)
            )
            self.journal.forget(TABLE_LAYER, (state.site.name, name))
            state.tables[name] = None
        except RemoteError as error:
            return Outcome(target, None, False, f"route table {name}: {error}")
        return None


def backend_for(context: Context) -> AzureBackend | None:
    """The engine's factory: an Azure backend when the inventory has Azure sites."""
    inventory = context.loaded.inventory
    if not any(site.kind == "azure" for site in inventory.sites):
        return None
    return AzureBackend(inventory, context.journal, context.secrets)


__all__ = ["AzureBackend", "AzureRead", "backend_for", "free_priority", "hop_label", "normalize_prefix", "rule_items"]
