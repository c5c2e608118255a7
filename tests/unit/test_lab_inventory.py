"""The generated lab inventory: committed copy up to date, valid, and a mirror of reference.yaml."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from hybridctl.core.inventory.load import LoadedInventory, load_inventory
from hybridctl.core.planner.loaded import plan_loaded
from hybridctl_lab import inventory, seed
from hybridctl_lab.hosts import DEFAULT_LAB_DIR
from hybridctl_lab.topology import build_topology
from tests.conftest import REPO
from tests.support.lab_inventory import write_lab_inventory

COMMITTED = REPO / "inventory" / "lab.yaml"
REFERENCE = REPO / "inventory" / "reference.yaml"


def generated(tmp_path: Path, extra_clients: int = 0, aws_port: int = 5511, azure_port: int = 5512) -> LoadedInventory:
    """Write the inventory for a lab dir under tmp_path, with the secret file it refers to."""
    return load_inventory(write_lab_inventory(tmp_path, extra_clients, aws_port=aws_port, azure_port=azure_port))


def by_layer(loaded: LoadedInventory) -> dict[str, set[tuple[Any, ...]]]:
    out: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for r in plan_loaded(loaded).resources():
        out[r.layer].add((r.key, r.attrs))
    return out


def test_committed_inventory_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == inventory.render(build_topology(0), DEFAULT_LAB_DIR), (
        "inventory/lab.yaml is stale: regenerate it with "
        "python -c 'from hybridctl_lab import inventory; from hybridctl_lab.topology import build_topology; "
        'print(inventory.render(build_topology(0)), end="")\' > inventory/lab.yaml'
    )


def test_generated_inventory_validates_and_plans(tmp_path: Path) -> None:
    loaded = generated(tmp_path, extra_clients=3)
    inv = loaded.inventory
    assert inv.aws is not None and inv.azure is not None
    assert inv.aws.endpoint_url == "http://127.0.0.1:5511"
    assert inv.aws.credentials_file == str(tmp_path / "aws" / "credentials")
    assert inv.azure.arm_endpoint == inv.azure.authority == "https://127.0.0.1:5512"
    assert inv.azure.ca_bundle == str(tmp_path / "azure" / "tls" / "ca.pem")
    assert inv.azure.client_secret == f"file:{tmp_path / 'azure' / 'client_secret'}"
    assert (inv.azure.subscription_id, inv.azure.tenant_id, inv.azure.client_id) == (
        seed.AZURE_SUBSCRIPTION_ID,
        seed.AZURE_TENANT_ID,
        seed.AZURE_CLIENT_ID,
    )
    assert inv.server_site.gateway.public_address == "203.0.113.10"
    assert [c.name for c in inv.site("home").clients] == ["hl-home-c1", "hl-home-c100", "hl-home-c101", "hl-home-c102"]
    assert plan_loaded(loaded).resources()


def test_ports_and_lab_dir_are_parameters(tmp_path: Path) -> None:
    inv = generated(tmp_path, aws_port=6011, azure_port=6012).inventory
    assert inv.aws is not None and inv.azure is not None
    assert inv.aws.endpoint_url == "http://127.0.0.1:6011"
    assert inv.azure.arm_endpoint == "https://127.0.0.1:6012"
    assert inv.secrets.store == str(tmp_path / "secrets.json")


USERS = {"aws": "admin", "azure": "azureuser", "onprem": "hybrid"}


def test_every_host_is_reached_through_the_lab_ssh_config(tmp_path: Path) -> None:
    topo = build_topology(1)
    inv = generated(tmp_path, extra_clients=1).inventory
    endpoints = []
    for site in inv.sites:
        endpoints.append(site.gateway.ssh)
        endpoints += [c.ssh for c in site.clients if c.ssh is not None]
        endpoints += [t.ssh for t in site.test_hosts if t.ssh is not None]
    aliases = {h.name for h in topo.ssh_hosts}
    for ssh in endpoints:
        assert ssh.host in aliases
        assert ssh.config_file == str(tmp_path / "ssh_config")
        assert ssh.known_hosts == str(tmp_path / "known_hosts")
        assert ssh.key == str(tmp_path / "id_ed25519")
        # Unprivileged with sudo (become: default), except the one home client logging in as root.
        assert ssh.user == ("root" if ssh.host == "hl-home-c1" else USERS[topo.site(topo.host(ssh.host).site).kind])
        assert ssh.become is None
    # Test hosts: every cloud test host and the home client, at their topology addresses.
    probes = {(t.ssh.host if t.ssh else None, str(t.address)) for s in inv.sites for t in s.test_hosts}
    assert probes == {(h.name, str(h.primary_ip)) for h in topo.test_hosts}
    gateways = {s.name: s.gateway.ssh.host for s in inv.sites}
    assert gateways == {"home": "hl-home-srv", "aws": "hl-aws-br", "azure": "hl-az-br"}


def test_mirrors_the_reference_inventory(tmp_path: Path) -> None:
    ref = load_inventory(REFERENCE)
    lab = generated(tmp_path)
    r, l_ = ref.inventory, lab.inventory
    assert r.transit == l_.transit
    assert [(s.name, s.kind) for s in r.sites] == [(s.name, s.kind) for s in l_.sites]
    for rs, ls in zip(r.sites, l_.sites, strict=True):
        assert rs.networks == ls.networks
        assert rs.route_tables == ls.route_tables
        assert (rs.vpc, rs.resource_group, rs.vnet, rs.location) == (ls.vpc, ls.resource_group, ls.vnet, ls.location)
        keep = {"name", "role", "private_ip", "eni", "instance", "nic", "security_group", "hub", "lan_device",
                "switch_address", "tap", "transit_address", "listeners", "vpn_port", "admin_password"}  # fmt: skip
        assert rs.gateway.model_dump(include=keep) == ls.gateway.model_dump(include=keep)
        assert [u.name for u in rs.gateway.users] == [u.name for u in ls.gateway.users]
    # So the planner derives the same overlay: cloud routes, associations, flags, host config.
    ref_plan, lab_plan = by_layer(ref), by_layer(lab)
    for layer in ("cloud-route", "cloud-association", "flag", "host-address", "host-package", "host-service"):
        assert ref_plan[layer] == lab_plan[layer], layer
    gateways = {s.gateway.name for s in r.sites}
    for layer in ("host-route",):
        assert {x for x in ref_plan[layer] if x[0][0] in gateways} == {
            x for x in lab_plan[layer] if x[0][0] in gateways
        }
    # SoftEther: identical but for the address the bridges dial.
    server = str(r.server_site.gateway.public_address)
    lab_server = str(l_.server_site.gateway.public_address)
    assert {repr(x).replace(lab_server, server) for x in lab_plan["softether"]} == {
        repr(x) for x in ref_plan["softether"]
    }


@pytest.mark.parametrize("extra", [0, 5])
def test_render_is_deterministic_and_secret_free(tmp_path: Path, extra: int) -> None:
    topo = build_topology(extra)
    text = inventory.render(topo, tmp_path)
    assert text == inventory.render(topo, tmp_path)
    (tmp_path / "azure").mkdir()
    secret = "s3cr3t-value-never-in-the-inventory"
    (tmp_path / seed.AZURE_CLIENT_SECRET).write_text(secret)
    assert secret not in text and seed.AWS_SECRET_ACCESS_KEY not in text
    assert f"LAB_DIR={tmp_path}" in text


def test_lab_declares_the_reference_budget_guard(tmp_path: Path) -> None:
    """Reference section 3: Azure 1,000 / 4,000 JPY at resource-group scope; AWS in USD, actual and forecast."""
    budgets = {b.clouds: b for b in generated(tmp_path).inventory.budgets}
    assert set(budgets) == {("azure",), ("aws",)}
    azure, aws = budgets[("azure",)], budgets[("aws",)]
    assert (azure.currency, azure.scope, azure.resource_group) == ("JPY", "resource-group:hybrid-rg", "hybrid-rg")
    limits = {(a.type, a.threshold * azure.amount / 100) for a in azure.resolved_alerts()}
    assert limits == {("actual", 1000), ("actual", 4000), ("forecast", 4000)}
    assert aws.currency == "USD"
    assert {a.type for a in aws.resolved_alerts()} == {"actual", "forecast"}
    assert all(a.unit == "percent" for a in aws.resolved_alerts())
    assert aws.emails and azure.emails


def test_host_names_map_every_inventory_name_to_its_lab_host() -> None:
    from hybridctl_lab.dataplane import lab_host

    topology = build_topology(0)
    names = inventory.host_names(topology)
    assert {k: names[k] for k in ("vpnserver", "aws-bridge", "azure-bridge", "aws-h20", "node1", "node2")} == {
        "vpnserver": "hl-home-srv",
        "aws-bridge": "hl-aws-br",
        "azure-bridge": "hl-az-br",
        "aws-h20": "hl-aws-h20",
        "node1": "hl-vip-n1",
        "node2": "hl-vip-n2",
    }
    assert set(names.values()) <= {h.name for h in topology.hosts}
    # Every gateway, client and test host of the committed inventory resolves to its ssh alias.
    import yaml

    doc = yaml.safe_load(COMMITTED.read_text())
    for site in doc["sites"]:
        for item in (site["gateway"], *site.get("clients", []), *site.get("test_hosts", [])):
            assert lab_host(item["name"]) == item["ssh"]["host"], item["name"]
    assert lab_host("hl-aws-h20") == "hl-aws-h20"  # namespaces as they are
    assert lab_host("hl-fab-aws") == "hl-fab-aws"
    assert lab_host("no-such-host") == "no-such-host"  # exec_argv then says it is unknown
