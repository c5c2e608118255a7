"""Benchmark: `hybridctl up` on the lab with N extra LAN clients, against Ansible and the SSH floor.

For each N (default 10 and 40), on a fresh lab (``manager.up(extra_clients=N)`` under the
machine-wide lab lock, in LAB_DIR /var/lib/hybridctl-lab-bench-ansible, on free ports; taken
down afterwards), per repeat:

1. ``hybridctl up -i LAB_DIR/lab.yaml --yes`` as a command (subprocess), cold (bare lab: clouds,
   VPN server, bridges and the N+1 LAN clients) and warm (second run, nothing to do): wall
   time, and from the timestamps of its progress lines on stderr the start-up (Python, imports,
   planning, opening the backends), the engine (first to last progress line: read, apply,
   verify) and when the last LAN client was done.

   Then the same host work on the LAN clients only (``hl-home-c1`` + the N extras), each method
   cold (clients reset to bare first: ``ip route flush proto 177``, files removed) and warm
   (again, all in place). Every run's end state is checked on every client (files' sha256 and
   mode, routes with protocol 177) against what hybridctl.core.hostfiles renders:

2. floor: one SSH exec per host, all hosts in parallel (paramiko, ``ssh.connect_all``), one
   script each: write the overlay script and unit (base64, atomic rename), run the overlay
   script (``ip -4 route replace ... proto 177``), print the routes back. Connecting included;
3. hybridctl engine, clients only (in-process ``open_context`` / ``prepare`` / ``execute`` with
   only the SSH host backend, the plan restricted to the clients): read, then apply with the
   verification read at the end of each host's apply exec, as ``up`` runs them;
4. Ansible (ansible-core, ``bench/ansible/clients.yml``, ``--forks`` = number of hosts, the
   lab's ssh_config through ``ansible_ssh_common_args``, gather_facts off, ControlMaster as
   Ansible sets it, each run with fresh control sockets), pipelining off and on.

Prints a table (N, method, cold s, warm s, ratio to the floor), or everything with ``--json``.
Needs root, the lab packages and ``pip install -e '.[bench]'`` (ansible-core). docs/bench.md
has the results and how to read them.

    python bench/up_vs_ansible.py [--clients 10 40] [--repeat 1] [--json] [--no-ansible]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from bytecode import byte_compile_checkout

from hybridctl.backends import hosts as hosts_adapter
from hybridctl.backends.ssh import connect_all
from hybridctl.core.hostfiles import ROUTE_PROTO, HostFile, host_files
from hybridctl.core.inventory.load import LoadedInventory, load_inventory
from hybridctl.core.inventory.models import SshEndpoint
from hybridctl.core.planner.desired import DesiredState
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.features.engine import Options, execute, open_context, prepare
from hybridctl_lab import dataplane, manager
from hybridctl_lab.daemon import free_port

LAB_DIR = Path("/var/lib/hybridctl-lab-bench-ansible")
PLAYBOOK = Path(__file__).resolve().parent / "ansible" / "clients.yml"
BIN = Path(sys.executable).parent  # the real entry points, not a pyenv shim (~0.1 s per start)
HYBRIDCTL = BIN / "hybridctl"
ANSIBLE_PLAYBOOK = BIN / "ansible-playbook"
REMOTE_PYTHON = "/usr/bin/python3"
RECAP_RE = re.compile(r"^(?P<host>\S+)\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=0\s+failed=0", re.M)
PROGRESS_RE = re.compile(r"^· (?P<target>\S+): (?P<message>.*)$")
METHODS = ("floor", "hybridctl-engine", "ansible", "ansible-pipelining")
LABELS = {
    "floor": "floor: 1 SSH exec/host (paramiko)",
    "hybridctl-engine": "hybridctl engine, clients only",
    "ansible": "Ansible, pipelining off",
    "ansible-pipelining": "Ansible, pipelining on",
    "hybridctl-up": "`hybridctl up` CLI, whole lab",
    "hybridctl-up-engine": "  of which the engine",
}


# --------------------------------------------------------------------------- the clients


@dataclasses.dataclass(frozen=True)
class Client:
    name: str
    ssh: SshEndpoint
    files: tuple[HostFile, ...]
    prefixes: tuple[str, ...]
    via: str


def lab_clients(loaded: LoadedInventory, desired: DesiredState) -> list[Client]:
    """The managed LAN clients with the files hybridctl renders for them and their routes."""
    routes = {c.client: c for c in desired.clients if c.managed}
    out = []
    for host in desired.hosts:
        if host.role != "client" or host.ssh is None:
            continue
        client = routes[host.name]
        out.append(
            Client(
                host.name,
                host.ssh,
                tuple(host_files(host, desired.inventory)),
                tuple(str(p) for p in client.prefixes),
                str(client.via),
            )
        )
    return out


def _each(clients: list[Client], work: Any) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        return list(pool.map(work, clients))


def reset_clients(clients: list[Client]) -> None:
    """Back to bare: no routes with hybridctl's protocol, no overlay files (through nsenter, not SSH)."""
    paths = " ".join(shlex.quote(f.path) for f in clients[0].files)
    command = f"ip -4 route flush proto {ROUTE_PROTO}; rm -f {paths}"
    _each(clients, lambda c: dataplane.exec_in(c.name, command, lab_dir=LAB_DIR))


