"""Benchmark: plan time for N-site inventories (N = 10, 100, 1000).

Each site has two /24 networks numbered contiguously (10.B.C.0/24), one on-prem VPN server,
the rest bridges spread over on-prem, AWS and Azure. Reports CPU time (process_time) for
validation (load) and for planning alone, best of several runs.

    python bench/plan_scale.py [--sizes 10 100 1000] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from ipaddress import IPv4Network
from typing import Any

import yaml

from hybridctl.core.inventory.load import parse_inventory
from hybridctl.core.planner.plan import plan


def inventory(n_sites: int) -> dict[str, Any]:
    sites = []
    for index in range(n_sites):
        base = 2 * index
        cidrs = [IPv4Network(((10 << 24) + ((base + k) << 8), 24)) for k in range(2)]
        kind = "onprem" if index == 0 else ("aws", "azure", "onprem")[index % 3]
        gateway: dict[str, Any] = {
            "name": f"gw{index}",
            "ssh": {"host": f"gw{index}.example"},
            "private_ip": str(cidrs[0].network_address + 100),
        }
        site: dict[str, Any] = {"name": f"site{index}", "kind": kind, "gateway": gateway}
        if index == 0:
            gateway.update(
                role="vpn-server",
                public_address="203.0.113.1",
                lan_device="eth1",
                switch_address=f"{cidrs[0].network_address + 249}/24",
            )
        else:
            gateway["role"] = "vpn-bridge"
        if kind == "onprem":
            site["networks"] = [{"name": f"n{k}", "cidr": str(c)} for k, c in enumerate(cidrs)]
            site["networks"][1]["via"] = str(cidrs[0].network_address + 1)
        else:
            site["route_tables"] = [{"name": "rt"}]
            site["networks"] = [{"name": f"n{k}", "cidr": str(c), "route_table": "rt"} for k, c in enumerate(cidrs)]
            if kind == "aws":
                site.update(vpc="vpc", region="ap-northeast-1")
                gateway["eni"] = f"eni{index}"
            else:
                site.update(resource_group="rg", vnet="vnet")
                gateway["nic"] = f"nic{index}"
        sites.append(site)
    return {
        "version": 1,
        "name": f"bench{n_sites}",
        "transit": {"cidr": "172.16.0.0/16"},
        "azure": {"subscription_id": "sub"},
        "sites": sites,
    }


def best_of(repeat: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        text = yaml.safe_dump(inventory(size))
        loaded = parse_inventory(text, "bench.yaml")
        desired = plan(loaded.inventory)
        routes = sum(len(t.routes) for t in desired.route_tables) + sum(len(h.routes) for h in desired.hosts)
        rows.append(
            {
                "sites": size,
                "plan_cpu_s": round(best_of(args.repeat, lambda inv=loaded.inventory: plan(inv)), 4),
                "load_and_validate_cpu_s": round(
                    best_of(max(1, args.repeat // 2), lambda text=text: parse_inventory(text, "b")), 4
                ),
                "routes_planned": routes,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'sites':>6} {'plan (CPU s)':>13} {'load+validate (CPU s)':>22} {'routes planned':>15}")
    for row in rows:
        print(
            f"{row['sites']:>6} {row['plan_cpu_s']:>13.4f} {row['load_and_validate_cpu_s']:>22.4f} "
            f"{row['routes_planned']:>15}"
        )


if __name__ == "__main__":
    main()
