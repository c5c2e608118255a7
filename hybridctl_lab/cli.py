"""``hybridctl lab``: the local lab (network namespaces + cloud emulators), see docs/lab.md.

hybridctl finds this command group through the ``hybridctl.plugins`` entry point ``lab``
(pyproject.toml), which names :func:`plugin`. The top-level help imports this module to list the
command, so it stays light: the manager (and with it the emulators, moto and cryptography) is
imported inside each command.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hybridctl.cli.common import ConsoleProgress, Output, OutputOpt, print_json, stderr, stdout
from hybridctl_lab import PYTHON_MODULES
from hybridctl_lab.topology import MAX_EXTRA_CLIENTS, MAX_EXTRA_SITES

lab_app = typer.Typer(
    name="lab",
    help="The local lab: the reference network in namespaces, with AWS and Azure emulators (root, Linux).",
    no_args_is_help=True,
    add_completion=False,
)

LabDirOpt = Annotated[
    Path | None,
    typer.Option("--lab-dir", help="Lab directory (default $HYBRIDCTL_LAB_DIR or /var/lib/hybridctl-lab)."),
]


def _mark(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[red]no[/]"


@lab_app.command("up")
def up(
    extra_clients: Annotated[
        int, typer.Option("--extra-clients", min=0, max=MAX_EXTRA_CLIENTS, help="More home LAN clients (.100+).")
    ] = 0,
    extra_sites: Annotated[
        int,
        typer.Option(
            "--extra-sites", min=0, max=MAX_EXTRA_SITES, help="More cloud sites: AWS VPCs s1.. with a bridge each."
        ),
    ] = 0,
    aws_port: Annotated[int | None, typer.Option("--aws-port", help="AWS emulator port (default 5511).")] = None,
    azure_port: Annotated[int | None, typer.Option("--azure-port", help="Azure emulator port (default 5512).")] = None,
    lab_dir: LabDirOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Build the lab from scratch (clears leftovers first): hosts booting systemd, cloud fabrics, emulators, clouds."""
    from hybridctl_lab import manager

    result = manager.up(
        extra_clients=extra_clients,
        extra_sites=extra_sites,
        lab_dir=lab_dir,
        aws_port=aws_port,
        azure_port=azure_port,
        progress=ConsoleProgress(),
    )
    if output is Output.json:
        print_json(result.as_dict())
        return
    lines = [
        f"lab up in {result.seconds:.1f}s ({result.lab_dir})",
        f"  inventory:  {result.inventory}   (hybridctl plan -i {result.inventory})",
        f"  ssh_config: {result.ssh_config}   (ssh -F {result.ssh_config} hl-aws-br)",
        f"  AWS emulator: {result.aws_url}   Azure emulator: {result.azure_url}",
    ]
    for line in lines:
        stdout.print(line, soft_wrap=True, highlight=False)


@lab_app.command("down")
def down(lab_dir: LabDirOpt = None) -> None:
    """Tear the lab down: daemon, hosts (poweroff), namespaces, cgroups and everything they started. Safe to repeat."""
    from hybridctl_lab import manager

    result = manager.down(lab_dir=lab_dir)
    stderr.print(
        f"lab down in {result.seconds:.2f}s: {len(result.namespaces)} namespaces removed, "
        f"{len(result.killed)} processes stopped"
    )


@lab_app.command("status")
def status(lab_dir: LabDirOpt = None, output: OutputOpt = Output.table) -> None:
    """Namespaces, hosts (systemd, sshd), the lab daemon, the emulators' health and the reconciler. Exit 1 unless up."""
    from hybridctl_lab import manager

    st = manager.status(lab_dir=lab_dir)
    if output is Output.json:
        print_json(st.as_dict())
    else:
        stdout.print(f"lab {'[green]up[/]' if st.up else '[red]not up[/]'} ({st.lab_dir})")
        daemon = f"pid {st.daemon_pid}, ready {_mark(st.daemon_ready)}" if st.daemon_running else "not running"
        stdout.print(f"  daemon:   {_mark(st.daemon_running)} {daemon}")
        stdout.print(f"  AWS:      {_mark(st.aws_healthy)} {st.aws_url or '-'}")
        stdout.print(f"  Azure:    {_mark(st.azure_healthy)} {st.azure_url or '-'}")
        rec = st.reconciler or {}
        last = rec.get("last") or {}
        if rec:
            stdout.print(
                f"  fabric reconciler: {rec.get('passes')} passes, {rec.get('applies_with_changes')} with changes, "
                f"last {'ok' if last.get('ok') else 'failed: ' + str(last.get('error'))}"
            )
        if st.inventory:
            stdout.print(f"  inventory: {st.inventory}")
        table = Table("host", "namespace", "systemd (init pid)", "sshd listening", "login user")
        for h in st.dataplane.hosts:
            init = (_mark(h.sshd_running) + f" {h.init_pid}") if h.sshd else "-"
            table.add_row(
                h.name, _mark(h.namespace), init, _mark(h.listening) if h.sshd else "-", h.user if h.sshd else "-"
            )
        if st.dataplane.hosts:
            stdout.print(table)
        if st.dataplane.stray:
            stdout.print(f"  stray namespaces: {', '.join(st.dataplane.stray)}")
    if not st.up:
        raise typer.Exit(1)


@lab_app.command(
    "exec",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Argument(help="Lab host: inventory name (aws-bridge, vpnserver, node1) or namespace (hl-aws-h20)."),
    ],
    lab_dir: LabDirOpt = None,
) -> None:
    """Run a command inside a lab host: hybridctl lab exec HOST -- CMD [ARGS...] (no CMD: a shell)."""
    from hybridctl_lab import manager

    code = manager.exec_command(host, list(ctx.args), lab_dir=lab_dir)
    raise typer.Exit(code)


@lab_app.command("pings")
def pings(
    expect_none: Annotated[
        bool, typer.Option("--expect-none", help="Expect no cross-site ping to pass (a bare lab): exit 1 if one does.")
    ] = False,
    lab_dir: LabDirOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Ping matrix between the test hosts, from inside each one. Exit 1 if a cross-site pair fails."""
    from hybridctl_lab import manager

    matrix = manager.ping_matrix(lab_dir=lab_dir)
    if output is Output.json:
        print_json(matrix.as_dict())
    else:
        table = Table("from", "to", "address", "cross-site", "ping")
        for r in matrix.results:
            table.add_row(r.source, r.target, r.address, "yes" if r.cross_site else "", _mark(r.ok))
        stdout.print(table)
        summary = matrix.as_dict()
        stdout.print(
            f"cross-site: {summary['cross_site']['ok']}/{summary['cross_site']['pairs']} pass, "
            f"same-site: {summary['same_site']['ok']}/{summary['same_site']['pairs']} pass"
        )
    cross = matrix.cross_site
    failed = any(r.ok for r in cross) if expect_none else not all(r.ok for r in cross)
    if failed:
        raise typer.Exit(1)


def plugin() -> typer.Typer:
    """The ``hybridctl.plugins`` entry point: the ``lab`` group, if the ``lab`` extra is installed.

    Raises :class:`ModuleNotFoundError` naming the first missing package, which hybridctl turns
    into a message saying how to install the extra.
    """
    for module in PYTHON_MODULES:
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"the lab needs {module}", name=module)
    return lab_app
