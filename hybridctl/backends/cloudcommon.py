"""What the AWS and Azure backends share: inventory field names, labels, apply loop.

Both cloud backends read the layers ``flag`` (the cloud-side forwarding flag only),
``security-rule``, ``cloud-route`` and ``cloud-association`` of the sites of their kind, keyed
exactly like :meth:`hybridctl.core.planner.desired.DesiredState.resources` and carrying the same
typed items (Flag, RuleItem, RouteItem, AssociationItem), and apply the changes the pure diff
computed from those items, never from the keys. See docs/cloud-adapters.md.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from hybridctl.backends.base import Outcome, Progress, ReadResult
from hybridctl.backends.calls import CallCounter
from hybridctl.core.diff import Change
from hybridctl.core.errors import HybridctlError, RemoteError
from hybridctl.core.inventory.models import Inventory, Site
from hybridctl.core.planner.desired import (
    AssociationItem,
    DesiredState,
    Flag,
    Item,
    Resource,
    RouteItem,
    RuleItem,
)

if TYPE_CHECKING:
    from hybridctl.backends.journal import Journal

CLOUD_LAYERS: tuple[str, ...] = ("flag", "security-rule", "cloud-route", "cloud-association")
CLOUD_FLAGS: dict[str, str] = {"aws": "source_dest_check", "azure": "ip_forwarding"}
# Pseudo layer under which the journal remembers route tables hybridctl created.
TABLE_LAYER = "route-table"
# Marks: AWS security group rule descriptions and route table tags. Azure route and rule names
# start with hybridctl.core.planner.names.NAME_PREFIX, the prefix the planner names them with.
AWS_RULE_MARK = "hybridctl:"
MANAGED_TAG = ("managed-by", "hybridctl")

S = TypeVar("S")  # a backend's per-site state as last read
T = TypeVar("T")
R = TypeVar("R", bound="RawRead")
WasCreated = Callable[[str, tuple[str, ...]], bool]  # the journal's answer: did hybridctl create it?


# -- the read / parse seam -------------------------------------------------------------------------


@dataclass
class RawRead:
    """Base of a cloud read (AwsRead, AzureRead): raw responses only, kept as JSON for fixtures."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls: type[R], document: dict[str, Any]) -> R:
        """The read in ``document``; keys starting with ``_`` (a fixture's notes) are not part of it."""
        return cls(**{k: v for k, v in document.items() if not k.startswith("_")})


@dataclass
class Parsed(Generic[S]):
    """A read, resolved by a pure parser: the sites' state (for apply), their items, the failures."""

    states: dict[str, S] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


# -- inventory field names (as InputError / load.field_name render them) ------------------------


def site_field(site: Site, *parts: str) -> str:
    """``sites[aws].gateway.eni`` / ``sites[aws].networks[Hybrid-Subnet].id``."""
    return f"sites[{site.name}]" + "".join(parts)


def network_field(site: Site, network: str, attr: str) -> str:
    return site_field(site, f".networks[{network}].{attr}")


def table_field(site: Site, table: str, attr: str = "name") -> str:
    return site_field(site, f".route_tables[{table}].{attr}")


def unresolved(target: str, field: str, what: str, value: str, where: str, hint: str) -> RemoteError:
    """The error for an inventory name that matches no cloud object."""
    return RemoteError(target, f"{field}: no {what} '{value}' {where}", hint)


# -- keys and labels ------------------------------------------------------------------------------


def resource(layer: str, key: tuple[str, ...], owned: bool, item: Item, why: str = "", **attrs: str) -> Resource:
    return Resource(layer, key, tuple(sorted(attrs.items())), why, owned, item)


def rule_resource(item: RuleItem, owned: bool, name: str, provider: str) -> Resource:
    """A security rule read from a cloud, keyed like the planner's."""
    key = (item.site, item.group, item.direction, item.protocol, item.port, item.peer)
    return resource("security-rule", key, owned, item, name=name, provider=provider)


