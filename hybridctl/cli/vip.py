"""`vip`, `endpoint`, `doctor` and `iam-policy`: parse, call :mod:`hybridctl.features.vip`, render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hybridctl.cli.common import InventoryOpt, Output, OutputOpt
from hybridctl.cli.environment import Environment
from hybridctl.core.errors import ExitStatus
from hybridctl.core.inventory.load import LoadedInventory, load_inventory
from hybridctl.features.vip.checks import Check, Status, UnsafeError
from hybridctl.features.vip.ocf import DEFAULT_AGENT_DIR
from hybridctl.render import vip as render
from hybridctl.render.base import print_json

vip_app = typer.Typer(help="HA virtual IPs moved by route table (reference sections 4 and 5).", no_args_is_help=True)
endpoint_app = typer.Typer(help="The private EC2 API endpoint of the VIPs' VPCs.", no_args_is_help=True)

VipArg = Annotated[str, typer.Argument(help="The VIP's name in the inventory.")]
VipsArg = Annotated[list[str] | None, typer.Argument(help="VIP names (default: every VIP).")]
AllowOpt = Annotated[
    bool,
    typer.Option("--allow-collisions", help="Proceed although another VPC routes the same VIP (it is not touched)."),
]


def _load(inventory: Path) -> LoadedInventory:
    # load_inventory runs the checks across `vips:` entries too, as for every command.
    return load_inventory(inventory)


def _api(loaded: LoadedInventory) -> Any:
    from hybridctl.features.vip.aws import AwsApi, AwsConfig

    return AwsApi(AwsConfig.from_settings(loaded.inventory.aws))


def _refused(env: Environment, error: UnsafeError, output: Output) -> ExitStatus:
    if output is Output.json:
        print_json(env.stdout, render.refused_document(error))
    else:
        render.render_refused(env.stderr, error)
    return ExitStatus.ERROR


def _moved(env: Environment, result: Any, output: Output, verb: str) -> None:
    if output is Output.json:
        print_json(env.stdout, render.move_document(result))
    else:
        render.render_move(env.stdout, result, verb)


@vip_app.command("status")
def vip_status(
    ctx: typer.Context, inventory: InventoryOpt, names: VipsArg = None, output: OutputOpt = Output.table
) -> ExitStatus:
    """Where each VIP is routed, table by table, and the safety checks. Exit 2 when not in sync."""
    from hybridctl.features.vip import ops
    from hybridctl.features.vip.validate import select

    env = Environment.of(ctx)
    loaded = _load(inventory)
    with _api(loaded) as api:
        results = [ops.status(api, vip) for vip in select(loaded, names)]
    if output is Output.json:
        print_json(env.stdout, render.vips_document(results))
    else:
        render.render_status(env.stdout, results)
    bad = any(not r.in_sync or any(c.status is Status.fail for c in r.checks) for r in results)
    return ExitStatus.DRIFT if bad else ExitStatus.OK


@vip_app.command("move")
def vip_move(
    ctx: typer.Context,
    name: VipArg,
    inventory: InventoryOpt,
    to: Annotated[str, typer.Option("--to", help="The node to move the VIP to.")],
    allow_collisions: AllowOpt = False,
    output: OutputOpt = Output.table,
) -> ExitStatus:
    """Repoint every table holding the VIP (and every declared one) to NODE, in parallel; verify."""
    from hybridctl.features.vip import ops
    from hybridctl.features.vip.validate import select

    env = Environment.of(ctx)
    loaded = _load(inventory)
    vip = select(loaded, [name])[0]
    try:
        with _api(loaded) as api:
            result = ops.move(api, vip, to, allow_collisions=allow_collisions)
    except UnsafeError as error:
        return _refused(env, error, output)
    except ops.VipPartialFailure as error:
        _moved(env, error.result, output, "move")
        raise
    _moved(env, result, output, "move")
    return ExitStatus.OK


@vip_app.command("ensure")
def vip_ensure(
    ctx: typer.Context,
    inventory: InventoryOpt,
    names: VipsArg = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Node to point new routes at (default: the active one).")
    ] = None,
    allow_collisions: AllowOpt = False,
    output: OutputOpt = Output.table,
) -> ExitStatus:
    """Idempotent setup: source/dest check off, VIP/32 in every declared table, TGW and on-prem routes."""
    from hybridctl.features.vip import ops
    from hybridctl.features.vip.validate import select

    env = Environment.of(ctx)
    loaded = _load(inventory)
    results = []
    try:
        with _api(loaded) as api:
            for vip in select(loaded, names):
                results.append(ops.ensure(api, vip, to, allow_collisions=allow_collisions))
    except UnsafeError as error:
        return _refused(env, error, output)
    except ops.VipPartialFailure as error:
        _moved(env, error.result, output, "ensure")
        raise
    if output is Output.json:
        print_json(env.stdout, render.vips_document(results))
    else:
        for result in results:
            render.render_move(env.stdout, result, "ensure")
    return ExitStatus.OK


@vip_app.command(
    "agent",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def vip_agent(
    ctx: typer.Context,
    action: Annotated[str | None, typer.Argument(help="start | stop | monitor | meta-data | validate-all")] = None,
) -> int:
    """OCF resource agent (parameters in OCF_RESKEY_*; exit codes per the OCF API). See docs/vip.md."""
    from hybridctl.features.vip.ocf import run_agent

    env = Environment.of(ctx)
    result = run_agent(action)
    if result.stdout:
        env.stdout.file.write(result.stdout)
        env.stdout.file.flush()
    for line in result.log:
        env.stderr.file.write(f"{line}\n")
    # The OCF API's own codes (0 success, 7 not running, ...): the runner passes a plain int through.
    return int(result.code)


@vip_app.command("install-agent")
def vip_install_agent(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Option("--dir", help="Provider directory: the agent becomes ocf:PROVIDER:vip.")
    ] = DEFAULT_AGENT_DIR,
    executable: Annotated[
        Path | None, typer.Option("--hybridctl", help="Absolute path of hybridctl (default: this installation's).")
    ] = None,
    output: OutputOpt = Output.table,
) -> ExitStatus:
    """Write the OCF wrapper DIR/vip (mode 755) that runs `hybridctl vip agent`. See docs/vip.md."""
    from hybridctl.features.vip.ocf import install_wrapper

    path = install_wrapper(directory, executable)
    command = path.read_text(encoding="utf-8").splitlines()[-1]
    env = Environment.of(ctx)
    if output is Output.json:
        print_json(env.stdout, render.agent_document(path, command))
    else:
        render.render_agent(env.stdout, path, command)
    return ExitStatus.OK


@endpoint_app.command("ensure")
def endpoint_ensure(
    ctx: typer.Context, inventory: InventoryOpt, names: VipsArg = None, output: OutputOpt = Output.table
) -> ExitStatus:
    """Interface endpoint com.amazonaws.REGION.ec2 in the nodes' subnets, SG 443 from the VPC, DNS on."""
    from hybridctl.features.vip import endpoint
    from hybridctl.features.vip.validate import select

    loaded = _load(inventory)
    by_vpc: dict[tuple[str | None, str], list[Any]] = {}
    for vip in select(loaded, names):
        by_vpc.setdefault((vip.region, vip.vpc), []).append(vip)
    with _api(loaded) as api:
        results = [endpoint.ensure(api, vips) for vips in by_vpc.values()]
    env = Environment.of(ctx)
    if output is Output.json:
        print_json(env.stdout, render.endpoints_document(results))
    else:
        render.render_endpoints(env.stdout, results)
    return ExitStatus.OK


