"""`vip`, `endpoint`, `doctor` and `iam-policy`: parse, call :mod:`hybridctl.features.vip`, render."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from hybridctl.cli.common import InventoryOpt, Output, OutputOpt, print_json, stderr, stdout
from hybridctl.core.errors import EXIT_DRIFT, EXIT_ERROR, EXIT_OK
from hybridctl.core.inventory.load import LoadedInventory, load_inventory
from hybridctl.features.vip.checks import Check, Status, UnsafeError
from hybridctl.features.vip.ocf import DEFAULT_AGENT_DIR

vip_app = typer.Typer(help="HA virtual IPs moved by route table (reference sections 4 and 5).", no_args_is_help=True)
endpoint_app = typer.Typer(help="The private EC2 API endpoint of the VIPs' VPCs.", no_args_is_help=True)

VipArg = Annotated[str, typer.Argument(help="The VIP's name in the inventory.")]
VipsArg = Annotated[list[str] | None, typer.Argument(help="VIP names (default: every VIP).")]
AllowOpt = Annotated[
    bool,
    typer.Option("--allow-collisions", help="Proceed although another VPC routes the same VIP (it is not touched)."),
]

_STYLE = {Status.ok: "[green]ok[/]", Status.warn: "[yellow]warn[/]", Status.fail: "[red]fail[/]"}


def _load(inventory: Path) -> LoadedInventory:
    # load_inventory runs the checks across `vips:` entries too, as for every command.
    return load_inventory(inventory)


def _api(loaded: LoadedInventory) -> Any:
    from hybridctl.features.vip.aws import AwsApi, AwsConfig

    return AwsApi(AwsConfig.from_settings(loaded.inventory.aws))


def _checks_table(checks: Sequence[Check], title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("check", "on", "", "what", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        what = escape(check.message) + "".join(f"\n  {escape(d)}" for d in check.details)
        table.add_row(check.id, escape(check.subject), _STYLE[check.status], what, escape(check.fix))
    return table


def _refused(error: UnsafeError, output: Output) -> NoReturn:
    if output is Output.json:
        print_json({"error": "refused", "vip": error.vip, "checks": [c.as_dict() for c in error.checks]})
    else:
        # Plain lines, not a table: ids of offending route tables must survive any terminal width.
        stderr.print(f"[red]refused[/]: {escape(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_ERROR)


def _render_move(result: Any, output: Output, verb: str) -> None:
    if output is Output.json:
        print_json(result.as_dict())
        return
    rows = result.tables + result.onprem
    if rows:
        table = Table(title=f"vip {result.vip}: {verb} -> {result.node} ({result.eni_id})")
        for column in ("route table", "destination", "was", "now", "", "s"):
            table.add_column(column)
        for row in rows:
            mark = f"[green]{row.op}d[/]" if row.ok else f"[red]failed[/] {escape(row.error)}"
            table.add_row(
                escape(row.label), row.destination, row.before or "-", row.after or "-", mark, f"{row.seconds:.3f}"
            )
        stdout.print(table)
    else:
        stdout.print(f"vip {result.vip}: every route table already points at {result.node} ({result.eni_id})")
    if result.tgw is not None:
        tgw = result.tgw
        state = "[green]ok[/]" if tgw.ok else f"[red]failed[/] {escape(tgw.error)}"
        stdout.print(f"transit gateway {tgw.route_table_id}: {result.vip} -> {tgw.attachment_id} ({tgw.op}) {state}")
    for eni, outcome in result.source_dest_check.items():
        stdout.print(f"{eni}: source/dest check {escape(outcome)}")
    notes = [c for c in result.checks if c.status is not Status.ok]
    if notes:
        stdout.print(_checks_table(notes))
    stdout.print(
        f"[dim]reads {result.read_seconds:.3f}s, writes+read-back {result.write_seconds:.3f}s, "
        f"calls {sum(result.calls.values())}[/]"
    )


@vip_app.command("status")
def vip_status(inventory: InventoryOpt, names: VipsArg = None, output: OutputOpt = Output.table) -> None:
    """Where each VIP is routed, table by table, and the safety checks. Exit 2 when not in sync."""
    from hybridctl.features.vip import ops
    from hybridctl.features.vip.validate import select

    loaded = _load(inventory)
    with _api(loaded) as api:
        results = [ops.status(api, vip) for vip in select(loaded, names)]
    bad = any(not r.in_sync or any(c.status is Status.fail for c in r.checks) for r in results)
    if output is Output.json:
        print_json({"vips": [r.as_dict() for r in results]})
    else:
        for result in results:
            table = Table(
                title=f"vip {result.vip} {result.address} in {result.vpc_id} ({result.region}): "
                + (f"active on {result.active_node}" if result.active_node else "on no node")
                + ("" if result.in_sync else " [red]not in sync[/]")
            )
            for column in ("route table", "name", "main", "declared", "VIP ->", "node", "state"):
                table.add_column(column)
            for row in result.tables:
                table.add_row(
                    row.table_id,
                    escape(row.name or ""),
                    "yes" if row.main else "",
                    "yes" if row.wanted else "",
                    row.target or "[red]missing[/]" if row.wanted else row.target or "-",
                    row.node or "",
                    row.state,
                )
            stdout.print(table)
            if result.tgw is not None:
                stdout.print(f"transit gateway: {escape(json.dumps(result.tgw))}")
            stdout.print(_checks_table(result.checks))
    raise typer.Exit(EXIT_DRIFT if bad else EXIT_OK)


@vip_app.command("move")
def vip_move(
    name: VipArg,
    inventory: InventoryOpt,
    to: Annotated[str, typer.Option("--to", help="The node to move the VIP to.")],
    allow_collisions: AllowOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Repoint every table holding the VIP (and every declared one) to NODE, in parallel; verify."""
    from hybridctl.features.vip import ops
    from hybridctl.features.vip.validate import select

    loaded = _load(inventory)
    vip = select(loaded, [name])[0]
    try:
        with _api(loaded) as api:
            result = ops.move(api, vip, to, allow_collisions=allow_collisions)
    except UnsafeError as error:
        _refused(error, output)
    except ops.VipPartialFailure as error:
        _render_move(error.result, output, "move")
        raise
    _render_move(result, output, "move")


