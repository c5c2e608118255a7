"""The pure side of budgets: parsers on captured emulator output, desired state, diff, presets."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from hybridctl.core.inventory.budgets import Budget, guard_alerts
from hybridctl.features.budget import aws as aws_budgets
from hybridctl.features.budget import azure as azure_budgets
from hybridctl.features.budget.diff import (
    Alarm,
    BudgetState,
    Contacts,
    Notice,
    Target,
    desired_state,
    diff_budget,
    final_notices,
    match_notices,
    targets_of,
)
from tests.conftest import FIXTURES

AWS_FIXTURE = json.loads((FIXTURES / "budget" / "aws_budget.json").read_text())
AZURE_FIXTURE = json.loads((FIXTURES / "budget" / "azure_budget.json").read_text())


def aws_actual() -> BudgetState:
    pairs = [(item["Notification"], item["Subscribers"]) for item in AWS_FIXTURE["Notifications"]]
    return aws_budgets.parse_budget(AWS_FIXTURE["Budget"], pairs)


def azure_actual() -> BudgetState:
    return azure_budgets.parse_budget(AZURE_FIXTURE["budget"])


def declared(**changes: Any) -> Budget:
    """tests/fixtures/budget/inventory.yaml's aws-detail (what produced the AWS fixture)."""
    base: dict[str, Any] = {
        "name": "aws-detail",
        "cloud": "aws",
        "amount": 20,
        "alerts": [
            {"type": "actual", "threshold": 80},
            {"type": "forecast", "threshold": 100},
            {"type": "actual", "threshold": 5, "unit": "absolute"},
        ],
        "emails": ["ops@example.com", "finance@example.com"],
        "sns_topics": ["arn:aws:sns:us-east-1:123456789012:billing"],
    }
    base.update(changes)
    return Budget.model_validate(base)


def declared_rg(**changes: Any) -> Budget:
    """The fixture inventory's rg-restraint (what produced the Azure fixture)."""
    base: dict[str, Any] = {
        "name": "rg-restraint",
        "cloud": "azure",
        "amount": 4000,
        "currency": "JPY",
        "scope": "resource-group:hybrid-rg",
        "alerts": [
            {"type": "actual", "threshold": 25},
            {"type": "actual", "threshold": 100},
            {"type": "forecast", "threshold": 100},
        ],
        "emails": ["ops@example.com"],
        "roles": ["Owner"],
    }
    base.update(changes)
    return Budget.model_validate(base)


# -- parsers --------------------------------------------------------------------------------------


def test_aws_parser_reads_limit_period_start_spend_and_every_notification() -> None:
    state = aws_actual()
    assert state.target == Target("aws", "account", "aws-detail")
    assert (state.amount, state.currency, state.period, state.kind) == (Decimal(20), "USD", "monthly", "COST")
    assert state.start is not None and state.start.day == 1
    assert state.spend is not None
    assert (state.spend.actual, state.spend.forecast, state.spend.unit) == (Decimal("17.25"), Decimal("26.5"), "USD")
    alarms = {n.alarm for n in state.notices}
    assert alarms == {
        Alarm("actual", Decimal(80)),
        Alarm("forecast", Decimal(100)),
        Alarm("actual", Decimal(5), "absolute"),
    }
    for notice in state.notices:
        assert set(notice.contacts.emails) == {"ops@example.com", "finance@example.com"}
        assert notice.contacts.sns_topics == ("arn:aws:sns:us-east-1:123456789012:billing",)
    # 17.25 USD is past 80% of 20 USD and past 5 USD: the emulator says ALARM for exactly those.
    states = {n.alarm.label(): n.state for n in state.notices}
    assert states == {"actual > 80%": "ALARM", "forecast > 100%": "ALARM", "actual > 5": "ALARM"}


def test_azure_parser_reads_scope_grain_notifications_and_spend() -> None:
    state = azure_actual()
    assert state.target == Target("azure", "resource-group:hybrid-rg", "rg-restraint")
    assert (state.amount, state.period, state.currency) == (Decimal(4000), "monthly", None)
    assert state.etag == AZURE_FIXTURE["budget"]["eTag"]
    assert state.spend is not None
    assert (state.spend.actual, state.spend.forecast, state.spend.unit) == (Decimal(1200), Decimal(4100), "JPY")
    keys = {n.key: n.alarm for n in state.notices}
    assert keys == {
        "Actual_GreaterThan_25_Percent": Alarm("actual", Decimal(25)),
        "Actual_GreaterThan_100_Percent": Alarm("actual", Decimal(100)),
        "Forecasted_GreaterThan_100_Percent": Alarm("forecast", Decimal(100)),
    }
    assert all(n.contacts.roles == ("Owner",) for n in state.notices)


# -- diff -----------------------------------------------------------------------------------------