@endpoint_app.command("status")
def endpoint_status(
    ctx: typer.Context, inventory: InventoryOpt, names: VipsArg = None, output: OutputOpt = Output.table
) -> ExitStatus:
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
    env = Environment.of(ctx)
    if output is Output.json:
        print_json(env.stdout, render.checks_document(checks))
    else:
        env.stdout.print(render.checks_table(checks))
    return ExitStatus.DRIFT if any(c.status is Status.fail for c in checks) else ExitStatus.OK


def doctor(
    ctx: typer.Context,
    inventory: InventoryOpt,
    output: OutputOpt = Output.table,
    bound: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds an API may take to answer (seeds: a minute).")
    ] = 60.0,
    overlay: Annotated[
        bool, typer.Option("--overlay/--no-overlay", help="Check the overlay's sites (clouds and hosts).")
    ] = True,
    hosts: Annotated[bool, typer.Option("--hosts/--no-hosts", help="Check the overlay's hosts over SSH.")] = True,
) -> ExitStatus:
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
    env = Environment.of(ctx)
    if output is Output.json:
        print_json(env.stdout, render.doctor_document(report))
    else:
        render.render_doctor(env.stdout, report)
    return ExitStatus.ERROR if report.status is Status.fail else ExitStatus.OK


def iam_policy(
    ctx: typer.Context,
    inventory: InventoryOpt,
    role: Annotated[
        str, typer.Option("--role", help="operator (who runs hybridctl) or node (a VIP node's instance role).")
    ] = "operator",
    account: Annotated[str, typer.Option("--account", help="Account id for the ARNs (default: any).")] = "*",
    cloud: Annotated[
        str, typer.Option("--cloud", help="aws: the IAM policy; azure: the custom role `up` needs on each group.")
    ] = "aws",
) -> ExitStatus:
    """Print the least-privilege IAM policy (JSON) for the features the inventory uses, or the Azure role."""
    from hybridctl.features.vip import iam

    if role not in ("operator", "node"):
        raise typer.BadParameter("choose operator or node", param_hint="--role")
    if cloud not in ("aws", "azure"):
        raise typer.BadParameter("choose aws or azure", param_hint="--cloud")
    loaded = load_inventory(inventory)
    if cloud == "azure":
        from hybridctl.features.preflight import azure_role

        document = azure_role(loaded.inventory)
    else:
        document = iam.policy(loaded.inventory, role, account)
    # Plain JSON, as IAM and `az role definition create` take it (no console styling).
    Environment.of(ctx).stdout.file.write(json.dumps(document, indent=2) + "\n")
    return ExitStatus.OK


def register(app: typer.Typer) -> None:
    app.add_typer(vip_app, name="vip")
    app.add_typer(endpoint_app, name="endpoint")
    app.command("doctor")(doctor)
    app.command("iam-policy")(iam_policy)
