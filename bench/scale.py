"""Benchmark: how `hybridctl up` grows with cloud sites and with LAN clients, beside the SSH floor.

Cells (one fresh lab each, ``manager.up(extra_clients=C, extra_sites=S-2)`` under the machine-wide
lab lock, in LAB_DIR /var/lib/hybridctl-lab-bench-ansible, on free ports; taken down afterwards):

- cloud sites S in ``--sites`` (default 1 2 4 8) at ``--default-clients`` extra LAN clients (40);
- extra LAN clients C in ``--clients`` (default 40 100 200) at ``--default-sites`` (2, the reference).

Cloud sites: the reference lab has two (AWS, Azure); S > 2 adds S-2 extra AWS sites (``lab up
--extra-sites``: a VPC, a fabric, a bridge cascading to the one VPN server, a test host per
subnet); S = 1 manages the reference AWS site only (the inventory without its Azure site: the
Azure hosts boot but nothing configures them). Clients: C extra + ``hl-home-c1``.

Per cell:

1. floor, all managed hosts: one verified paramiko connection and one exec (``true`` through the
   same ``sudo -n`` hybridctl uses) per managed host (server, every bridge, every client), all in
   parallel as hybridctl connects (``ssh.connect_all``). The least any SSH tool pays to touch them;
2. ``hybridctl up -i INVENTORY --yes`` as a command, cold (bare lab) and warm (nothing to do):
   wall time, and from its progress lines when the VPN server, the last bridge (the gateway
   path) and the last LAN client were done, from the engine's start (bench/up_vs_ansible.py's
   ``cli_up``);
3. ``hybridctl check`` once (must pass: every test host pings every other site's);
4. the clients alone (reset to bare first), as bench/up_vs_ansible.py measures them: the floor
   (one exec per client doing the whole job) and hybridctl's engine with only the SSH host
   backend (read, apply, verify), cold and warm; every run's end state is checked on every client.

Prints a Markdown table (``--json``: everything). Needs root and the lab packages.

    python bench/scale.py [--sites 1 2 4 8] [--clients 40 100 200] [--runs 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# bench/ is the script's directory: the client work and the CLI runner are up_vs_ansible's, so
# the two benchmarks measure the same things the same way.
import up_vs_ansible as uva
import yaml
from bytecode import byte_compile_checkout

from hybridctl.backends.ssh import connect_all
from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl_lab import dataplane, manager, netns
from hybridctl_lab.daemon import free_port
from hybridctl_lab.topology import MAX_EXTRA_SITES

LAB_DIR = uva.LAB_DIR  # up_vs_ansible's helpers run their resets and checks there
REFERENCE_SITES = 2  # the reference lab's cloud sites: AWS and Azure


def lab_memory_mb() -> dict[str, float]:
    """PSS and RSS summed over every process of the lab's namespaces (PSS: shared pages split)."""
    pss = rss = 0
    pids = netns.pids_in_namespaces(netns.list_namespaces("hl-"))
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue  # gone meanwhile
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key == "Pss":
                pss += int(value.split()[0])
            elif key == "Rss":
                rss += int(value.split()[0])
    return {"processes": len(pids), "pss_mb": pss / 1024, "rss_mb": rss / 1024}


def host_ends(timeline: list[dict[str, Any]] | None) -> dict[str, float]:
    """Host -> when its last step ended, in `up`'s own timeline (seconds from the host backend's start)."""
    ends: dict[str, float] = {}
    for span in timeline or []:
        ends[span["host"]] = max(ends.get(span["host"], 0.0), span["start_s"] + span["seconds"])
    return ends


