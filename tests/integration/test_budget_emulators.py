"""`hybridctl budget` against the lab's emulators: moto (+ budgets extensions) and the ARM emulator.

Both emulators run in-process on port 0 for the module and are reset before each test. Every
command goes through the real CLI entry point, real boto3 and the real Azure SDK; calls are
counted by the emulators themselves, never by hybridctl.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.conftest import FIXTURES
from tests.support.emulators import ACCOUNT, CliWorld, azure_template_values, boto_client, cli_world

if TYPE_CHECKING:
    from hybridctl_lab.aws_emulator import AwsEmulator
    from hybridctl_lab.azure_emulator import AzureEmulator

pytestmark = pytest.mark.integration

RG = "hybrid-rg"


@dataclass
class Lab(CliWorld):
    doc: dict[str, Any]

    def apply(self, *extra: str) -> tuple[int, dict[str, Any]]:
        return self.json("budget", "set", "-i", str(self.inventory), *extra)

    # -- the inventory ---------------------------------------------------------------------------

    def budget(self, name: str) -> dict[str, Any]:
        return next(b for b in self.doc["budgets"] if b["name"] == name)

    def save(self) -> None:
        self.inventory.write_text(yaml.safe_dump(self.doc, sort_keys=False))

    # -- counting at the emulators ---------------------------------------------------------------

    def reset_counts(self) -> None:
        self.aws.reset_call_counts()
        self.az.requests.reset()

    def aws_mutating(self, action: str | None = None) -> int:
        return int(self.aws.call_count(service="budgets", action=action, kind="mutating"))

    def az_mutating(self) -> int:
        return int(self.az.requests.count(kind="mutating"))

    # -- looking at the clouds directly ------------------------------------------------------------

    def boto(self) -> Any:
        return boto_client(self.aws, "budgets", region="us-east-1")

    def aws_names(self) -> set[str]:
        return {b["BudgetName"] for b in self.boto().describe_budgets(AccountId=ACCOUNT).get("Budgets", [])}

    def aws_thresholds(self, name: str) -> set[tuple[str, float, str]]:
        notes = self.boto().describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName=name)["Notifications"]
        return {(n["NotificationType"], n["Threshold"], n["ThresholdType"]) for n in notes}

    def az_budget_id(self, name: str, rg: str | None = None) -> str:
        scope = f"/subscriptions/{self.az.subscription_id}" + (f"/resourceGroups/{rg}" if rg else "")
        return f"{scope}/providers/Microsoft.Consumption/budgets/{name}"

    def az_budget(self, name: str, rg: str | None = None) -> dict[str, Any] | None:
        body = self.az.get(self.az_budget_id(name, rg))
        return dict(body) if body is not None else None


@pytest.fixture
def lab(
    fresh_aws: AwsEmulator,
    fresh_azure: AzureEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Lab:
    fresh_azure.create_resource_group(RG, "japaneast")
    world = cli_world(fresh_aws, fresh_azure, tmp_path, monkeypatch, capsys, profile="hybridctl-lab")
    text = string.Template((FIXTURES / "budget" / "inventory.yaml").read_text()).substitute(
        aws_endpoint=fresh_aws.endpoint_url,
        aws_credentials=str(world.credentials),
        **azure_template_values(fresh_azure, world.client_secret),
    )
    world.inventory.write_text(text)
    return Lab(fresh_aws, fresh_azure, tmp_path, capsys, yaml.safe_load(text))


def _results(document: dict[str, Any]) -> dict[str, str]:
    labels = {}
    for target in document["targets"]:
        key = f"{target['cloud']}/{target['scope']}/{target['name']}"
        labels[key] = target["result"]
    return labels


# -- idempotency ------------------------------------------------------------------------------------


def test_set_twice_second_run_makes_no_mutating_call(lab: Lab) -> None:
    code, first = lab.apply()
    assert code == 0, first
    assert set(_results(first).values()) == {"ok"}
    assert lab.aws_mutating("CreateBudget") == 2  # hybrid-guard + aws-detail, one call each
    assert lab.az.requests.count(method="PUT", kind="mutating") == 2  # hybrid-guard + rg-restraint
    assert lab.aws_names() == {"hybrid-guard", "aws-detail"}
    assert lab.aws_thresholds("hybrid-guard") == {
        ("ACTUAL", 25.0, "PERCENTAGE"),
        ("ACTUAL", 100.0, "PERCENTAGE"),
        ("FORECASTED", 100.0, "PERCENTAGE"),
    }
    rg_budget = lab.az_budget("rg-restraint", RG)
    assert rg_budget is not None and rg_budget["properties"]["amount"] == 4000

    lab.reset_counts()
    code, second = lab.apply()
    assert code == 0
    assert set(_results(second).values()) == {"in sync"}
    assert second["summary"] == {}
    assert lab.aws_mutating() == 0
    assert lab.az_mutating() == 0
    # ... and it did read: the emulators saw the reads.
    assert lab.aws.call_count(service="budgets", kind="read") > 0
    assert lab.az.requests.count(method="GET") > 0


def test_dry_run_lists_the_change_set_and_calls_nothing_mutating(lab: Lab) -> None:
    code, document = lab.apply("--dry-run")
    assert code == 0
    assert document["dry_run"] is True
    assert document["summary"] == {"create-budget": 4}
    assert lab.aws_mutating() == 0 and lab.az_mutating() == 0
    assert lab.aws_names() == set()

    code, out, _ = lab.run("budget", "set", "-i", str(lab.inventory), "--dry-run")
    assert code == 0
    assert "4 budget(s) would change: 4 create-budget" in out


def test_changing_one_threshold_is_exactly_one_update_call(lab: Lab) -> None:
    assert lab.apply()[0] == 0
    lab.budget("aws-detail")["alerts"][0]["threshold"] = 90
    lab.budget("rg-restraint")["alerts"][0]["threshold"] = 30
    lab.save()
    lab.reset_counts()

    code, document = lab.apply()
    assert code == 0
    changed = [t for t in document["targets"] if t["changes"]]
    assert [(t["name"], [c["action"] for c in t["changes"]]) for t in changed] == [
        ("rg-restraint", ["update-notification"]),
        ("aws-detail", ["update-notification"]),
    ]
    assert lab.aws_mutating() == 1
    assert lab.aws_mutating("UpdateNotification") == 1
    assert lab.az_mutating() == 1
    assert lab.az.requests.count(method="PUT", path_regex="/budgets/rg-restraint") == 1
    assert ("ACTUAL", 90.0, "PERCENTAGE") in lab.aws_thresholds("aws-detail")
    assert ("ACTUAL", 80.0, "PERCENTAGE") not in lab.aws_thresholds("aws-detail")
    rg_budget = lab.az_budget("rg-restraint", RG)
    assert rg_budget is not None
    thresholds = sorted(n["threshold"] for n in rg_budget["properties"]["notifications"].values())
    assert thresholds == [30, 100, 100]

    lab.reset_counts()
    assert lab.apply()[0] == 0
    assert lab.aws_mutating() == 0 and lab.az_mutating() == 0


def test_no_op_never_updates_the_budget_and_keeps_calculated_spend(lab: Lab) -> None:
    # AWS UpdateBudget zeroes CalculatedSpend until new billing data; a no-op set must not call it.
    assert lab.apply()[0] == 0
    lab.aws.seed_budget_spend("aws-detail", "12.5", "18")
    lab.reset_counts()
    assert lab.apply()[0] == 0
    assert lab.aws_mutating("UpdateBudget") == 0
    spend = lab.boto().describe_budget(AccountId=ACCOUNT, BudgetName="aws-detail")["Budget"]["CalculatedSpend"]
    assert spend["ActualSpend"]["Amount"] == "12.5"

    lab.budget("aws-detail")["amount"] = 25
    lab.save()
    lab.reset_counts()
    code, document = lab.apply()
    assert code == 0
    assert lab.aws_mutating() == 1 and lab.aws_mutating("UpdateBudget") == 1
    budget = lab.boto().describe_budget(AccountId=ACCOUNT, BudgetName="aws-detail")["Budget"]
    assert budget["BudgetLimit"]["Amount"] == "25"
    assert budget["CostTypes"]["IncludeTax"] is True  # sent back as read
    assert [c["action"] for t in document["targets"] for c in t["changes"]] == ["update-budget"]


def test_contact_change_touches_subscribers_only(lab: Lab) -> None:
    assert lab.apply()[0] == 0
    lab.budget("aws-detail")["emails"] = ["ops@example.com", "cto@example.com"]
    lab.save()
    lab.reset_counts()
    assert lab.apply()[0] == 0
    # Three notifications: one new subscriber and one gone on each.
    assert lab.aws_mutating("CreateSubscriber") == 3
    assert lab.aws_mutating("DeleteSubscriber") == 3
    assert lab.aws_mutating() == 6
    note = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0}
    subscribers = lab.boto().describe_subscribers_for_notification(
        AccountId=ACCOUNT, BudgetName="aws-detail", Notification={**note, "ThresholdType": "PERCENTAGE"}
    )["Subscribers"]
    assert {s["Address"] for s in subscribers} == {
        "ops@example.com",
        "cto@example.com",
        "arn:aws:sns:us-east-1:123456789012:billing",
    }


# -- delete -----------------------------------------------------------------------------------------


def test_delete_removes_only_the_named_budget(lab: Lab) -> None:
    assert lab.apply()[0] == 0
    lab.reset_counts()
    code, document = lab.json("budget", "delete", "aws-detail", "-i", str(lab.inventory))
    assert code == 0
    assert [(t["name"], t["result"]) for t in document["targets"]] == [("aws-detail", "ok")]
    assert lab.aws_mutating() == 1 and lab.aws_mutating("DeleteBudget") == 1
    assert lab.az_mutating() == 0
    assert lab.aws_names() == {"hybrid-guard"}

    lab.reset_counts()
    code, document = lab.json("budget", "delete", "hybrid-guard", "-i", str(lab.inventory))
    assert code == 0
    assert lab.aws_names() == set()
    assert lab.az_budget("hybrid-guard") is None
    assert lab.az_budget("rg-restraint", RG) is not None
    assert lab.az.requests.count(method="DELETE") == 1

    code, document = lab.json("budget", "delete", "hybrid-guard", "-i", str(lab.inventory), "--dry-run")
    assert code == 0
    assert {t["result"] for t in document["targets"]} == {"not found"}


# -- status -----------------------------------------------------------------------------------------


def test_status_shows_seeded_spend_and_exits_3_when_a_threshold_is_crossed(lab: Lab) -> None:
    assert lab.apply()[0] == 0
    lab.aws.seed_budget_spend("hybrid-guard", "3.1", "12")  # under 25% (7.5 USD) of 30 USD
    lab.aws.seed_budget_spend("aws-detail", "4.5", "9")  # under 80% of 20 USD and under 5 USD
    lab.az.set_spend(lab.az_budget_id("hybrid-guard"), current=2, forecast=11.5, unit="USD")
    lab.az.set_spend(lab.az_budget_id("rg-restraint", RG), current=800, forecast=3000, unit="JPY")

    code, document = lab.json("budget", "status", "-i", str(lab.inventory))
    assert code == 0
    assert document["crossed"] is False
    rows = {(b["cloud"], b["name"]): b for b in document["budgets"]}
    assert (rows[("aws", "hybrid-guard")]["actual"], rows[("aws", "hybrid-guard")]["forecast"]) == ("3.1", "12")
    assert (rows[("azure", "rg-restraint")]["actual"], rows[("azure", "rg-restraint")]["spend_unit"]) == ("800", "JPY")
    assert rows[("azure", "rg-restraint")]["percent_used"] == 20.0

    lab.az.set_spend(lab.az_budget_id("rg-restraint", RG), current=1200, forecast=4100, unit="JPY")
    lab.aws.seed_budget_spend("aws-detail", "6", "9")  # past the absolute 5 USD alert
    code, document = lab.json("budget", "status", "-i", str(lab.inventory))
    assert code == 3
    assert document["crossed"] is True
    rows = {(b["cloud"], b["name"]): b for b in document["budgets"]}
    assert [c["alert"] for c in rows[("azure", "rg-restraint")]["crossed"]] == ["actual > 25%", "forecast > 100%"]
    assert rows[("azure", "rg-restraint")]["crossed"][0] == {
        "alert": "actual > 25%",
        "type": "actual",
        "limit": "1000",
        "spend": "1200",
    }
    assert [c["alert"] for c in rows[("aws", "aws-detail")]["crossed"]] == ["actual > 5"]
    assert rows[("aws", "hybrid-guard")]["crossed"] == []

    code, out, _ = lab.run("budget", "status", "-i", str(lab.inventory))
    assert code == 3
    assert "1200 / 4000 JPY" in out
    assert "6 / 20 USD" in out
    assert "█" in out
    assert "actual>25%" in out


def test_status_without_inventory_declarations_lists_what_the_clouds_have(lab: Lab) -> None:
    assert lab.apply()[0] == 0
    lab.aws.seed_budget_spend("aws-detail", "17", "19")
    code, document = lab.json("budget", "status", "aws-detail", "-i", str(lab.inventory), "--cloud", "aws")
    assert code == 3
    [row] = document["budgets"]
    assert (row["name"], row["actual"], row["percent_used"]) == ("aws-detail", "17", 85.0)


def test_status_exits_2_when_a_declared_budget_is_missing(lab: Lab) -> None:
    code, document = lab.json("budget", "status", "-i", str(lab.inventory))
    assert code == 2
    assert document["missing"] is True
    assert {b["state"] for b in document["budgets"]} == {"missing"}


def test_status_with_nothing_declared_reports_what_set_made_and_refuses_an_unknown_name(lab: Lab) -> None:
    del lab.doc["budgets"]
    lab.save()
    inv = str(lab.inventory)
    code, document = lab.json(
        "budget", "set", "hybrid-guard", "-i", inv, "--amount", "30", "--preset", "guard", "--email", "me@example.com",
    )  # fmt: skip
    assert code == 0, document
    lab.aws.seed_budget_spend("hybrid-guard", "3", "9")  # under every threshold of 30 USD

    for args in ([], ["hybrid-guard"], ["HYBRID-GUARD"]):
        code, document = lab.json("budget", "status", *args, "-i", inv)
        assert code == 0, (args, document)
        rows = {(b["cloud"], b["scope"], b["name"]): b for b in document["budgets"]}
        assert set(rows) == {("aws", "account", "hybrid-guard"), ("azure", "subscription", "hybrid-guard")}
        assert rows[("aws", "account", "hybrid-guard")]["actual"] == "3"
        assert not any(b["declared"] for b in document["budgets"])

    code, out, _ = lab.run("budget", "status", "hybrid-guard", "-i", inv)
    assert code == 0
    assert "No budgets found" not in out
    assert "3 / 30 USD" in out

    lab.aws.seed_budget_spend("hybrid-guard", "31", "40")  # past 100%: exit 3 still wins
    assert lab.json("budget", "status", "-i", inv)[0] == 3

    code, out, err = lab.run("budget", "status", "no-such-budget", "-i", inv)
    assert code == 2
    assert "no-such-budget" in err and "NAME" in err and "hybridctl budget list" in err
    assert out == ""


def test_status_of_an_undeclared_name_finds_it_in_the_clouds(lab: Lab) -> None:
    inv = str(lab.inventory)
    code, _ = lab.json(
        "budget", "set", "flagged", "-i", inv, "--cloud", "aws", "--amount", "20", "--alert", "actual:80%",
        "--email", "me@example.com",
    )  # fmt: skip
    assert code == 0
    code, document = lab.json("budget", "status", "flagged", "-i", inv)
    assert code == 0
    assert [(b["cloud"], b["name"], b["declared"]) for b in document["budgets"]] == [("aws", "flagged", False)]
    code, _, err = lab.run("budget", "status", "hybrid-guard", "typo-guard", "-i", inv)
    assert code == 2
    assert "typo-guard" in err and "'hybrid-guard'" not in err


# -- flags, preset, list, show ----------------------------------------------------------------------


def test_flags_build_a_budget_and_a_second_run_is_a_no_op(lab: Lab) -> None:
    args = [
        "budget", "set", "flagged", "-i", str(lab.inventory), "--cloud", "aws", "--amount", "20",
        "--alert", "actual:80%", "--alert", "forecast:100%", "--alert", "actual:5", "--email", "me@example.com",
    ]  # fmt: skip
    code, document = lab.json(*args)
    assert code == 0 and _results(document) == {"aws/account/flagged": "ok"}
    assert lab.aws_thresholds("flagged") == {
        ("ACTUAL", 80.0, "PERCENTAGE"),
        ("FORECASTED", 100.0, "PERCENTAGE"),
        ("ACTUAL", 5.0, "ABSOLUTE_VALUE"),
    }
    lab.reset_counts()
    code, document = lab.json(*args)
    assert code == 0 and _results(document) == {"aws/account/flagged": "in sync"}
    assert lab.aws_mutating() == 0


def test_guard_preset_in_both_clouds_with_one_flag(lab: Lab) -> None:
    code, document = lab.json(
        "budget", "set", "guard", "-i", str(lab.inventory), "--amount", "40", "--preset", "guard",
        "--idle", "10", "--email", "me@example.com",
    )  # fmt: skip
    assert code == 0
    assert _results(document) == {"aws/account/guard": "ok", "azure/subscription/guard": "ok"}
    assert lab.aws_thresholds("guard") == {
        ("ACTUAL", 25.0, "PERCENTAGE"),
        ("ACTUAL", 100.0, "PERCENTAGE"),
        ("FORECASTED", 100.0, "PERCENTAGE"),
    }
    budget = lab.az_budget("guard")
    assert budget is not None
    notifications = budget["properties"]["notifications"].values()
    assert sorted((n["thresholdType"], n["threshold"]) for n in notifications) == [
        ("Actual", 25),
        ("Actual", 100),
        ("Forecasted", 100),
    ]


def test_list_and_show_read_back_what_set_made(lab: Lab) -> None:
    assert lab.apply()[0] == 0
    code, document = lab.json("budget", "list", "-i", str(lab.inventory))
    assert code == 0
    found = {(b["cloud"], b["scope"], b["name"], b["declared"]) for b in document["budgets"]}
    assert found == {
        ("aws", "account", "aws-detail", True),
        ("aws", "account", "hybrid-guard", True),
        ("azure", "subscription", "hybrid-guard", True),
        ("azure", f"resource-group:{RG}", "rg-restraint", True),
    }
    code, document = lab.json("budget", "show", "rg-restraint", "-i", str(lab.inventory))
    assert code == 0
    [shown] = document["budgets"]
    assert shown["exists"] and shown["changes"] == []
    assert shown["cloud_state"]["amount"] == "4000"
    assert {tuple(a["roles"]) for a in shown["cloud_state"]["alerts"]} == {("Owner",)}


def test_list_labels_each_azure_budget_with_its_own_scope_once(lab: Lab) -> None:
    # On Azure the subscription-scope list also returns resource-group budgets (BudgetsList.json):
    # rg-restraint must show once, as a resource-group budget, not again as a subscription one.
    assert lab.apply()[0] == 0
    lab.az.create_resource_group("other-rg", "japaneast")
    lab.az.create_budget(
        f"/subscriptions/{lab.az.subscription_id}/resourceGroups/other-rg",
        "hybrid-guard",
        lab.az_budget("hybrid-guard")["properties"],  # type: ignore[index]
    )
    code, document = lab.json("budget", "list", "-i", str(lab.inventory), "--cloud", "azure")
    assert code == 0
    listed = [(b["scope"], b["name"]) for b in document["budgets"] if b["cloud"] == "azure"]
    assert sorted(listed) == [
        (f"resource-group:{RG}", "rg-restraint"),
        ("resource-group:other-rg", "hybrid-guard"),
        ("subscription", "hybrid-guard"),
    ]


def test_deleting_a_missing_budget_says_so_and_changes_nothing(lab: Lab) -> None:
    lab.reset_counts()
    code, out, err = lab.run("budget", "delete", "no-such-budget", "-i", str(lab.inventory), "--cloud", "azure")
    assert code == 0
    assert "azure/no-such-budget: no budget of that name" in err and "nothing to delete" in err
    assert "Nothing deleted" in out
    assert lab.az_mutating() == 0
    code, document = lab.json("budget", "delete", "no-such-budget", "-i", str(lab.inventory), "--cloud", "azure")
    assert code == 0 and [t["result"] for t in document["targets"]] == ["not found"]


# -- failures ---------------------------------------------------------------------------------------


def test_throttling_is_retried_by_the_sdk(lab: Lab) -> None:
    lab.aws.inject_fault("budgets", "DescribeBudgets", count=2)
    lab.az.faults.add(method="GET", path_regex="/budgets/hybrid-guard", status=429, count=1, retry_after=0)
    code, document = lab.apply()
    assert code == 0, document
    stats = {(c.action): c for c in lab.aws.call_counts() if c.service == "budgets"}
    assert stats["DescribeBudgets"].throttled == 2
    assert lab.az.requests.count(method="GET", path_regex="/budgets/hybrid-guard") >= 2


def test_azure_start_change_is_refused_before_any_call(lab: Lab) -> None:
    assert lab.apply()[0] == 0
    rg_budget = lab.az_budget("rg-restraint", RG)
    assert rg_budget is not None
    start = rg_budget["properties"]["timePeriod"]["startDate"][:10]
    year, month = int(start[:4]), int(start[5:7])
    later = f"{year + (month // 12)}-{month % 12 + 1:02d}-01"
    lab.budget("rg-restraint")["start"] = later
    lab.save()
    lab.reset_counts()
    code, document = lab.apply()
    assert code == 1
    [failed] = [t for t in document["targets"] if t["result"] == "failed"]
    assert failed["name"] == "rg-restraint"
    assert "cannot change a budget's start date" in failed["error"]
    assert lab.az_mutating() == 0


def test_cloud_errors_are_translated_with_a_hint(lab: Lab) -> None:
    lab.budget("rg-restraint")["scope"] = "resource-group:no-such-rg"
    lab.save()
    code, _, err = lab.run("budget", "set", "-i", str(lab.inventory), "rg-restraint")
    assert code == 1
    assert "ResourceGroupNotFound" in err
    assert "create it or fix scope" in err
    assert lab.az_mutating() == 0


def test_flags_without_inventory_take_the_clouds_from_the_environment(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in lab.az.credential_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HYBRIDCTL_ARM_ENDPOINT", lab.az.base_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", lab.aws.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    args = ["budget", "set", "env-guard", "--preset", "guard", "--amount", "30", "--email", "me@example.com"]
    code, document = lab.json(*args)
    assert code == 0
    assert _results(document) == {"aws/account/env-guard": "ok", "azure/subscription/env-guard": "ok"}
    assert "env-guard" in lab.aws_names() and lab.az_budget("env-guard") is not None
    lab.reset_counts()
    assert lab.json(*args)[0] == 0
    assert lab.aws_mutating() == 0 and lab.az_mutating() == 0

    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID")
    code, _, err = lab.run(*args)
    assert code == 2
    assert "AZURE_SUBSCRIPTION_ID" in err
