"""`hybridctl init`: parse the flags, discover, write the draft inventory (never over a file)."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from hybridctl.cli.common import Output, OutputOpt
from hybridctl.cli.environment import Environment
from hybridctl.core.errors import ExitStatus, InputError, Problem
from hybridctl.core.inventory.models import NAME_PATTERN, AwsSettings, AzureSettings
from hybridctl.core.secrets import SecretStore
from hybridctl.features import draft as draft_mod
from hybridctl.render.base import print_json
from hybridctl.render.init import init_document, render_init


def _problem(flag: str, message: str, fix: str) -> Problem:
    return Problem(draft_mod.ARGS, flag, message, fix)


def _cidr(flag: str, text: str, problems: list[Problem]) -> str | None:
    try:
        return str(ipaddress.IPv4Network(text))
    except ValueError:
        problems.append(_problem(flag, f"'{text}' is not an IPv4 network with host bits zero", "e.g. 192.168.1.0/24"))
        return None


def _settings(path: Path | None, problems: list[Problem]) -> dict[str, Any]:
    """The ``aws`` / ``azure`` sections of FILE (an inventory or a file holding just those)."""
    if path is None:
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        problems.append(Problem(str(path), "(file)", f"cannot read: {error}", "pass a readable YAML file"))
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem(str(path), "(top level)", "not a mapping", "give it aws: and/or azure: sections"))
        return {}
    return {k: raw[k] for k in ("aws", "azure") if raw.get(k) is not None}


def _model(
    kind: type[AwsSettings] | type[AzureSettings], data: dict[str, Any], where: str, problems: list[Problem]
) -> Any:
    try:
        return kind.model_validate(data)
    except ValidationError as error:
        for item in error.errors():
            loc = ".".join(str(p) for p in item["loc"])
            problems.append(Problem(where, f"{kind.__name__}.{loc}", item["msg"], "see `hybridctl schema`"))
        return None


def init(
    ctx: typer.Context,
    aws: Annotated[str | None, typer.Option("--aws", help="AWS VPC (Name tag or vpc-id) to read.")] = None,
    azure: Annotated[str | None, typer.Option("--azure", help="Azure RESOURCE_GROUP/VNET to read.")] = None,
    onprem: Annotated[list[str] | None, typer.Option("--onprem", help="On-prem LAN CIDR (repeatable).")] = None,
    server: Annotated[str | None, typer.Option("--server", help="SSH host of the on-prem SoftEther server.")] = None,
    bridge: Annotated[
        list[str] | None,
        typer.Option("--bridge", help="Bridge host: instance/ENI Name tag or id, VM or NIC name (repeatable)."),
    ] = None,
    transit: Annotated[str | None, typer.Option("--transit", help="Transit network (else a placeholder).")] = None,
    name: Annotated[str, typer.Option("--name", help="Inventory name.")] = "overlay",
    onprem_name: Annotated[str, typer.Option("--onprem-name", help="Name of the on-prem site.")] = "home",
    region: Annotated[str | None, typer.Option("--region", help="AWS region (else the boto3 chain's).")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile.")] = None,
    subscription: Annotated[
        str | None, typer.Option("--azure-subscription", help="Azure subscription id (else $AZURE_SUBSCRIPTION_ID).")
    ] = None,
    azure_route_table: Annotated[
        str, typer.Option("--azure-route-table", help="Route table `up` creates for Azure subnets without one.")
    ] = "hybridctl-rt",
    settings: Annotated[
        Path | None,
        typer.Option("--settings", help="Take the aws:/azure: sections (endpoints, credentials) from this YAML."),
    ] = None,
    output_file: Annotated[
        Path | None, typer.Option("--output-file", "-f", help="Write the draft here (refuses an existing file).")
    ] = None,
    output: OutputOpt = Output.table,
) -> ExitStatus:
    """Write a draft inventory from an existing VPC / VNet and the on-prem LAN; placeholders for the rest."""
    env = Environment.of(ctx)
    problems: list[Problem] = []
    if not aws and not azure:
        problems.append(_problem("--aws/--azure", "nothing to read", "pass --aws VPC and/or --azure RG/VNET"))
    if bool(onprem) != bool(server):
        problems.append(
            _problem("--onprem/--server", "the on-prem side needs both", "pass --onprem CIDR --server HOST")
        )
    azure_pair: tuple[str, str] | None = None
    if azure:
        rg, sep, vnet = azure.partition("/")
        if not sep or not rg or not vnet or "/" in vnet:
            problems.append(
                _problem("--azure", f"'{azure}' is not RESOURCE_GROUP/VNET", "e.g. --azure hybrid-rg/Hybrid-VNet")
            )
        else:
            azure_pair = (rg, vnet)
    cidrs = [c for c in (_cidr("--onprem", text, problems) for text in onprem or []) if c]
    transit_cidr = _cidr("--transit", transit, problems) if transit else None
    for flag, value in (("--name", name), ("--onprem-name", onprem_name)):
        if not re.fullmatch(NAME_PATTERN, value):
            problems.append(
                _problem(flag, f"'{value}' has characters that are not allowed", "use letters, digits, -_.")
            )
    if output_file is not None and output_file.exists():
        problems.append(
            Problem(str(output_file), "--output-file", "the file exists: init never overwrites", "pass a new path")
        )
    sections = _settings(settings, problems)
    where = str(settings) if settings else draft_mod.ARGS
    aws_data = dict(sections.get("aws") or {})
    if region:
        aws_data["region"] = region
    if profile:
        aws_data["profile"] = profile
    aws_settings = _model(AwsSettings, aws_data, where, problems) if aws else None
    azure_settings = None
    if azure:
        azure_data = dict(sections.get("azure") or {})
        sub = subscription or azure_data.get("subscription_id") or os.environ.get("AZURE_SUBSCRIPTION_ID")
        if not sub:
            problems.append(
                _problem(
                    "--azure-subscription",
                    "no Azure subscription",
                    "pass --azure-subscription or set AZURE_SUBSCRIPTION_ID",
                )
            )
        else:
            azure_settings = _model(AzureSettings, {**azure_data, "subscription_id": sub}, where, problems)
    if problems:
        raise InputError(problems)
    request = draft_mod.Request(
        name=name,
        onprem=draft_mod.OnPrem(onprem_name, cidrs, server) if server else None,
        aws_vpc=aws,
        azure=azure_pair,
        bridges=list(bridge or []),
        transit=transit_cidr,
        aws=aws_settings,
        azure_settings=azure_settings,
        azure_route_table=azure_route_table,
        command="hybridctl init " + shlex.join(a for a in env.argv[1:] if a) if len(env.argv) > 1 else "",
    )
    secrets = SecretStore.for_inventory(name, None)
    sites = draft_mod.discover(request, secrets)
    text = draft_mod.draft(request, sites)
    left = draft_mod.placeholders(yaml.safe_load(text))
    if output_file is not None:
        # O_EXCL: refuse even when the file appeared while discovery ran.
        try:
            fd = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise InputError(
                [
                    Problem(
                        str(output_file), "--output-file", "the file exists: init never overwrites", "pass a new path"
                    )
                ]
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    if output is Output.json:
        print_json(env.stdout, init_document(output_file, text, sites, left))
    else:
        render_init(env.stdout, env.stderr, output_file, text, sites, left)
    return ExitStatus.OK


def register(app: typer.Typer) -> None:
    app.command()(init)