def one_site_inventory(source: Path, target: Path) -> Path:
    """The lab inventory with only the home and AWS sites (S = 1): Azure's hosts stay bare."""
    document = yaml.safe_load(source.read_text())
    document["sites"] = [s for s in document["sites"] if s["name"] in ("home", "aws")]
    document["budgets"] = [b for b in document.get("budgets", []) if b.get("cloud") != "azure"]
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def floor_all(targets: list[tuple[str, Any]]) -> dict[str, Any]:
    """One verified connection and one exec per managed host, all in parallel (connecting included)."""
    t0 = time.monotonic()
    sessions, errors = connect_all(targets)
    t_connect = time.monotonic() - t0
    if errors:
        raise RuntimeError(f"floor: cannot connect: {errors}")
    users = {name: ssh.user for name, ssh in targets}
    try:
        with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
            results = list(
                pool.map(
                    lambda n: (n, sessions[n].run("true" if users[n] == "root" else "sudo -n true")),
                    sessions,
                )
            )
    finally:
        for session in sessions.values():
            session.close()
    failed = [n for n, r in results if not r.ok]
    if failed:
        raise RuntimeError(f"floor: failed on {failed}")
    return {"wall_s": time.monotonic() - t0, "connect_s": t_connect, "hosts": len(targets)}


def cli_check(inventory: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(uva.HYBRIDCTL), "check", "-i", str(inventory), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, COLUMNS="400"),
    )
    wall = time.monotonic() - t0
    try:
        probes = json.loads(proc.stdout)["probes"]
    except (ValueError, KeyError):
        probes = []
    failed = [
        f"{p['source']}->{p['target']}:{p['port'] or ''} {p['kind']}: {p['detail']}" for p in probes if not p["ok"]
    ]
    kinds = sorted({p["kind"] for p in probes if not p["ok"]})
    return {
        "wall_s": wall,
        "rc": proc.returncode,
        "probes": len(probes),
        "failed_count": len(failed),
        "failed_kinds": kinds,
        "failed": failed[:20],
    }


def one_cell(sites: int, clients: int, work: Path) -> dict[str, Any]:
    os.environ["HYBRIDCTL_STATE_DIR"] = tempfile.mkdtemp(prefix="state-", dir=work)
    extra_sites = max(0, sites - REFERENCE_SITES)
    t = time.monotonic()
    lab = manager.up(
        extra_clients=clients,
        extra_sites=extra_sites,
        lab_dir=LAB_DIR,
        aws_port=free_port(),
        azure_port=free_port(),
        timeout=300,
    )
    row: dict[str, Any] = {
        "sites": sites,
        "extra_clients": clients,
        "lab_up_s": time.monotonic() - t,
        "lab_timings": lab.timings,
        "lab_hosts": len(lab.topology.ssh_hosts),
        "load_before": os.getloadavg()[0],
    }
    try:
        inventory = lab.inventory if sites > 1 else one_site_inventory(lab.inventory, work / "one-site.yaml")
        loaded = load_inventory(inventory)
        desired = plan_loaded(loaded)
        lan = uva.lab_clients(loaded, desired)
        assert len(lan) == clients + 1, len(lan)
        managed = [(h.name, h.ssh) for h in desired.hosts if h.ssh is not None]
        row["managed_hosts"] = len(managed)
        row["bridges"] = sum(1 for h in desired.hosts if h.role == "vpn-bridge")
        assert row["bridges"] == sites, row["bridges"]

        def checked(result: dict[str, Any]) -> dict[str, Any]:
            problems = uva.check_clients(lan)
            if problems:
                raise RuntimeError(f"end state differs from the plan: {problems[:5]}")
            return result

        row["floor-all"] = floor_all(managed)
        # -o json: `up`'s own per-host timeline comes along (when this hybridctl records one).
        cold = checked(uva.cli_up(inventory, "-o", "json"))
        row["lab_memory"] = lab_memory_mb()  # SoftEther running everywhere
        warm = checked(uva.cli_up(inventory, "-o", "json"))
        row["hybridctl-up"] = {"cold": cold, "warm": warm}
        row["gateways"] = {
            "server": next(h.name for h in desired.hosts if h.role == "vpn-server"),
            "bridges": sorted(h.name for h in desired.hosts if h.role == "vpn-bridge"),
        }
        row["check"] = cli_check(inventory)
        for method, run in (
            ("floor", lambda: uva.floor(lan)),
            ("hybridctl-engine", lambda: uva.engine_clients(loaded, desired, lan)),
        ):
            uva.reset_clients(lan)
            first = checked(run())
            second = checked(run())
            row[method] = {"cold": first, "warm": second}
        row["load_after"] = os.getloadavg()[0]
    finally:
        manager.down(lab_dir=LAB_DIR)
    return row