@vip_app.command("ensure")
def vip_ensure(
    inventory: InventoryOpt,
    names: VipsArg = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Node to point new routes at (default: the active one).")
    ] = None,
    allow_collisions: AllowOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Idempotent setup: source/dest check off, VIP/32 in every declared table, TGW and on-prem routes."""
    from hybridctl.features.vip import ops
    from hybridctl.features.vip.validate import select

    loaded = _load(inventory)
    results = []
    try:
        with _api(loaded) as api:
            for vip in select(loaded, names):
                results.append(ops.ensure(api, vip, to, allow_collisions=allow_collisions))
    except UnsafeError as error:
        _refused(error, output)
    except ops.VipPartialFailure as error:
        _render_move(error.result, output, "ensure")
        raise
    if output is Output.json:
        print_json({"vips": [r.as_dict() for r in results]})
    else:
        for result in results:
            _render_move(result, output, "ensure")


@vip_app.command(
    "agent",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def vip_agent(
    action: Annotated[str | None, typer.Argument(help="start | stop | monitor | meta-data | validate-all")] = None,
) -> None:
    """OCF resource agent (parameters in OCF_RESKEY_*; exit codes per the OCF API). See docs/vip.md."""
    from hybridctl.features.vip.ocf import run_agent

    result = run_agent(action)
    if result.stdout:
        sys.stdout.write(result.stdout)
        sys.stdout.flush()
    for line in result.log:
        sys.stderr.write(f"{line}\n")
    raise typer.Exit(result.code)


@vip_app.command("install-agent")
def vip_install_agent(
    directory: Annotated[
        Path, typer.Option("--dir", help="Provider directory: the agent becomes ocf:PROVIDER:vip.")
    ] = DEFAULT_AGENT_DIR,
    executable: Annotated[
        Path | None, typer.Option("--hybridctl", help="Absolute path of hybridctl (default: this installation's).")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Write the OCF wrapper DIR/vip (mode 755) that runs `hybridctl vip agent`. See docs/vip.md."""
    from hybridctl.features.vip.ocf import install_wrapper

    path = install_wrapper(directory, executable)
    command = path.read_text(encoding="utf-8").splitlines()[-1]
    if output is Output.json:
        print_json({"agent": str(path), "exec": command})
    else:
        stdout.print(f"{escape(str(path))}: {escape(command)}")


@endpoint_app.command("ensure")
def endpoint_ensure(inventory: InventoryOpt, names: VipsArg = None, output: OutputOpt = Output.table) -> None:
    """Interface endpoint com.amazonaws.REGION.ec2 in the nodes' subnets, SG 443 from the VPC, DNS on."""
    from hybridctl.features.vip import endpoint
    from hybridctl.features.vip.validate import select

    loaded = _load(inventory)
    by_vpc: dict[tuple[str | None, str], list[Any]] = {}
    for vip in select(loaded, names):
        by_vpc.setdefault((vip.region, vip.vpc), []).append(vip)
    with _api(loaded) as api:
        results = [endpoint.ensure(api, vips) for vips in by_vpc.values()]
    if output is Output.json:
        print_json({"endpoints": [r.as_dict() for r in results]})
        return
    for result in results:
        stdout.print(
            f"{result.vpc_id} ({result.region}): endpoint {result.endpoint_id}, "
            f"security group {result.security_group_id}"
        )
        for change in result.changes or ["nothing to change"]:
            stdout.print(f"  {escape(change)}")
        for note in result.notes:
            stdout.print(f"  [yellow]note[/]: {escape(note)}")
        for dns in result.dns_names:
            stdout.print(f"  [dim]{escape(dns)}[/]")


