"""Bad inventories: each gives its specific message (file, line, field, fix) and exit code 2."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.cli.main import main
from tests.conftest import REPO

Doc = dict[str, Any]
BASE: Doc = yaml.safe_load((REPO / "inventory" / "reference.yaml").read_text())


def site(doc: Doc, name: str) -> Doc:
    return next(s for s in doc["sites"] if s["name"] == name)


def setter(path: str, value: Any) -> Callable[[Doc], None]:
    """Mutation setting a dotted path; list items are addressed by their name: sites.aws.gateway.tap"""

    def mutate(doc: Doc) -> None:
        node: Any = doc
        parts = path.split(".")
        for part in parts[:-1]:
            if isinstance(node, list):
                node = next(item for item in node if item.get("name") == part)
            else:
                node = node[part]
        if value is DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value

    return mutate


DELETE = object()


def dup_site(doc: Doc) -> None:
    doc["sites"].append(copy.deepcopy(site(doc, "aws")))


def dup_network(doc: Doc) -> None:
    nets = site(doc, "aws")["networks"]
    nets.append({**nets[0], "cidr": "192.168.22.0/24"})


def two_servers(doc: Doc) -> None:
    site(doc, "aws")["gateway"]["role"] = "vpn-server"


def one_site(doc: Doc) -> None:
    doc["sites"] = doc["sites"][:1]


def client_named_like_gateway(doc: Doc) -> None:
    site(doc, "home")["clients"].append({"name": "aws-bridge", "address": "192.168.1.11"})


def client_on_cloud(doc: Doc) -> None:
    site(doc, "aws")["clients"] = [{"name": "c", "address": "192.168.20.11"}]


def aws_without_eni(doc: Doc) -> None:
    del site(doc, "aws")["gateway"]["eni"]


def azure_without_nic(doc: Doc) -> None:
    del site(doc, "azure")["gateway"]["nic"]


def no_azure_section(doc: Doc) -> None:
    del doc["azure"]


CASES: list[tuple[str, Callable[[Doc], None], str, str]] = [
    (
        "jump host with a space",
        setter("sites.aws.gateway.ssh.jump", "bastion one"),
        "sites[aws].gateway.ssh.jump",
        "is not an ssh_config alias, host[:port] or user@host[:port]",
    ),
    (
        "sudo password from an unset variable",
        setter("sites.aws.gateway.ssh.become_password", "env:HYBRIDCTL_TEST_UNSET_SUDO_PW"),
        "sites[aws].gateway.ssh.become_password",
        "environment variable HYBRIDCTL_TEST_UNSET_SUDO_PW is not set",
    ),
    (
        "generated sudo password",
        setter("sites.aws.gateway.ssh.become_password", "generate"),
        "sites[aws].gateway.ssh.become_password",
        "it must be a reference to it (hybridctl cannot generate it) (fix: use 'env:VARIABLE' or 'file:/path'",
    ),
    (
        "unknown become method",
        setter("sites.aws.gateway.ssh.become", "doas"),
        "sites[aws].gateway.ssh.become",
        "'sudo' or 'none'",
    ),
    (
        "malformed cidr",
        setter("sites.aws.networks.Hybrid-Subnet.cidr", "192.168.300.0/24"),
        "networks[Hybrid-Subnet].cidr",
        "is not a valid IPv4 CIDR",
    ),
    (
        "host bits set",
        setter("sites.aws.networks.Hybrid-Subnet.cidr", "192.168.20.5/24"),
        "networks[Hybrid-Subnet].cidr",
        "has host bits set",
    ),
    (
        "no prefix length",
        setter("sites.aws.networks.Hybrid-Subnet.cidr", "192.168.20.0"),
        "networks[Hybrid-Subnet].cidr",
        "has no prefix length",
    ),
    (
        "overlap between sites",
        setter("sites.azure.networks.Hybrid_Subnet.cidr", "192.168.20.0/25"),
        "cidr",
        "overlaps 192.168.20.0/24",
    ),
    (
        "overlap with transit",
        setter("sites.aws.networks.Hybrid-Subnet-Dammy.cidr", "192.168.10.0/25"),
        "networks[Hybrid-Subnet-Dammy].cidr",
        "overlaps the transit network",
    ),
    (
        "gateway outside subnet",
        setter("sites.aws.gateway.private_ip", "192.168.99.100"),
        "sites[aws].gateway.private_ip",
        "outside every network of site 'aws'",
    ),
    ("duplicate site", dup_site, "name", "site name 'aws' is used twice"),
    ("duplicate network", dup_network, "networks", "is used twice in site 'aws'"),
    (
        "dangling route table",
        setter("sites.aws.networks.Hybrid-Subnet.route_table", "Nope"),
        "networks[Hybrid-Subnet].route_table",
        "route table 'Nope' is not declared",
    ),
    (
        "tap over kernel limit",
        setter("sites.aws.gateway.tap", "averyverylongtap"),
        "sites[aws].gateway.tap",
        "over the kernel's 15-character limit",
    ),
    (
        "secret env missing",
        setter("sites.home.gateway.admin_password", "env:HYBRIDCTL_TEST_UNSET_VAR"),
        "sites[home].gateway.admin_password",
        "HYBRIDCTL_TEST_UNSET_VAR is not set",
    ),
    (
        "secret file missing",
        setter("sites.home.gateway.admin_password", "file:/nonexistent/hybridctl/pw"),
        "sites[home].gateway.admin_password",
        "does not exist",
    ),
    (
        "inline secret",
        setter("sites.home.gateway.admin_password", "hunter2"),
        "sites[home].gateway.admin_password",
        "secrets must be references",
    ),
    ("unknown field", setter("sites.aws.gatway", {"name": "x"}), "sites[aws].gatway", "unknown field"),
    ("two vpn servers", two_servers, "role", "2 sites have a vpn-server gateway"),
    ("no vpn server", setter("sites.home.gateway.role", "vpn-bridge"), "sites", "0 sites have a vpn-server"),
    (
        "switch address outside",
        setter("sites.home.gateway.switch_address", "192.168.7.249/24"),
        "sites[home].gateway.switch_address",
        "outside every network of site 'home'",
    ),
    (
        "switch address missing",
        setter("sites.home.gateway.switch_address", DELETE),
        "sites[home].gateway.switch_address",
        "needs the L3 switch's LAN address",
    ),
    (
        "server without public address",
        setter("sites.home.gateway.public_address", DELETE),
        "sites[home].gateway.public_address",
        "bridges need an address",
    ),
    (
        "server not listening on vpn port",
        setter("sites.home.gateway.listeners", [443]),
        "sites[home].gateway.listeners",
        "does not listen on it",
    ),
    (
        "pinned transit outside",
        setter("sites.aws.gateway.transit_address", "10.0.0.2"),
        "sites[aws].gateway.transit_address",
        "is not a host address of the transit network",
    ),
    (
        "pinned transit twice",
        setter("sites.azure.gateway.transit_address", "192.168.10.2"),
        "transit_address",
        "is pinned twice",
    ),
    ("route limit too small", setter("sites.aws.route_limit", 1), "sites[aws].route_limit", "over the limit of 1"),
    ("aws gateway without eni", aws_without_eni, "sites[aws].gateway.eni", "AWS gateways need their ENI"),
    ("azure gateway without nic", azure_without_nic, "sites[azure].gateway.nic", "Azure gateways need their NIC"),
    (
        "cloud subnet without table",
        setter("sites.aws.networks.Hybrid-Subnet.route_table", DELETE),
        "networks[Hybrid-Subnet].route_table",
        "names no route table",
    ),
    (
        "client outside site",
        setter("sites.home.clients.lan-client.address", "192.168.99.10"),
        "clients[lan-client].address",
        "outside every network of 'home'",
    ),
    (
        "service not host:port",
        setter("sites.aws.services", ["192.168.20.10"]),
        "sites[aws].services",
        "is not host:port",
    ),
    ("single site", one_site, "sites", "at least 2"),
    ("unknown site kind", setter("sites.aws.kind", "gcp"), "sites[aws].kind", "'onprem', 'aws' or 'azure'"),
    (
        "duplicate host name",
        client_named_like_gateway,
        "sites[aws].gateway.name",
        "host name 'aws-bridge' is used twice",
    ),
    (
        "lan hub equals transit hub",
        setter("sites.home.gateway.hub", "HYBRID"),
        "sites[home].gateway.hub",
        "LAN hub and transit hub are both 'HYBRID'",
    ),
    (
        "bad private ip",
        setter("sites.aws.gateway.private_ip", "192.168.20.999"),
        "sites[aws].gateway.private_ip",
        "not a valid IPv4 address",
    ),
    ("client on cloud site", client_on_cloud, "sites[aws].clients", "cloud hosts get overlay routes"),
    ("azure site without azure section", no_azure_section, "azure", "needs the azure section"),
    ("unsupported version", setter("version", 2), "version", "Input should be 1"),
    ("tap on server", setter("sites.home.gateway.tap", "x"), "sites[home].gateway.tap", "only to vpn-bridge"),
]


@pytest.mark.parametrize(("name", "mutate", "field", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_inventory(
    name: str,
    mutate: Callable[[Doc], None],
    field: str,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = copy.deepcopy(BASE)
    mutate(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(SystemExit) as exited:
        main(["plan", "-i", str(path)])
    assert exited.value.code == 2
    err = " ".join(capsys.readouterr().err.split())  # undo terminal wrapping
    assert message in err, err
    assert field in err, err
    assert "fix:" in err
    assert re.search(r"bad\.yaml:\d+: ", err), f"no line number in: {err}"


def test_yaml_syntax_error_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\nsites: [\n  - name: x\n")
    with pytest.raises(SystemExit) as exited:
        main(["plan", "-i", str(path)])
    assert exited.value.code == 2
    assert "broken.yaml" in capsys.readouterr().err


def test_every_problem_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = copy.deepcopy(BASE)
    setter("sites.aws.gateway.tap", "averyverylongtap")(doc)
    setter("sites.aws.gateway.private_ip", "192.168.99.100")(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(SystemExit):
        main(["plan", "-i", str(path), "-o", "json"])
    document = yaml.safe_load(capsys.readouterr().out)
    fields = {p["field"] for p in document["problems"]}
    assert {"sites[aws].gateway.tap", "sites[aws].gateway.private_ip"} <= fields
    assert all(p["line"] for p in document["problems"])


def _alias_bomb(levels: int = 9, fanout: int = 10) -> str:
    """The "billion laughs" document: each level's anchor aliases the previous one ``fanout`` times."""
    lines = ["version: 1", "name: bomb", f"lol0: &lol0 [{', '.join(['lol'] * fanout)}]"]
    for level in range(1, levels):
        lines.append(f"lol{level}: &lol{level} [{', '.join([f'*lol{level - 1}'] * fanout)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb())
    with pytest.raises(SystemExit) as exited:
        main(["plan", "-i", str(path)])
    assert exited.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert re.search(r"bomb\.yaml:\d+: \(yaml aliases\): YAML aliases expand the document past \d+ nodes", err), err
    assert "fix: write the repeated data out" in err


def test_alias_expansion_walk_stops_at_its_bound() -> None:
    from hybridctl.core.inventory.load import MAX_ALIAS_EXPANSION, distinct_nodes, expanded_nodes

    node = yaml.compose(_alias_bomb())
    assert node is not None
    written = distinct_nodes(node)
    assert written < 300  # nine short lines as written
    limit = written + MAX_ALIAS_EXPANSION
    visits, culprit = expanded_nodes(node, limit)
    assert visits == limit + 1  # stopped right past the bound, not after 10**9 nodes
    assert culprit is not None and isinstance(culprit, yaml.SequenceNode)


def test_a_few_legit_anchors_still_load(tmp_path: Path) -> None:
    from hybridctl.core.inventory.load import load_inventory

    text = (REPO / "inventory" / "reference.yaml").read_text()
    for old, first, again in (
        ("hub: BRIDGE", "hub: &bridge-hub BRIDGE", "hub: *bridge-hub"),
        ("tap: vpntap", "tap: &tap vpntap", "tap: *tap"),
    ):
        assert text.count(old) == 2
        text = text.replace(old, first, 1).replace(old, again, 1)
    aws_ssh = "{host: aws-bridge.example, user: admin}"
    text = text.replace(f"ssh: {aws_ssh}", f"ssh: &bridge-ssh {aws_ssh}")
    text = text.replace(
        "ssh: {host: azure-bridge.example, user: azureuser}", "ssh: {<<: *bridge-ssh, host: azure-bridge.example}"
    )
    assert text.count("*") == 3
    path = tmp_path / "anchors.yaml"
    path.write_text(text)
    gateways = {s.name: s.gateway for s in load_inventory(path).inventory.sites}
    assert gateways["azure"].hub == gateways["aws"].hub == "BRIDGE"
    assert gateways["azure"].tap == "vpntap"
    azure_ssh = gateways["azure"].ssh
    assert azure_ssh is not None and (azure_ssh.host, azure_ssh.user) == ("azure-bridge.example", "admin")