# --------------------------------------------------------------------------- summary


def _gateways(up: dict[str, Any]) -> tuple[float | None, float | None]:
    """(VPN server done, last bridge done) from the engine's start."""
    done = up["gateways_done_s"]
    server = done.get("vpnserver")
    bridges = [t for name, t in done.items() if name != "vpnserver"]
    return server, (max(bridges) if bridges else None)


def _timeline_gateways(row: dict[str, Any], kind: str) -> tuple[float | None, float | None, float | None]:
    """(server done, last bridge done, last client done) in `up`'s own timeline, if it has one."""
    ends = host_ends(row["hybridctl-up"][kind].get("host_timeline"))
    if not ends:
        return None, None, None
    gateways = row["gateways"]
    bridges = [ends[b] for b in gateways["bridges"] if b in ends]
    clients = [t for host, t in ends.items() if host != gateways["server"] and host not in gateways["bridges"]]
    return ends.get(gateways["server"]), max(bridges, default=None), max(clients, default=None)


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_cell: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in rows:
        by_cell.setdefault((row["sites"], row["extra_clients"]), []).append(row)

    def med(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 2) if present else None

    table = []
    for (sites, clients), cell in by_cell.items():
        ups = [r["hybridctl-up"] for r in cell]
        table.append(
            {
                "sites": sites,
                "extra_clients": clients,
                "managed_hosts": cell[0]["managed_hosts"],
                "runs": len(cell),
                "lab_up_s": med([r["lab_up_s"] for r in cell]),
                "floor_all_s": med([r["floor-all"]["wall_s"] for r in cell]),
                "up_cold_s": med([u["cold"]["wall_s"] for u in ups]),
                "up_warm_s": med([u["warm"]["wall_s"] for u in ups]),
                "startup_s": med([u["cold"]["startup_s"] for u in ups]),
                "server_done_s": med([_gateways(u["cold"])[0] for u in ups]),
                "gateway_path_s": med([_gateways(u["cold"])[1] for u in ups]),
                "clients_done_s": med([u["cold"]["clients_done_s"] for u in ups]),
                "timeline_server_s": med([_timeline_gateways(r, "cold")[0] for r in cell]),
                "timeline_gateway_path_s": med([_timeline_gateways(r, "cold")[1] for r in cell]),
                "timeline_clients_s": med([_timeline_gateways(r, "cold")[2] for r in cell]),
                "lab_pss_mb": med([r["lab_memory"]["pss_mb"] for r in cell]),
                "lab_rss_mb": med([r["lab_memory"]["rss_mb"] for r in cell]),
                "check_s": med([r["check"]["wall_s"] for r in cell]),
                "check_ok": all(r["check"]["rc"] == 0 for r in cell),
                "floor_clients_cold_s": med([r["floor"]["cold"]["wall_s"] for r in cell]),
                "floor_clients_warm_s": med([r["floor"]["warm"]["wall_s"] for r in cell]),
                "engine_cold_s": med([r["hybridctl-engine"]["cold"]["wall_s"] for r in cell]),
                "engine_warm_s": med([r["hybridctl-engine"]["warm"]["wall_s"] for r in cell]),
                "load": med([r["load_before"] for r in cell] + [r["load_after"] for r in cell]),
            }
        )
    return table


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a is not None and b else ""


def _ms_per_client(seconds: float | None, clients: int) -> str:
    return f"{seconds * 1000 / (clients + 1):.0f}" if seconds is not None else ""