def test_what_produced_the_fixtures_is_in_sync() -> None:
    assert diff_budget(desired_state(declared(), Target("aws", "account", "aws-detail")), aws_actual()) == []
    target = Target("azure", "resource-group:hybrid-rg", "rg-restraint")
    assert diff_budget(desired_state(declared_rg(), target), azure_actual()) == []


def test_a_missing_budget_is_one_create() -> None:
    desired = desired_state(declared(), Target("aws", "account", "aws-detail"))
    [change] = diff_budget(desired, None)
    assert change.action == "create-budget"


def test_one_threshold_changed_is_one_notification_update() -> None:
    budget = declared(
        alerts=[
            {"type": "actual", "threshold": 90},
            {"type": "forecast", "threshold": 100},
            {"type": "actual", "threshold": 5, "unit": "absolute"},
        ]
    )
    [change] = diff_budget(desired_state(budget, targets_of(budget)[0]), aws_actual())
    assert change.action == "update-notification"
    assert change.before is not None and change.after is not None
    assert (change.before.alarm.label(), change.after.alarm.label()) == ("actual > 80%", "actual > 90%")


def test_amount_and_period_are_one_budget_update() -> None:
    budget = declared(amount=25, period="quarterly")
    [change] = diff_budget(desired_state(budget, targets_of(budget)[0]), aws_actual())
    assert change.action == "update-budget"
    assert change.fields == (("amount", "20", "25"), ("period", "monthly", "quarterly"))


def test_contacts_changed_is_per_notification_and_keeps_the_alarm() -> None:
    budget = declared(emails=["ops@example.com"])
    changes = diff_budget(desired_state(budget, targets_of(budget)[0]), aws_actual())
    assert [c.action for c in changes] == ["update-contacts"] * 3
    assert all("-finance@example.com" in c.text() for c in changes)


def test_added_and_removed_alerts() -> None:
    budget = declared(
        alerts=[
            {"type": "actual", "threshold": 80},
            {"type": "forecast", "threshold": 100},
            {"type": "actual", "threshold": 5, "unit": "absolute"},
            {"type": "forecast", "threshold": 150},
        ]
    )
    [change] = diff_budget(desired_state(budget, targets_of(budget)[0]), aws_actual())
    assert change.action == "create-notification"
    assert change.after is not None and change.after.alarm == Alarm("forecast", Decimal(150))

    fewer = declared(alerts=[{"type": "actual", "threshold": 80}])
    changes = diff_budget(desired_state(fewer, targets_of(fewer)[0]), aws_actual())
    assert sorted(c.action for c in changes) == ["delete-notification", "delete-notification"]


def test_undeclared_start_is_not_compared_and_a_declared_aws_start_updates() -> None:
    actual = aws_actual()
    assert actual.start is not None
    later = (actual.start + dt.timedelta(days=40)).replace(day=1)
    budget = declared(start=later.isoformat())
    [change] = diff_budget(desired_state(budget, targets_of(budget)[0]), actual)
    assert change.action == "update-budget"
    assert change.fields == (("start", actual.start.isoformat(), later.isoformat()),)


def test_azure_start_change_is_blocked_not_applied() -> None:
    actual = azure_actual()
    assert actual.start is not None
    later = (actual.start + dt.timedelta(days=40)).replace(day=1)
    budget = declared_rg(start=later.isoformat())
    changes = diff_budget(desired_state(budget, targets_of(budget)[0]), actual)
    assert [c.action for c in changes] == ["blocked"]
    assert "cannot change a budget's start date" in changes[0].why


def test_azure_currency_is_not_compared() -> None:
    # Azure budgets carry no currency; the declared one names the billing currency.
    budget = declared_rg(currency="EUR")
    assert diff_budget(desired_state(budget, targets_of(budget)[0]), azure_actual()) == []


def test_a_usage_budget_of_the_same_name_is_not_touched() -> None:
    actual = replace(aws_actual(), kind="USAGE")
    [change] = diff_budget(desired_state(declared(), actual.target), actual)
    assert change.action == "blocked"


def _notice(kind: str, threshold: int, unit: str = "percent", key: str = "") -> Notice:
    return Notice(Alarm(kind, Decimal(threshold), unit), Contacts(emails=("a@b.co",)), True, key)


def test_pairing_prefers_same_type_and_unit() -> None:
    desired = [_notice("actual", 90), _notice("forecast", 120)]
    actual = [_notice("forecast", 100), _notice("actual", 80)]
    match = match_notices(desired, actual)
    assert [(a.alarm.threshold, d.alarm.threshold) for a, d in match.paired] == [(80, 90), (100, 120)]
    assert match.created == () and match.deleted == ()