def check_clients(clients: list[Client]) -> list[str]:
    """What differs, on any client, from the planned end state (empty: every run must end so)."""

    def one(client: Client) -> list[str]:
        script = "".join(
            f"if [ -f {q} ]; then echo $(sha256sum < {q} | cut -d' ' -f1) $(stat -c %a {q}); else echo missing; fi\n"
            for q in (shlex.quote(f.path) for f in client.files)
        )
        script += f"ip -4 -j route show proto {ROUTE_PROTO}\n"
        lines = dataplane.exec_in(client.name, script, lab_dir=LAB_DIR).stdout.splitlines()
        problems = []
        for file, line in zip(client.files, lines, strict=False):
            if line != f"{file.sha256} {file.mode:o}":
                problems.append(f"{client.name}: {file.path}: {line[:20]}...")
        routes = json.loads(lines[len(client.files)] if len(lines) > len(client.files) else "[]")
        found = sorted((r["dst"], r.get("gateway")) for r in routes)
        wanted = sorted((p, client.via) for p in client.prefixes)
        if found != wanted:
            problems.append(f"{client.name}: routes {found} != {wanted}")
        return problems

    return [p for problems in _each(clients, one) for p in problems]


# --------------------------------------------------------------------------- 1. hybridctl up (CLI)


def cli_up(inventory: Path, *extra: str) -> dict[str, Any]:
    """``hybridctl up -i INVENTORY --yes`` as a user runs it; progress lines timestamped on arrival.

    ``extra``: more arguments; with ``-o json`` the document's per-host timeline is kept
    (``host_timeline``, the spans of `up -o json`), bench/scale.py uses it."""
    env = dict(os.environ, COLUMNS="400")  # rich must not wrap the progress lines we parse
    lines: list[tuple[float, str]] = []
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(HYBRIDCTL), "up", "-i", str(inventory), "--yes", *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None and proc.stdout is not None

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append((time.monotonic() - t0, line.rstrip("\n")))

    reader = threading.Thread(target=read_stderr)
    reader.start()
    stdout = proc.stdout.read()
    rc = proc.wait()
    wall = time.monotonic() - t0
    reader.join()
    progress = [(t, m.group("target"), m.group("message")) for t, line in lines if (m := PROGRESS_RE.match(line))]
    if rc != 0:
        tail = "\n".join(line for _, line in lines[-15:]) + stdout[-2000:]
        raise RuntimeError(f"hybridctl up failed (exit {rc}):\n{tail}")
    first = progress[0][0] if progress else wall
    last = progress[-1][0] if progress else wall
    # When each applied host was done, from the engine's start: clients, VPN server, bridges.
    done = {target: t - first for t, target, message in progress if message == "done"}
    clients = [t for target, t in done.items() if target.startswith("hl-home-c")]
    gateways = {target: round(t, 2) for target, t in done.items() if not target.startswith("hl-home-c")}
    kept = {"host_timeline": json.loads(stdout).get("timeline")} if "json" in extra else {}
    return kept | {
        "wall_s": wall,
        "startup_s": first,
        "engine_s": last - first,
        "clients_done_s": max(clients) if clients else None,
        "gateways_done_s": gateways,
        "applied_hosts": len(done),
        "timeline": [(round(t - first, 3), target, message) for t, target, message in progress],
    }


# --------------------------------------------------------------------------- 2. the floor


