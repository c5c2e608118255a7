"""Benchmark: `hybridctl up` on the lab, cold (bare hosts) and warm (nothing to do).

Brings up its own lab (under the machine-wide lab lock, in LAB_DIR
/var/lib/hybridctl-lab-bench-up on free ports), then per round: `up` from bare hosts, a second
`up` (must find nothing to do), `check`; the lab is rebuilt between rounds. Prints per phase
(read, apply, verify) wall times, each host's step timeline (seconds since the start of the
run), and the call counters of every backend.

    python bench/hosts_up.py [--rounds 2] [--extra-clients N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from hybridctl.core.inventory.load import load_inventory
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl.features.checkrun import run_check
from hybridctl.features.engine import Options, execute, open_context, prepare
from hybridctl_lab import dataplane, manager
from hybridctl_lab.daemon import free_port

LAB_DIR = Path("/var/lib/hybridctl-lab-bench-up")


class Timeline:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.events: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()

    def step(self, target: str, message: str) -> None:
        with self._lock:
            self.events.append((time.monotonic() - self.t0, target, message))


def one_up(inventory: Path) -> dict[str, Any]:
    loaded = load_inventory(inventory)
    desired = plan_loaded(loaded)
    timeline = Timeline()
    context = open_context(loaded, desired, Options())
    try:
        t0 = time.monotonic()
        prepared = prepare(context, timeline)
        t_read = time.monotonic() - t0
        t1 = time.monotonic()
        report = execute(context, prepared, timeline, verify=False) if prepared.changes else None
        t_apply = time.monotonic() - t1
        t2 = time.monotonic()
        after = prepare(context, timeline)
        t_verify = time.monotonic() - t2
        counters = {b.name: {"reads": b.counter.reads, "mutations": b.counter.mutations} for b in context.backends}
    finally:
        context.close()
    return {
        "changes": len(prepared.changes),
        "failed": len(report.failed) if report else 0,
        "remaining": len(after.changes),
        "read_s": round(t_read, 2),
        "apply_s": round(t_apply, 2),
        "verify_s": round(t_verify, 2),
        "total_s": round(t_read + t_apply + t_verify, 2),
        "counters": counters,
        "timeline": [(round(t, 2), who, msg) for t, who, msg in timeline.events if who not in ("aws", "azure")],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--extra-clients", type=int, default=0, help="more managed LAN clients (hl-home-c100...)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rounds: list[dict[str, Any]] = []
    os.environ["HYBRIDCTL_STATE_DIR"] = tempfile.mkdtemp(prefix="hybridctl-bench-up-")
    with dataplane.lab_lock():
        for _ in range(args.rounds):
            lab = manager.up(
                extra_clients=args.extra_clients, lab_dir=LAB_DIR, aws_port=free_port(), azure_port=free_port()
            )
            try:
                cold = one_up(lab.inventory)
                warm = one_up(lab.inventory)
                loaded = load_inventory(lab.inventory)
                t0 = time.monotonic()
                check = run_check(loaded, plan_loaded(loaded), Options(), Timeline())
                rounds.append(
                    {"cold": cold, "warm": warm, "check_ok": check.ok, "check_s": round(time.monotonic() - t0, 2)}
                )
            finally:
                manager.down(lab_dir=LAB_DIR)
    if args.json:
        print(json.dumps(rounds, indent=1))
        return 0
    for i, r in enumerate(rounds, 1):
        for kind in ("cold", "warm"):
            x = r[kind]
            print(
                f"round {i} {kind}: {x['changes']} changes, read {x['read_s']} s, apply {x['apply_s']} s, "
                f"verify {x['verify_s']} s, total {x['total_s']} s; failed {x['failed']}, remaining {x['remaining']}; "
                f"calls {x['counters']}"
            )
        print(f"round {i} check: ok={r['check_ok']} in {r['check_s']} s")
        for t, target, msg in rounds[0]["cold"]["timeline"] if i == 1 else []:
            print(f"  {t:6.2f} {target}: {msg}")
    for kind in ("cold", "warm"):
        totals = [r[kind]["total_s"] for r in rounds]
        print(f"{kind}: median {statistics.median(totals)} s over {len(totals)} rounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