def route_resource(item: RouteItem, owned: bool, target: str) -> Resource:
    """A route read from a cloud table, keyed like the planner's (``target``: label shown and compared)."""
    return resource("cloud-route", (item.site, item.table, item.destination), owned, item, target=target)


def association_resource(item: AssociationItem, owned: bool, **attrs: str) -> Resource:
    return resource("cloud-association", (item.site, item.table, item.subnet), owned, item, **attrs)


def flag_resource(flag: Flag, owned: bool) -> Resource:
    """A cloud flag as read (``flag.value`` is the value found)."""
    return resource("flag", (flag.site, flag.target, flag.name), owned, flag, value=flag.text)


CloudItem = Flag | RuleItem | RouteItem | AssociationItem


def cloud_item(thing: Resource | Change) -> CloudItem:
    """The typed item of a cloud change or resource (every one the planner or a cloud read makes has one)."""
    item = thing.subject
    if not isinstance(item, Flag | RuleItem | RouteItem | AssociationItem):
        raise RemoteError(thing.layer, f"{' '.join(thing.key)}: not a cloud item ({type(item).__name__})")
    return item


def site_names(desired: DesiredState, inventory: Inventory, kind: str) -> list[str]:
    """Sites of ``kind`` that the plan touches in a cloud layer, in inventory order."""
    touched = {t.site for t in desired.route_tables}
    touched |= {f.site for f in desired.flags if f.name == CLOUD_FLAGS[kind]}
    touched |= {r.site for r in desired.security_rules if r.provider == kind}
    return [s.name for s in inventory.sites if s.kind == kind and s.name in touched]


def owns_item(sites: Container[str], kind: str, thing: Resource | Change) -> bool:
    """Whether the ``kind`` backend of ``sites`` applies this resource or change: its cloud layers
    and, of the flags, only its own (source/dest check, IP forwarding)."""
    item = thing.subject
    if thing.layer not in CLOUD_LAYERS or item is None:
        return False
    if isinstance(item, Flag):
        return item.name == CLOUD_FLAGS[kind] and item.site in sites
    return isinstance(item, RuleItem | RouteItem | AssociationItem) and item.site in sites


def change_text(change: Change) -> str:
    return f"{change.symbol} {change.layer} {' '.join(change.key)}"


# -- the common part of a cloud backend ------------------------------------------------------------


class CloudBackend(Generic[S]):
    """What the AWS and Azure backends share: their sites, call counter, read state and read loop.

    A backend reads its sites a group at a time (``_group_of``: AWS region, Azure resource
    group), one set of list calls per group (``_read_group``), and keeps each site's state for
    apply; sites that cannot be read are in ``_failures`` with why.
    """

    name: str  # the site kind: "aws" / "azure"

    def __init__(self, inventory: Inventory, journal: Journal) -> None:
        self.inventory = inventory
        self.journal = journal
        self.counter = CallCounter()
        self._sites = {s.name: s for s in inventory.sites if s.kind == self.name}
        self._state: dict[str, S] = {}
        self._failures: dict[str, str] = {}
        self._read_once = False

    def owns(self, thing: Resource | Change) -> bool:
        return owns_item(self._sites, self.name, thing)

    def read(self, desired: DesiredState) -> ReadResult:
        self._state = {}
        self._failures = {}
        self._read_once = True
        result = ReadResult()
        read_by_group(
            [self._sites[name] for name in site_names(desired, self.inventory, self.name)],
            self._group_of,
            lambda group, sites: self._read_group(group, sites, desired, result),
            self._failures,
        )
        result.unreachable.update(self._failures)
        return result

    def _group_of(self, site: Site) -> str:
        raise NotImplementedError

    def _read_group(self, group: str, sites: list[Site], desired: DesiredState, result: ReadResult) -> None:
        raise NotImplementedError


# -- applying -------------------------------------------------------------------------------------


