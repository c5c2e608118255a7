"""Benchmark: time to repoint a route-table VIP in 1, 10 and 50 route tables.

Two methods in the same run, against the lab's AWS emulator (moto + extensions):

- ``parallel``: ``hybridctl.features.vip.ops.move`` (concurrent reads, one ReplaceRoute per table all at
  once, one filtered read-back);
- ``sequential``: what vendors' failover scripts do: one ReplaceRoute per table, one second
  apart, then the same read-back.

The emulator answers in a few milliseconds and serves one request at a time. A real EC2 API
call takes a network round trip plus service time, so every request goes through a small
proxy that adds ``--latency`` seconds (default 0.1 s) before forwarding it; concurrent
requests wait concurrently, as they would on the wire. ``--latency 0`` measures as is.

Reported per (method, tables): ``total`` = the whole operation (what a cluster manager waits
for), ``switch`` = first write sent -> last write acknowledged (while tables disagree, part of
the traffic still goes to the old node), ``verified`` = first write -> read-back confirmed.
Median of ``--repeat`` runs.

    python bench/vip_failover.py [--tables 1 10 50] [--latency 0.1] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import tempfile
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
from background_http import BackgroundServer

from hybridctl.core.inventory.vips import Vip
from hybridctl.features.vip import apply, ops, plan, read, results
from hybridctl.features.vip.aws import AwsApi, AwsConfig
from hybridctl_lab import vip_scenario as scenario
from hybridctl_lab.aws_emulator import AwsEmulator

REGION = "ap-northeast-1"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class LatencyProxy(BackgroundServer):
    """HTTP forwarder on loopback that delays every request by ``latency`` seconds.

    ``sock``: listen on that socket instead (bench/vip_agents.py passes one created inside a
    lab node's network namespace; forwarding still connects from the machine's)."""

    def __init__(self, target_port: int, latency: float, sock: socket.socket | None = None) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                time.sleep(proxy.latency)
                upstream = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.latency = latency
        super().__init__(Handler, sock)

    def __enter__(self) -> LatencyProxy:
        super().__enter__()
        return self


def prepare(emu: AwsEmulator, tables: int) -> tuple[Vip, scenario.VipVpc]:
    """Section 4 with exactly ``tables`` tables holding the VIP (node1 active), built directly."""
    emu.reset()
    ec2 = boto3.client(
        "ec2",
        endpoint_url=emu.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    built = scenario.build(ec2, extra_tables=max(0, tables - 3))
    names = ["Main", "Route-A", "Route-C", *[f"Route-X{i:03d}" for i in range(max(0, tables - 3))]][:tables]
    for name in set(built.tables) - set(names):
        ec2.delete_route(RouteTableId=built.tables[name], DestinationCidrBlock=f"{scenario.VIP}/32")
    vip = Vip.model_validate(
        {
            "name": "bench",
            "address": scenario.VIP,
            "vpc": "VIP-VPC",
            "route_tables": names,
            "nodes": [{"name": "node1", "eni": "node1-eni"}, {"name": "node2", "eni": "node2-eni"}],
        }
    )
    return vip, built


def parallel(api: AwsApi, vip: Vip) -> dict[str, float]:
    started = time.monotonic()
    result = ops.move(api, vip, "node2")
    total = time.monotonic() - started
    assert result.ok and len(result.tables) == len(vip.route_tables)
    # write outcomes run concurrently: the switch window is the slowest write
    return {"total": total, "switch": max(t.seconds for t in result.tables), "verified": result.write_seconds}


def sequential(api: AwsApi, vip: Vip, gap: float) -> dict[str, float]:
    started = time.monotonic()
    ctx = read.read_context(api, vip)
    actions = plan.plan_repoint(ctx, ctx.nodes["node2"].id)
    first = time.monotonic()
    for index, action in enumerate(actions):
        if index:
            time.sleep(gap)
        api.call(
            "ec2",
            "replace_route",
            ctx.region,
            RouteTableId=action.table_id,
            DestinationCidrBlock=action.destination,
            **action.target,
        )
    switched = time.monotonic()
    outcomes = [results.TableOutcome(a.table_id, a.label, a.op, a.destination, a.before, ok=True) for a in actions]
    apply.verify(api, ctx, outcomes, actions)
    assert all(o.ok for o in outcomes) and len(outcomes) == len(vip.route_tables)
    done = time.monotonic()
    return {"total": done - started, "switch": switched - first, "verified": done - first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every API call")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between sequential writes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    with (
        AwsEmulator("127.0.0.1", 0) as emu,
        LatencyProxy(emu.port, args.latency) as proxy,
        tempfile.TemporaryDirectory() as tmp,
    ):
        credentials = Path(tmp) / "credentials"
        credentials.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
        config = AwsConfig(region=REGION, endpoint_url=proxy.url, credentials_file=str(credentials))
        for tables in args.tables:
            for method in ("parallel", "sequential"):
                runs = []
                for _ in range(args.repeat):
                    vip, _built = prepare(emu, tables)
                    with AwsApi(config) as api:
                        api.client("ec2")  # client built outside the timing, as in a resident agent
                        if method == "parallel":
                            runs.append(parallel(api, vip))
                        else:
                            runs.append(sequential(api, vip, args.gap))
                row: dict[str, Any] = {"method": method, "tables": tables}
                row.update({k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]})
                rows.append(row)
    if args.json:
        print(json.dumps({"latency": args.latency, "gap": args.gap, "repeat": args.repeat, "rows": rows}, indent=2))
        return
    print(f"latency per API call {args.latency}s, sequential gap {args.gap}s, median of {args.repeat}")
    print("| tables | method | total s | switch s | verified s |")
    print("|---:|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['tables']} | {row['method']} | {row['total']} | {row['switch']} | {row['verified']} |")


if __name__ == "__main__":
    main()