def markdown(table: list[dict[str, Any]]) -> str:
    head = (
        "| cloud sites | LAN clients | managed hosts | lab PSS MB | floor, all hosts s | `up` cold s | `up` warm s "
        "| done: VPN server / last bridge / last client s | last bridge, `up` timeline s "
        "| clients: floor cold / warm s | clients: engine cold / warm s | engine / floor cold, warm "
        "| engine cold ms per client | `check` s |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in table:
        lines.append(
            f"| {r['sites']} | {r['extra_clients'] + 1} | {r['managed_hosts']} | {r['lab_pss_mb']:.0f} "
            f"| {r['floor_all_s']} | {r['up_cold_s']} | {r['up_warm_s']} "
            f"| {r['server_done_s']} / {r['gateway_path_s']} / {r['clients_done_s']} "
            f"| {r['timeline_gateway_path_s'] if r['timeline_gateway_path_s'] is not None else ''} "
            f"| {r['floor_clients_cold_s']} / {r['floor_clients_warm_s']} "
            f"| {r['engine_cold_s']} / {r['engine_warm_s']} "
            f"| {_ratio(r['engine_cold_s'], r['floor_clients_cold_s'])}, "
            f"{_ratio(r['engine_warm_s'], r['floor_clients_warm_s'])} "
            f"| {_ms_per_client(r['engine_cold_s'], r['extra_clients'])} "
            f"| {r['check_s']}{'' if r['check_ok'] else ' (failed)'} |"
        )
    return head + "\n".join(lines) + "\n"


def cells(args: argparse.Namespace) -> list[tuple[int, int]]:
    out = [(s, args.default_clients) for s in args.sites] + [(args.default_sites, c) for c in args.clients]
    return list(dict.fromkeys(out))  # the shared cell (default sites, default clients) once


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, nargs="+", default=[1, 2, 4, 8], help="cloud sites S")
    parser.add_argument("--clients", type=int, nargs="+", default=[40, 100, 200], help="extra LAN clients C")
    parser.add_argument("--default-clients", type=int, default=40, help="extra clients of the sites rows")
    parser.add_argument("--default-sites", type=int, default=REFERENCE_SITES, help="cloud sites of the clients rows")
    parser.add_argument("--runs", type=int, default=1, help="fresh labs per cell (medians are reported)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--add", type=Path, action="append", default=[], help="also summarize the runs of an earlier --json output"
    )
    args = parser.parse_args()
    byte_compile_checkout()  # as an installed copy would run (bench/bytecode.py)
    for s in [*args.sites, args.default_sites]:
        if not 1 <= s <= REFERENCE_SITES + MAX_EXTRA_SITES:
            parser.error(f"cloud sites must be 1-{REFERENCE_SITES + MAX_EXTRA_SITES}, not {s}")
    manager.require_lab_machine()
    work = Path(tempfile.mkdtemp(prefix="hybridctl-bench-scale-"))
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    try:
        # Runs go round the cells (not cell by cell), so a burst of load elsewhere spreads over them.
        for _ in range(args.runs):
            for sites, clients in cells(args):
                cell_work = Path(tempfile.mkdtemp(prefix=f"s{sites}-c{clients}-", dir=work))
                try:
                    # The lock per lab, not for the whole run: other users of the machine's lab
                    # queue up between cells instead of waiting for every cell.
                    with dataplane.lab_lock(timeout=3600):
                        row = one_cell(sites, clients, cell_work)
                except Exception as exc:  # one failed cell is reported, the others still measured
                    failures.append({"sites": sites, "extra_clients": clients, "error": f"{type(exc).__name__}: {exc}"})
                    print(
                        f"sites {sites}, clients {clients + 1}: FAILED {failures[-1]['error'][:2000]}", file=sys.stderr
                    )
                    continue
                rows.append(row)
                print(
                    f"sites {sites}, clients {clients + 1}: lab up {row['lab_up_s']:.1f} s "
                    f"({row['lab_hosts']} hosts, PSS {row['lab_memory']['pss_mb']:.0f} MB), `up` cold "
                    f"{row['hybridctl-up']['cold']['wall_s']:.1f} s, gateways "
                    f"{row['hybridctl-up']['cold']['gateways_done_s']}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    earlier = [row for path in args.add for row in json.loads(path.read_text())["runs"]]
    table = summarize(earlier + rows)
    text = markdown(table) + "".join(
        f"\nFAILED: {f['sites']} cloud sites, {f['extra_clients'] + 1} LAN clients: {f['error'][:300]}\n"
        for f in failures
    )
    if args.json:
        document = {"table": table, "markdown": text, "runs": rows, "failures": failures}
        print(json.dumps(document, indent=1, default=str))
    else:
        print(text, end="")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
