"""The flows behind `up`, `routes diff` and `down`: read -> diff -> (confirm) -> apply -> verify.

Library only: the CLI supplies a Progress, asks for confirmation between :func:`prepare` and
:func:`execute`, and renders the returned reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from hybridctl.backends.base import Backend, NoProgress, Outcome, Progress, ReadResult
from hybridctl.backends.context import Context, Options
from hybridctl.backends.journal import Journal
from hybridctl.core.diff import Change, diff
from hybridctl.core.errors import UnsupportedTargets
from hybridctl.core.inventory.load import LoadedInventory
from hybridctl.core.planner.desired import DesiredState, Flag, Resource
from hybridctl.core.secrets import SecretStore

BackendFactory = Callable[[Context], Backend | None]


def default_factories() -> list[BackendFactory]:
    """AWS, Azure and SSH hosts; imported lazily so `plan` needs none of their SDKs."""
    from hybridctl.backends import aws, azure, hosts

    return [aws.backend_for, azure.backend_for, hosts.backend_for]


def open_context(
    loaded: LoadedInventory,
    desired: DesiredState,
    options: Options,
    factories: Sequence[BackendFactory] | None = None,
) -> Context:
    inventory = loaded.inventory
    context = Context(
        loaded=loaded,
        desired=desired,
        journal=Journal.for_inventory(inventory.name),
        secrets=SecretStore.for_inventory(inventory.name, inventory.secrets.store),
        options=options,
    )
    for factory in factories if factories is not None else default_factories():
        backend = factory(context)
        if backend is not None:
            context.backends.append(backend)
            # A backend may begin what its read waits on (the SSH host backend connects) while
            # the next ones are built: every command's read starts with it.
            start = getattr(backend, "start", None)
            if start is not None:
                start()
    return context


def read_backend(context: Context, backend: Backend, progress: Progress, phase: str | None = None) -> ReadResult:
    """One backend's read, with its progress lines and its timeline span."""
    progress.step(backend.name, "reading actual state")
    with context.timeline.span(backend.name, phase or context.phase, "backend read"):
        result = backend.read(context.desired)
    progress.step(backend.name, f"read {len(result.resources)} objects")
    return result


def merge_reads(results: Sequence[ReadResult]) -> ReadResult:
    merged = ReadResult()
    for result in results:
        merged.resources.extend(result.resources)
        merged.unreachable.update(result.unreachable)
        merged.blocking.update(result.blocking)
    return merged


def read_each(context: Context, progress: Progress) -> dict[str, ReadResult]:
    """Every backend reads in parallel; its result by backend name."""
    if not context.backends:
        return {}
    with ThreadPoolExecutor(max_workers=len(context.backends)) as pool:
        results = list(pool.map(lambda b: read_backend(context, b, progress), context.backends))
    return {b.name: r for b, r in zip(context.backends, results, strict=True)}


def owner_of(context: Context, change: Change) -> Backend | None:
    for backend in context.backends:
        if backend.owns(change):
            return backend
    return None


def _reachable(desired: list[Resource], context: Context, unreachable: dict[str, str]) -> list[Resource]:
    """Desired items whose backend target could be read: nothing is planned against the unknown."""
    if not unreachable:
        return desired
    return [r for r in desired if not any(target in r.key for target in unreachable)]


@dataclass
class Prepared:
    changes: list[Change]
    actual: ReadResult
    unowned: list[Change]  # changes no backend can apply (should be empty)
    reads: dict[str, ReadResult] = field(default_factory=dict)  # ``actual`` by backend name


def prepare(context: Context, progress: Progress | None = None, desired: list[Resource] | None = None) -> Prepared:
    """Read and diff. ``desired`` defaults to the plan's resources (``down`` passes its own)."""
    progress = progress or NoProgress()
    return _diff(context, read_each(context, progress), desired)


def rediff(context: Context, prepared: Prepared, desired: list[Resource]) -> Prepared:
    """``prepared``'s reads diffed against other desired resources (``down``'s), without reading again."""
    return _diff(context, prepared.reads, desired)


def _diff(context: Context, reads: dict[str, ReadResult], desired: list[Resource] | None) -> Prepared:
    actual = merge_reads(list(reads.values()))
    if actual.blocking:
        raise UnsupportedTargets(actual.blocking)  # before any change on any target
    wanted = desired if desired is not None else context.desired.resources()
    wanted = _reachable(wanted, context, actual.unreachable)
    changes = diff(wanted, actual.resources, context.options.layers)
    unowned = [c for c in changes if owner_of(context, c) is None]
    return Prepared([c for c in changes if c not in unowned], actual, unowned, reads)


@dataclass
class ApplyReport:
    outcomes: list[Outcome]
    remaining: list[Change]  # what the verification read still finds different
    unreachable: dict[str, str]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unreachable and not self.remaining


def execute(
    context: Context,
    prepared: Prepared,
    progress: Progress | None = None,
    desired: list[Resource] | None = None,
    verify: bool = True,
) -> ApplyReport:
    """Apply prepared changes, every backend in parallel, then read back and diff again.

    Each backend reads back as soon as its own apply is done (the backends' states do not depend
    on one another); a backend that had nothing to apply keeps the read ``prepared`` made.
    """
    progress = progress or NoProgress()
    grouped: dict[int, list[Change]] = {}
    for change in prepared.changes:
        owner = owner_of(context, change)
        assert owner is not None  # prepare() filtered the rest
        grouped.setdefault(id(owner), []).append(change)
    work = [(b, grouped[id(b)]) for b in context.backends if id(b) in grouped]
    outcomes: list[Outcome] = []
    verified: dict[str, ReadResult] = {}

    def apply(item: tuple[Backend, list[Change]]) -> list[Outcome]:
        backend, changes = item
        with context.timeline.span(backend.name, "apply", "backend apply"):
            result = backend.apply(changes, context.desired, progress)
        if verify:
            verified[backend.name] = read_backend(context, backend, progress, "verify")
        return result

    if work:
        with ThreadPoolExecutor(max_workers=len(work)) as pool:
            for result in pool.map(apply, work):
                outcomes.extend(result)
    remaining: list[Change] = []
    unreachable = dict(prepared.actual.unreachable)
    context.phase = "verify"
    if verify and work:
        reads: dict[str, ReadResult] = {}
        for backend in context.backends:
            found = verified.get(backend.name, prepared.reads.get(backend.name))
            reads[backend.name] = found if found is not None else read_backend(context, backend, progress, "verify")
        after = _diff(context, reads, desired)
        remaining = [c for c in after.changes if c.action != "conflict"]
        unreachable.update(after.actual.unreachable)
    return ApplyReport(outcomes, remaining, unreachable)


def down_desired(context: Context, actual: ReadResult) -> list[Resource]:
    """What `down` converges to: nothing hybridctl made, and every flag back to the value it found.

    Flags hybridctl never changed (no journal record) are left exactly as they are.
    """
    out: list[Resource] = []
    for resource in actual.resources:
        if resource.layer != "flag":
            continue
        original = context.journal.original(resource.layer, resource.key)
        value = str(original).lower() if original is not None else resource.get("value")
        item = replace(resource.item, value=value in ("true", "1")) if isinstance(resource.item, Flag) else None
        why = "restore the value found before up"
        out.append(Resource(resource.layer, resource.key, (("value", value),), why, item=item))
    # Backends may name actual items `down` must leave as they are although they look like their
    # own (e.g. SoftEther hubs and users that existed before hybridctl configured the host).
    for backend in context.backends:
        keep = getattr(backend, "down_keep", None)
        if keep is not None:
            out.extend(keep(actual))
    return out