def test_final_notices_keep_the_cloud_names_of_kept_notifications() -> None:
    target = Target("azure", "subscription", "guard")
    actual = BudgetState(target, Decimal(30), None, "monthly", None, (_notice("actual", 25, key="portal-made"),))
    budget = Budget.model_validate(
        {"name": "guard", "cloud": "azure", "amount": 30, "preset": "guard", "emails": ["a@b.co"]}
    )
    notices = final_notices(desired_state(budget, target), actual)
    assert [n.key for n in notices] == [
        "portal-made",
        "Actual_GreaterThan_100_Percent",
        "Forecasted_GreaterThan_100_Percent",
    ]


def test_azure_body_keeps_start_end_filter_and_sends_the_etag() -> None:
    actual = azure_actual()
    raw = json.loads(json.dumps(actual.raw))
    raw["properties"]["filter"] = {"tags": {"name": "env", "values": ["lab"]}}
    actual = replace(actual, raw=raw)
    budget = declared_rg(amount=5000)
    body = azure_budgets.budget_body(desired_state(budget, targets_of(budget)[0]), actual, dt.date(2026, 11, 22))
    assert body["eTag"] == actual.etag
    props = body["properties"]
    assert props["amount"] == 5000 and props["timeGrain"] == "Monthly" and props["category"] == "Cost"
    assert props["timePeriod"] == AZURE_FIXTURE["budget"]["properties"]["timePeriod"]
    assert props["filter"] == {"tags": {"name": "env", "values": ["lab"]}}
    assert set(props["notifications"]) == set(AZURE_FIXTURE["budget"]["properties"]["notifications"])


@pytest.mark.parametrize(
    ("period", "start"),
    [("monthly", dt.date(2026, 11, 1)), ("quarterly", dt.date(2026, 10, 1)), ("annual", dt.date(2026, 1, 1))],
)
def test_new_azure_budget_starts_with_the_current_period(period: str, start: dt.date) -> None:
    budget = declared_rg(period=period)
    body = azure_budgets.budget_body(desired_state(budget, targets_of(budget)[0]), None, dt.date(2026, 11, 22))
    assert body["properties"]["timePeriod"] == {"startDate": f"{start.isoformat()}T00:00:00Z"}
    assert "eTag" not in body


def test_aws_update_sends_the_budget_back_with_only_declared_fields_changed() -> None:
    actual = aws_actual()
    budget = declared(amount=25)
    members = {"BudgetName", "BudgetLimit", "CostTypes", "TimeUnit", "TimePeriod", "BudgetType", "CalculatedSpend"}
    body = aws_budgets.updated_budget(actual, desired_state(budget, actual.target), members)
    assert body["BudgetLimit"] == {"Amount": "25", "Unit": "USD"}
    assert body["CostTypes"] == AWS_FIXTURE["Budget"]["CostTypes"]
    assert body["TimePeriod"] == AWS_FIXTURE["Budget"]["TimePeriod"]
    assert "CalculatedSpend" not in body and "LastUpdatedTime" not in body


def test_aws_subscriber_steps_stay_within_bounds() -> None:
    one = Contacts(emails=("a@b.co",))
    other = Contacts(emails=("c@d.co",))
    assert aws_budgets.subscriber_steps(one, other) == [
        ("create", {"SubscriptionType": "EMAIL", "Address": "c@d.co"}),
        ("delete", {"SubscriptionType": "EMAIL", "Address": "a@b.co"}),
    ]
    full = Contacts(emails=tuple(f"u{i}@b.co" for i in range(10)), sns_topics=("arn:aws:sns:us-east-1:1:t",))
    swapped = Contacts(emails=(*full.emails[:9], "new@b.co"), sns_topics=full.sns_topics)
    steps = aws_budgets.subscriber_steps(full, swapped)
    assert [s for s, _ in steps] == ["delete", "create"]  # 11 is the maximum: make room first


def test_guard_preset_is_the_reference_two_tier_guard() -> None:
    # reference.md section 3: 1,000 JPY "nothing should be running", 4,000 JPY self-restraint.
    alerts = guard_alerts(Decimal(4000), Decimal(1000))
    assert [(a.type, a.threshold, a.unit) for a in alerts] == [
        ("actual", Decimal(25), "percent"),
        ("actual", Decimal(100), "percent"),
        ("forecast", Decimal(100), "percent"),
    ]
    assert guard_alerts(Decimal(30))[0].threshold == Decimal(25)
    assert guard_alerts(Decimal(30), Decimal(10))[0].threshold == Decimal("33.33")


def test_crossing_uses_each_alarms_own_limit_and_operator() -> None:
    alarm = Alarm("actual", Decimal(80))
    assert alarm.limit(Decimal(20)) == Decimal(16)
    assert alarm.crossed(Decimal(20), Decimal("16.01"))
    assert not alarm.crossed(Decimal(20), Decimal(16))
    assert Alarm("actual", Decimal(80), operator="ge").crossed(Decimal(20), Decimal(16))
    assert Alarm("actual", Decimal(5), "absolute").crossed(Decimal(20), Decimal(6))
