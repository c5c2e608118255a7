"""Debian's ``ocf-tester`` (package resource-agents) against ``hybridctl vip agent`` on a VIP node.

ocf-tester is the cluster stack's own compliance check for resource agents: meta-data valid
against ra-api-1.dtd (and readable by ``nobody``), validate-all, monitor of a stopped resource
(7, also as a probe), start, monitor / probe of a started one (0), start and stop twice
(idempotent), unimplemented optional actions (3). It runs inside the lab's VIP node
``hl-vip-n2`` (reference section 4, ``VIP-VPC``) on the wrapper ``hybridctl vip install-agent``
writes, exactly as docs/vip.md installs it for Pacemaker. The agent reaches the lab's AWS
emulator the way the VIP scenario's inventory says (``aws.endpoint_url`` +
``aws.credentials_file``): a relay port on the node's loopback (:mod:`hybridctl_lab.nsrelay`),
since the emulator listens on the machine's loopback, not the node's. ``monitor_interval=0``
makes every monitor read the route tables, so each monitor ocf-tester runs is a real API check.

ocf-tester only reports; the test asserts its exit code, its "passed all tests" line, no
failed check line, and what the agent did to the VPC and the node. The second test has the
agent fail a start (source/dest check on) and checks ocf-tester says so and nothing moved.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from hybridctl_lab import dataplane, manager, nsrelay
from hybridctl_lab import vip_scenario as scenario
from tests.conftest import require, require_lab_prereqs, require_visible_in_lab_hosts
from tests.e2e.test_lab import ec2_client, running_lab
from tests.support.vip_lab import lab_aws_section, vip_targets, vip_vpc_document

pytestmark = [pytest.mark.lab]

OCF_LAB_DIR = Path("/var/lib/hybridctl-lab-test-ocf")
NODE1, NODE2 = "hl-vip-n1", "hl-vip-n2"
# In the node's own /run (a private tmpfs per lab host): nothing on the machine's side.
NODE_DIR = "/run/hybridctl-ocf-test"
AGENT = f"{NODE_DIR}/resource.d/hybridctl/vip"
PASSED = f"{AGENT} passed all tests"


@pytest.fixture(scope="module")
def lab() -> Iterator[manager.LabUpResult]:
    require_lab_prereqs()
    require_visible_in_lab_hosts()  # the nodes run this venv's hybridctl
    require(shutil.which("ocf-tester") is not None, "ocf-tester (apt-get install resource-agents)")
    require(Path("/usr/share/resource-agents/ra-api-1.dtd").is_file(), "ra-api-1.dtd (resource-agents)")
    require(shutil.which("xmllint") is not None, "xmllint, ocf-tester's meta-data check (libxml2-utils)")
    with running_lab(OCF_LAB_DIR) as result:
        yield result


@pytest.fixture(scope="module")
def ec2(lab: manager.LabUpResult) -> Any:
    return ec2_client(lab)


@dataclass(frozen=True)
class Node:
    host: str
    name: str  # the node's name in the VIP's inventory entry


@pytest.fixture(scope="module")
def nodes(lab: manager.LabUpResult) -> Iterator[dict[str, Node]]:
    """On each node: a relay to the emulator, the inventory, the credentials and the wrapper."""
    port = urlsplit(lab.aws_url).port
    assert port is not None
    lab_aws = lab_aws_section(lab)
    credentials = Path(lab_aws["credentials_file"]).read_text()
    out: dict[str, Node] = {}
    relays = []
    try:
        for host, name in ((NODE1, "node1"), (NODE2, "node2")):
            relay = nsrelay.Relay(nsrelay.host_netns(host, lab_dir=OCF_LAB_DIR), ("127.0.0.1", port))
            relays.append(relay.__enter__())
            doc = vip_vpc_document(
                {"region": lab_aws["region"], "endpoint_url": relay.url, "credentials_file": f"{NODE_DIR}/credentials"}
            )
            _in(host, f"mkdir -p {NODE_DIR} && umask 077 && cat > {NODE_DIR}/credentials", credentials)
            _in(host, f"cat > {NODE_DIR}/inventory.yaml", yaml.safe_dump(doc, sort_keys=False))
            # The one documented way to install the agent (docs/vip.md), run on the node.
            hybridctl = str(Path(sys.executable).parent / "hybridctl")
            installed = _in(host, [hybridctl, "vip", "install-agent", "--dir", str(Path(AGENT).parent)])
            assert AGENT in installed.stdout
            out[name] = Node(host, name)
        yield out
    finally:
        for relay in relays:
            relay.__exit__(None, None, None)
        for host in (NODE1, NODE2):
            _in(host, f"ip addr del {scenario.VIP}/32 dev lo; rm -rf {NODE_DIR} /run/resource-agents", check=False)


def _in(host: str, command: list[str] | str, input: str | None = None, check: bool = True) -> Any:
    return dataplane.exec_in(host, command, lab_dir=OCF_LAB_DIR, input=input, check=check)


def _nobody_blocker() -> Path | None:
    """The directory on the interpreter's path that ``nobody`` cannot enter, if any.

    ocf-tester runs meta-data as ``nobody``. A Python under /root (pyenv, as on this CI image)
    is out of its reach: the wrapper would fail for any non-root user, Pacemaker's included.
    That is the machine's layout, not the agent's; the test makes that one directory
    traversable in a private mount namespace of ocf-tester's own (see :func:`_ocf_tester`).
    """
    blocked = [
        d
        for d in Path(os.path.realpath(sys.executable)).parents
        if d != Path("/") and not d.stat().st_mode & stat.S_IXOTH
    ]
    assert len(blocked) <= 1, f"nobody cannot reach the interpreter through {blocked}"
    return blocked[0] if blocked else None


def _ocf_tester(node: Node, **params: str) -> subprocess.CompletedProcess[str]:
    options = {"inventory": f"{NODE_DIR}/inventory.yaml", "vip": "ha-vip", "node": node.name, **params}
    argv = ["ocf-tester", "-n", "ha-vip"]
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    argv.append(AGENT)
    blocker = _nobody_blocker()
    if blocker is not None:
        real = Path(os.path.realpath(sys.executable))
        child = blocker / real.relative_to(blocker).parts[0]
        keep = f"{NODE_DIR}/keep"
        script = (
            f"mkdir -p {keep} && mount --bind {child} {keep} && mount -t tmpfs -o mode=0755 tmpfs {blocker} "
            f'&& mkdir {child} && mount --move {keep} {child} && exec "$@"'
        )
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv]
    host_argv = dataplane.exec_argv(node.host, lab_dir=OCF_LAB_DIR)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run([*host_argv, *argv], capture_output=True, text=True, timeout=900, env=env)


def _has_vip(host: str) -> bool:
    shown = _in(host, ["ip", "-4", "-o", "addr", "show", "dev", "lo"]).stdout
    return f"{scenario.VIP}/32" in shown


def test_ocf_tester_passes_on_a_vip_node(nodes: dict[str, Node], ec2: Any, capsys: Any) -> None:
    assert vip_targets(ec2) == {"Main": "node1-eni", "Route-A": "node1-eni", "Route-C": "node1-eni"}
    result = _ocf_tester(nodes["node2"], monitor_interval="0")
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert PASSED in result.stdout.splitlines(), report
    assert not [line for line in result.stdout.splitlines() if line.startswith("* rc=")], report
    # start really moved every table here; the last stop removed the address and the state.
    assert vip_targets(ec2) == {"Main": "node2-eni", "Route-A": "node2-eni", "Route-C": "node2-eni"}
    assert not _has_vip(NODE2)
    assert _in(NODE2, "ls /run/resource-agents", check=False).stdout.strip() == ""
    with capsys.disabled():
        print(f"\nocf-tester on {NODE2}:\n{result.stdout}")


def test_ocf_tester_reports_a_start_this_node_cannot_do(nodes: dict[str, Node], ec2: Any) -> None:
    before = vip_targets(ec2)
    eni = ec2.describe_network_interfaces(Filters=[{"Name": "tag:Name", "Values": ["node1-eni"]}])["NetworkInterfaces"][
        0
    ]["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": True})
    try:
        result = _ocf_tester(nodes["node1"], monitor_interval="0")
    finally:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert PASSED not in result.stdout, report
    # OCF_ERR_ARGS: this node cannot hold the VIP (Pacemaker bans the node, not the resource).
    assert "* rc=2: Start failed." in result.stdout, report
    assert "source-dest-check" in result.stdout, report
    assert vip_targets(ec2) == before  # refused before any write
    assert not _has_vip(NODE1)
