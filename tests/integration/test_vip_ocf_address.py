"""The OCF agent's address management (VIP/32 on an interface), in a throwaway network namespace.

`unshare -n` gives the driver its own anonymous network namespace (nothing named, nothing in
the machine's namespace changes); the AWS emulator runs inside it on its loopback, so start,
monitor and stop run for real: ``ip addr add/del`` included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import require

pytestmark = pytest.mark.integration

DRIVER = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    import boto3, yaml
    from hybridctl_lab.aws_emulator import AwsEmulator
    from hybridctl.features.vip import ocf
    from hybridctl_lab import vip_scenario as scenario

    tmp = Path(sys.argv[1])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    out = {}
    with AwsEmulator("127.0.0.1", 0) as emu:
        ec2 = boto3.client("ec2", endpoint_url=emu.endpoint_url, region_name="ap-northeast-1",
                           aws_access_key_id="t", aws_secret_access_key="t")
        scenario.build(ec2)
        creds = tmp / "credentials"
        creds.write_text("[default]\\naws_access_key_id = t\\naws_secret_access_key = t\\n")
        doc = scenario.inventory_document(emu.endpoint_url, str(creds))
        doc["vips"][0]["nodes"][1]["interface"] = "lo"
        (tmp / "inv.yaml").write_text(yaml.safe_dump(doc))
        env = {"OCF_RESKEY_inventory": str(tmp / "inv.yaml"), "OCF_RESKEY_vip": "ha-vip",
               "OCF_RESKEY_node": "node2", "OCF_RESKEY_state_dir": str(tmp / "run"),
               "OCF_RESKEY_monitor_interval": "0"}

        def addrs():
            text = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], capture_output=True,
                                  text=True).stdout
            return sorted(line.split()[3] for line in text.splitlines())

        out["start"] = ocf.run_agent("start", env).code
        out["after_start"] = addrs()
        out["start_again"] = ocf.run_agent("start", env).code
        out["after_start_again"] = addrs()
        out["monitor"] = ocf.run_agent("monitor", env).code
        subprocess.run(["ip", "addr", "del", "20.0.0.100/32", "dev", "lo"], check=True)
        out["monitor_address_gone"] = ocf.run_agent("monitor", env).code
        out["stop"] = ocf.run_agent("stop", env).code
        out["after_stop"] = addrs()
        out["stop_again"] = ocf.run_agent("stop", env).code
        out["monitor_stopped"] = ocf.run_agent("monitor", env).code
        bad = dict(env, OCF_RESKEY_interface="no-such-if0")
        out["start_bad_interface"] = ocf.run_agent("start", bad).code
        noip = dict(env, OCF_RESKEY_state_dir=str(tmp / "run2"))
        ocf.run_agent("start", dict(env, OCF_RESKEY_node="node1"))  # node1 holds it now
        node1 = sorted({r.get("NetworkInterfaceId") for t in ec2.describe_route_tables()["RouteTables"]
                        for r in t["Routes"] if r.get("DestinationCidrBlock") == "20.0.0.100/32"})
        import os
        os.environ["PATH"] = "/nonexistent"
        out["start_without_ip"] = ocf.run_agent("start", noip).code
        out["routes_unchanged"] = node1 == sorted({r.get("NetworkInterfaceId") for t in ec2.describe_route_tables()[
            "RouteTables"] for r in t["Routes"] if r.get("DestinationCidrBlock") == "20.0.0.100/32"})
    print(json.dumps(out))
    """
)


def test_start_adds_and_stop_removes_the_vip_on_the_interface(tmp_path: Path) -> None:
    require(os.geteuid() == 0 and shutil.which("unshare") is not None, "root and unshare (util-linux)")
    require(shutil.which("ip") is not None, "iproute2")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, str(driver), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["start"] == 0
    assert "20.0.0.100/32" in out["after_start"] and "127.0.0.1/8" in out["after_start"]
    assert out["start_again"] == 0 and out["after_start_again"] == out["after_start"]
    assert out["monitor"] == 0
    assert out["monitor_address_gone"] == 1  # OCF_ERR_GENERIC: started here, but the address vanished
    assert out["stop"] == 0 and "20.0.0.100/32" not in out["after_stop"]
    assert out["stop_again"] == 0
    assert out["monitor_stopped"] == 7
    assert out["start_bad_interface"] == 2  # OCF_ERR_ARGS: this node's interface does not exist
    assert out["start_without_ip"] == 5  # OCF_ERR_INSTALLED: no iproute2
    assert out["routes_unchanged"]  # refused before any route was written