def floor_script(client: Client) -> str:
    parts = ["set -e\n"]
    for file in client.files:
        q = shlex.quote(file.path)
        b64 = base64.b64encode(file.content.encode()).decode()
        parts.append(
            f"mkdir -p {shlex.quote(os.path.dirname(file.path))}\n"
            f"echo {b64} | base64 -d > {q}.new\nchmod {file.mode:o} {q}.new\nmv -f {q}.new {q}\n"
        )
    parts.append(f"sh /etc/hybridctl/overlay.sh\nip -4 -j route show proto {ROUTE_PROTO}\n")
    return "".join(parts)


def floor(clients: list[Client]) -> dict[str, Any]:
    """One verified paramiko connection and ONE exec per host, all in parallel, as hybridctl connects."""
    scripts = {c.name: floor_script(c) for c in clients}
    # The lab's clients log in unprivileged (root only on hl-home-c1): the same one sudo per exec
    # that hybridctl's ssh.become uses, so the floor pays what the engine pays.
    shells = {c.name: "sh -s" if c.ssh.user == "root" else "sudo -n sh -s" for c in clients}
    t0 = time.monotonic()
    sessions, errors = connect_all([(c.name, c.ssh) for c in clients])
    t_connect = time.monotonic() - t0
    if errors:
        raise RuntimeError(f"floor: cannot connect: {errors}")
    try:
        with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
            results = list(pool.map(lambda n: (n, sessions[n].run(shells[n], stdin=scripts[n])), sessions))
    finally:
        for session in sessions.values():
            session.close()
    wall = time.monotonic() - t0
    failed = {n: r.stdout[-300:] + r.stderr[-300:] for n, r in results if not r.ok}
    if failed:
        raise RuntimeError(f"floor: scripts failed: {failed}")
    for _, result in results:
        json.loads(result.stdout)  # the routes came back as JSON
    return {"wall_s": wall, "connect_s": t_connect}


# --------------------------------------------------------------------------- 3. hybridctl engine, clients only


def engine_clients(loaded: LoadedInventory, desired: DesiredState, clients: list[Client]) -> dict[str, Any]:
    """hybridctl's engine and SSH host backend on the clients alone: what `up` does to them."""
    names = {c.name for c in clients}
    only = dataclasses.replace(desired, hosts=tuple(h for h in desired.hosts if h.name in names))
    t0 = time.monotonic()
    context = open_context(loaded, only, Options(), factories=[hosts_adapter.backend_for])
    try:
        t1 = time.monotonic()
        prepared = prepare(context)
        t_read = time.monotonic() - t1
        t_apply = 0.0
        remaining = 0
        if prepared.changes:
            # As `up` does: the apply, then the verification read (in each host's apply exec).
            t2 = time.monotonic()
            report = execute(context, prepared)
            t_apply = time.monotonic() - t2
            if report.failed:
                raise RuntimeError(f"hybridctl engine: failed: {[o.error for o in report.failed][:3]}")
            remaining = len(report.remaining)
        counter = context.backends[0].counter
        calls = {"reads": counter.reads, "mutations": counter.mutations}
    finally:
        context.close()
    wall = time.monotonic() - t0
    if prepared.actual.unreachable or remaining:
        raise RuntimeError(f"hybridctl engine: unreachable {prepared.actual.unreachable}, {remaining} remaining")
    return {
        "wall_s": wall,
        "changes": len(prepared.changes),
        "read_s": t_read,
        "apply_s": t_apply,
        "execs": calls,
    }


# --------------------------------------------------------------------------- 4. Ansible