@endpoint_app.command("status")
def endpoint_status(inventory: InventoryOpt, names: VipsArg = None, output: OutputOpt = Output.table) -> None:
    """The endpoint's state as checks (reads only). Exit 2 when a check fails."""
    from hybridctl.features.vip import endpoint
    from hybridctl.features.vip.validate import select

    loaded = _load(inventory)
    by_vpc: dict[tuple[str | None, str], list[Any]] = {}
    for vip in select(loaded, names):
        by_vpc.setdefault((vip.region, vip.vpc), []).append(vip)
    checks: list[Check] = []
    with _api(loaded) as api:
        for vips in by_vpc.values():
            checks += endpoint.endpoint_checks(endpoint.read_state(api, vips))
    if output is Output.json:
        print_json({"checks": [c.as_dict() for c in checks]})
    else:
        stdout.print(_checks_table(checks))
    raise typer.Exit(EXIT_DRIFT if any(c.status is Status.fail for c in checks) else EXIT_OK)


def doctor(
    inventory: InventoryOpt,
    output: OutputOpt = Output.table,
    bound: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds an API may take to answer (seeds: a minute).")
    ] = 60.0,
    overlay: Annotated[
        bool, typer.Option("--overlay/--no-overlay", help="Check the overlay's sites (clouds and hosts).")
    ] = True,
    hosts: Annotated[bool, typer.Option("--hosts/--no-hosts", help="Check the overlay's hosts over SSH.")] = True,
) -> None:
    """Check what `up` and every feature need, changing nothing: names resolve, bridges' NICs sit where the
    inventory says, IAM / Azure permissions, route quotas, SSH, host keys, sudo, distribution, packages,
    each bridge's path to the server's port; VIP nodes.

    Exit 0 when everything passes or only warns, 1 when a check fails (every failing check is listed).
    """
    from hybridctl.core.planner.loaded import plan_loaded
    from hybridctl.core.secrets import SecretStore
    from hybridctl.features import preflight
    from hybridctl.features.vip import doctor as doctor_mod

    loaded = _load(inventory)
    desired = plan_loaded(loaded)
    report = doctor_mod.run(loaded.inventory, bound=bound)
    store = SecretStore.for_inventory(loaded.inventory.name, loaded.inventory.secrets.store)
    if overlay:
        report.checks.extend(preflight.run(loaded.inventory, desired, store, timeout=min(bound, 15.0), hosts=hosts))
    if output is Output.json:
        print_json(report.as_dict())
    else:
        stdout.print(_checks_table(report.checks, title="hybridctl doctor"))
        counts = report.as_dict()["counts"]
        stdout.print(f"{_STYLE[report.status]}: {counts}")
    raise typer.Exit(EXIT_ERROR if report.status is Status.fail else EXIT_OK)


def iam_policy(
    inventory: InventoryOpt,
    role: Annotated[
        str, typer.Option("--role", help="operator (who runs hybridctl) or node (a VIP node's instance role).")
    ] = "operator",
    account: Annotated[str, typer.Option("--account", help="Account id for the ARNs (default: any).")] = "*",
    cloud: Annotated[
        str, typer.Option("--cloud", help="aws: the IAM policy; azure: the custom role `up` needs on each group.")
    ] = "aws",
) -> None:
    """Print the least-privilege IAM policy (JSON) for the features the inventory uses, or the Azure role."""
    from hybridctl.features.vip import iam

    if role not in ("operator", "node"):
        raise typer.BadParameter("choose operator or node", param_hint="--role")
    if cloud not in ("aws", "azure"):
        raise typer.BadParameter("choose aws or azure", param_hint="--cloud")
    loaded = load_inventory(inventory)
    if cloud == "azure":
        from hybridctl.features.preflight import azure_role

        sys.stdout.write(json.dumps(azure_role(loaded.inventory), indent=2) + "\n")
        return
    sys.stdout.write(json.dumps(iam.policy(loaded.inventory, role, account), indent=2) + "\n")


def register(app: typer.Typer) -> None:
    app.add_typer(vip_app, name="vip")
    app.add_typer(endpoint_app, name="endpoint")
    app.command("doctor")(doctor)
    app.command("iam-policy")(iam_policy)
