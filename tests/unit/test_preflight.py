"""Pure parts of the overlay doctor: Azure permission blocks, host command output, route quotas."""

from __future__ import annotations

import pytest

from hybridctl.core.inventory.load import parse_inventory
from hybridctl.features.preflight import AZURE_ACTIONS, azure_denied, host_checks, quota_check
from hybridctl.features.vip.checks import Status
from tests.conftest import REPO

# What ARM returns for built-in roles on a resource group (GET .../Microsoft.Authorization/permissions).
OWNER = [{"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []}]
READER = [{"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}]
NETWORK_CONTRIBUTOR = [
    {
        "actions": [
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Network/*",
            "Microsoft.ResourceHealth/availabilityStatuses/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
        ],
        "notActions": [],
        "dataActions": [],
        "notDataActions": [],
    }
]


def test_owner_and_network_contributor_allow_everything_up_does() -> None:
    assert azure_denied(OWNER) == [] and azure_denied(NETWORK_CONTRIBUTOR) == []


def test_reader_may_only_read() -> None:
    denied = azure_denied(READER)
    assert denied == [a for a in AZURE_ACTIONS if not a.endswith("/read")]


def test_not_actions_subtract_and_case_does_not_matter() -> None:
    blocks = [{"actions": ["microsoft.network/*"], "notActions": ["Microsoft.Network/networkInterfaces/write"]}]
    assert azure_denied(blocks) == ["Microsoft.Network/networkInterfaces/write"]
    # Another block (another role assignment) may grant what one block took away.
    assert azure_denied([*blocks, {"actions": ["Microsoft.Network/networkInterfaces/*"]}]) == []


DEBIAN = "SUDO ok\nOS debian 12 Debian GNU/Linux 12 (bookworm)\nPKG softether-vpnbridge 4.41-9782~beta-1\nTCP ok\n"


def test_a_good_bridge_passes_every_check() -> None:
    checks = host_checks(DEBIAN, "host b", "vpn-bridge", "softether-vpnbridge", "vpn.example", 5555)
    assert [(c.id, c.status) for c in checks] == [
        ("sudo", Status.ok),
        ("distribution", Status.ok),
        ("package", Status.ok),
        ("server-port", Status.ok),
    ]
    assert checks[1].message == "Debian GNU/Linux 12 (bookworm)"


@pytest.mark.parametrize(
    ("output", "check", "status", "words"),
    [
        ("SUDO fail\n", "sudo", Status.fail, "sudo wants a password"),
        ("", "sudo", Status.fail, "not checked"),
        ("OS ubuntu 20.04 Ubuntu 20.04.6 LTS\n", "distribution", Status.fail, "Ubuntu 20.04.6 LTS is not supported"),
        ("OS ubuntu 24.04 Ubuntu 24.04.1 LTS\n", "distribution", Status.ok, "Ubuntu 24.04.1 LTS"),
        ("OS centos 9 CentOS Stream 9\n", "distribution", Status.fail, "not supported"),
        ("PKG softether-vpnbridge (none)\n", "package", Status.fail, "no installation candidate"),
        ("TCP timeout\n", "server-port", Status.fail, "no answer within 5 s"),
        ("TCP refused\n", "server-port", Status.warn, "nothing listens yet"),
        ("TCP error bash: vpn.example: Name or service not known\n", "server-port", Status.fail, "not known"),
    ],
)
def test_each_fact_has_its_verdict(output: str, check: str, status: Status, words: str) -> None:
    checks = {c.id: c for c in host_checks(output, "host b", "vpn-bridge", "softether-vpnbridge", "vpn.example", 5555)}
    assert checks[check].status is status and words in checks[check].message, checks[check]
    if status is Status.fail:
        assert checks[check].fix


def test_clients_get_no_package_or_port_check() -> None:
    checks = host_checks("SUDO root\nOS debian 13 Debian GNU/Linux 13 (trixie)\n", "host c", "client", None, "x", 1)
    assert [c.id for c in checks] == ["sudo", "distribution"] and all(c.status is Status.ok for c in checks)


def test_quota_counts_existing_and_planned_routes() -> None:
    site = parse_inventory((REPO / "inventory" / "reference.yaml").read_text(), "ref.yaml").inventory.sites[1]
    assert quota_check(site, "Hybrid-RT", 10, 5, 15, "AWS").status is Status.ok
    over = quota_check(site, "Hybrid-RT", 11, 5, 15, "AWS")
    assert (
        over.status is Status.fail and "11 existing + 5 planned routes = 16, over the AWS limit of 15" in over.message
    )


def test_the_printed_azure_role_allows_exactly_what_doctor_checks() -> None:
    from hybridctl.features.preflight import azure_role

    inventory = parse_inventory((REPO / "inventory" / "reference.yaml").read_text(), "ref.yaml").inventory
    role = azure_role(inventory)
    assert azure_denied([{"actions": role["Actions"], "notActions": role["NotActions"]}]) == []
    assert role["Actions"] == list(AZURE_ACTIONS)
    assert role["AssignableScopes"] == [f"/subscriptions/{inventory.azure.subscription_id}/resourceGroups/hybrid-rg"]