def write_ansible_inventory(clients: list[Client], path: Path) -> None:
    ssh_config = clients[0].ssh.config_file
    files = {c.name: {f.path: f.content for f in c.files} for c in clients}
    document = {
        "clients": {
            "hosts": {
                c.name: {
                    "overlay_script": files[c.name]["/etc/hybridctl/overlay.sh"],
                    "overlay_unit": files[c.name]["/etc/systemd/system/hybridctl-overlay.service"],
                    "expected_prefixes": list(c.prefixes),
                    "ansible_user": c.ssh.user,
                    "ansible_become": c.ssh.user != "root",  # sudo, as hybridctl's ssh.become
                }
                for c in clients
            },
            "vars": {
                "ansible_python_interpreter": REMOTE_PYTHON,  # no interpreter discovery per host
                "ansible_ssh_common_args": f"-F {ssh_config}",
            },
        }
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def _close_masters(control_dir: Path) -> None:
    """Stop the ControlPersist masters of one run (ours, by their sockets), so no run reuses another's."""
    procs = [
        subprocess.Popen(
            ["ssh", "-F", "/dev/null", "-S", str(sock), "-O", "exit", "unused"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for sock in control_dir.iterdir()
    ]
    for proc in procs:
        proc.wait(timeout=30)


def ansible(clients: list[Client], work: Path, *, pipelining: bool, expect_changed: bool) -> dict[str, Any]:
    inventory = work / "inventory.yml"
    if not inventory.exists():
        write_ansible_inventory(clients, inventory)
    control_dir = Path(tempfile.mkdtemp(prefix="cp-", dir=work))
    env = dict(
        os.environ,
        ANSIBLE_PIPELINING=str(pipelining),
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir),
        ANSIBLE_STDOUT_CALLBACK="default",  # ansible-core ships no json callback (ansible.posix has it)
        ANSIBLE_LOCAL_TEMP=str(work / "tmp"),
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_NOCOLOR="1",
    )
    argv = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), "--forks", str(len(clients)), str(PLAYBOOK)]
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work, check=False)
    wall = time.monotonic() - t0
    _close_masters(control_dir)
    shutil.rmtree(control_dir, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ansible-playbook exit {proc.returncode}: {proc.stderr[-2000:]} {proc.stdout[-2000:]}")
    changed = {m.group("host"): int(m.group("changed")) for m in RECAP_RE.finditer(proc.stdout)}
    if set(changed) != {c.name for c in clients}:
        raise RuntimeError(f"ansible: stats for {sorted(changed)}")
    # Cold: both files and the routes changed on every host; warm: nothing changed anywhere.
    wrong = {h: n for h, n in changed.items() if n != (3 if expect_changed else 0)}
    if wrong:
        raise RuntimeError(f"ansible: unexpected changed counts {wrong}")
    return {"wall_s": wall, "changed_per_host": 3 if expect_changed else 0}


# --------------------------------------------------------------------------- one lab


def one_lab(n: int, work: Path, methods: tuple[str, ...] = METHODS) -> dict[str, Any]:
    """A fresh lab with N extra clients: every method cold and warm. Returns {method: {cold, warm}}."""
    os.environ["HYBRIDCTL_STATE_DIR"] = tempfile.mkdtemp(prefix="state-", dir=work)
    t = time.monotonic()
    lab = manager.up(extra_clients=n, lab_dir=LAB_DIR, aws_port=free_port(), azure_port=free_port())
    row: dict[str, Any] = {"lab_up_s": time.monotonic() - t, "load_before": os.getloadavg()[0]}
    try:
        loaded = load_inventory(lab.inventory)
        desired = plan_loaded(loaded)
        clients = lab_clients(loaded, desired)
        assert len(clients) == n + 1, [c.name for c in clients]
        row["hosts"] = len(clients)

        def checked(result: dict[str, Any]) -> dict[str, Any]:
            problems = check_clients(clients)
            if problems:
                raise RuntimeError(f"end state differs from the plan: {problems[:5]}")
            return result

        row["hybridctl-up"] = {"cold": checked(cli_up(lab.inventory)), "warm": checked(cli_up(lab.inventory))}
        runs = {
            "floor": lambda cold: floor(clients),
            "hybridctl-engine": lambda cold: engine_clients(loaded, desired, clients),
            "ansible": lambda cold: ansible(clients, work, pipelining=False, expect_changed=cold),
            "ansible-pipelining": lambda cold: ansible(clients, work, pipelining=True, expect_changed=cold),
        }
        for method, run in runs.items():
            if method not in methods:
                continue
            reset_clients(clients)
            cold = checked(run(True))
            warm = checked(run(False))
            row[method] = {"cold": cold, "warm": warm}
        if row["hybridctl-engine"]["warm"]["changes"]:
            raise RuntimeError("hybridctl engine: the warm run found changes")
        row["load_after"] = os.getloadavg()[0]
    finally:
        manager.down(lab_dir=LAB_DIR)
    return row


# --------------------------------------------------------------------------- summary and output


def _median(rows: list[dict[str, Any]], method: str, kind: str, key: str = "wall_s") -> float | None:
    values = [r[method][kind][key] for r in rows if r[method][kind].get(key) is not None]
    return statistics.median(values) if values else None


def summarize(results: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    table = []
    for n, rows in results.items():
        floor_cold, floor_warm = _median(rows, "floor", "cold"), _median(rows, "floor", "warm")
        assert floor_cold is not None and floor_warm is not None
        entries: list[tuple[str, str, str]] = [(m, m, "wall_s") for m in METHODS]
        entries += [("hybridctl-up", "hybridctl-up", "wall_s"), ("hybridctl-up-engine", "hybridctl-up", "engine_s")]
        for label, method, key in entries:
            if method not in rows[0]:
                continue  # not run (--no-ansible)
            cold, warm = _median(rows, method, "cold", key), _median(rows, method, "warm", key)
            table.append(
                {
                    "extra_clients": n,
                    "hosts": rows[0]["hosts"],
                    "method": label,
                    "cold_s": round(cold, 2) if cold is not None else None,
                    "warm_s": round(warm, 2) if warm is not None else None,
                    "cold_ratio": round(cold / floor_cold, 1) if cold is not None else None,
                    "warm_ratio": round(warm / floor_warm, 1) if warm is not None else None,
                    "runs": len(rows),
                }
            )
    return table


def print_table(table: list[dict[str, Any]], results: dict[int, list[dict[str, Any]]]) -> None:
    print(f"{'N':>3} {'hosts':>5}  {'method':36} {'cold s':>7} {'warm s':>7} {'cold/floor':>10} {'warm/floor':>10}")
    for row in table:
        print(
            f"{row['extra_clients']:>3} {row['hosts']:>5}  {LABELS[row['method']]:36} {row['cold_s']:>7} "
            f"{row['warm_s']:>7} {row['cold_ratio']:>9}x {row['warm_ratio']:>9}x"
        )
    for n, rows in results.items():
        for i, r in enumerate(rows, 1):
            up_cold, up_warm = r["hybridctl-up"]["cold"], r["hybridctl-up"]["warm"]
            eng, cold = r["hybridctl-engine"], r["hybridctl-engine"]["cold"]
            print(
                f"N={n} run {i}: lab up {r['lab_up_s']:.1f} s, load average {r['load_before']:.1f} -> "
                f"{r['load_after']:.1f}; floor connect {r['floor']['cold']['connect_s']:.2f} s"
            )
            print(
                f"  `hybridctl up` cold: start-up {up_cold['startup_s']:.2f} s + engine {up_cold['engine_s']:.2f} s;"
                f" done at (from the engine's start) clients {up_cold['clients_done_s'] or 0:.2f} s, "
                f"gateways {up_cold['gateways_done_s']}"
            )
            print(f"  `hybridctl up` warm: start-up {up_warm['startup_s']:.2f} s + engine {up_warm['engine_s']:.2f} s")
            print(
                f"  engine on the clients: cold read {cold['read_s']:.2f} + apply and verify {cold['apply_s']:.2f} s "
                f"({cold['changes']} changes, execs {cold['execs']}); "
                f"warm read {eng['warm']['read_s']:.2f} s"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 40], help="extra LAN clients (N), one lab each")
    parser.add_argument("--repeat", type=int, default=1, help="fresh labs per N (medians are reported)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-ansible", action="store_true", help="only the floor, the engine and `hybridctl up`")
    args = parser.parse_args()
    byte_compile_checkout()  # as an installed copy would run (bench/bytecode.py)
    methods = tuple(m for m in METHODS if not (args.no_ansible and m.startswith("ansible")))
    manager.require_lab_machine()
    if not args.no_ansible and not ANSIBLE_PLAYBOOK.exists():
        print(f"{ANSIBLE_PLAYBOOK} not found: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="hybridctl-bench-ansible-"))
    results: dict[int, list[dict[str, Any]]] = {}
    try:
        with dataplane.lab_lock(timeout=3600):
            for n in args.clients:
                results[n] = []
                for _ in range(args.repeat):
                    lab_work = Path(tempfile.mkdtemp(prefix=f"n{n}-", dir=work))
                    results[n].append(one_lab(n, lab_work, methods))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = summarize(results)
    if args.json:
        print(json.dumps({"table": table, "runs": {str(n): rows for n, rows in results.items()}}, indent=1))
    else:
        print_table(table, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