def run_changes(
    changes: Sequence[Change],
    site_of: Callable[[Change], str],
    prefix: str,
    apply_one: Callable[[Change], None],
    progress: Progress,
    failures: dict[str, str],
) -> list[Outcome]:
    """Apply ``changes`` one by one; a failing change is an Outcome, never an exception.

    ``failures`` maps site -> why its state is unknown: changes against it are not tried.
    Conflicts (a foreign object holds the key) are never acted on and get no Outcome:
    nothing happened to them; the diff is what reports them.
    """
    outcomes: list[Outcome] = []
    for change in changes:
        site = site_of(change)
        target = f"{prefix} {site}"
        if change.action == "conflict":
            continue
        if site in failures:
            outcomes.append(Outcome(target, change, False, failures[site]))
            continue
        progress.step(target, change_text(change))
        try:
            apply_one(change)
        except HybridctlError as error:
            outcomes.append(Outcome(target, change, False, str(error)))
            progress.step(target, f"failed: {change_text(change)}: {error}")
            continue
        outcomes.append(Outcome(target, change, True))
    return outcomes


def apply_site_changes(
    changes: Sequence[Change],
    prefix: str,
    read_sites: Container[str],
    failures: dict[str, str],
    apply_one: Callable[[Change], None],
    progress: Progress,
    drop_table: Callable[[str, str], Outcome | None],
) -> list[Outcome]:
    """A cloud backend's apply: ``changes`` (all its own) one by one, then cleanup.

    Sites that failed to read (``failures``) or were not read get a failed Outcome per change and
    no call. After the changes, ``drop_table(site, table)`` runs once for each route table a
    successful delete (route or association) touched, so that a table hybridctl created and
    the deletes emptied goes too.
    """
    failures = dict(failures)
    for change in changes:
        site = cloud_item(change).site
        if site not in read_sites and site not in failures:
            failures[site] = f"site {site} was not read"
    outcomes = run_changes(changes, lambda c: cloud_item(c).site, prefix, apply_one, progress, failures)
    touched = set()
    for done in outcomes:
        deleted = done.change if done.ok and done.change is not None and done.change.action == "delete" else None
        item = deleted.subject if deleted is not None else None
        if isinstance(item, RouteItem | AssociationItem):
            touched.add((item.site, item.table))
    for site, table in sorted(touched):
        dropped = drop_table(site, table)
        if dropped is not None:
            outcomes.append(dropped)
    return outcomes


def apply_flag(journal: Journal, change: Change, write: Callable[[bool], object]) -> None:
    """Set a cloud forwarding flag as ``change`` says (``write(value)`` only when it differs).

    The value found before the first change is journaled; nothing may "own" a flag away, so
    deleting one means putting back the value found.
    """
    current = dict(change.actual or ()).get("value")
    original = journal.original("flag", change.key)
    if change.action == "delete":
        want = original
    else:
        want = dict(change.desired or ()).get("value")
        if current is not None:
            journal.found("flag", change.key, current)
    if want is not None and want != current:
        write(want == "true")
    if want is not None and want == original:
        journal.restored("flag", change.key)  # back to what was found: nothing left to undo


def read_by_group(
    sites: Iterable[Site],
    group_of: Callable[[Site], str],
    read_group: Callable[[str, list[Site]], None],
    failures: dict[str, str],
) -> None:
    """Read sites a group at a time (AWS region, Azure resource group): one set of list calls each.

    A site whose group cannot be told (``group_of`` raises) or whose group's read fails goes to
    ``failures`` with why; the others are read.
    """
    groups: dict[str, list[Site]] = {}
    for site in sites:
        try:
            groups.setdefault(group_of(site), []).append(site)
        except RemoteError as error:
            failures[site.name] = str(error)
    for group, members in groups.items():
        try:
            read_group(group, members)
        except RemoteError as error:
            for site in members:
                failures.setdefault(site.name, str(error))


def in_parallel(*calls: Callable[[], T]) -> list[T]:
    """Run independent read calls at once (each a round trip to the cloud API); results in order.
    The first failure is raised, as if the calls had run one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def journal_detail(journal: Journal, layer: str, key: tuple[str, ...]) -> dict[str, Any]:
    detail = journal.created_detail(layer, key)
    return detail if isinstance(detail, dict) else {}
