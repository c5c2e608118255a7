"""Bad budget declarations: each gets its own message, the right field and line, and exit 2.

The inventory points both clouds at a port nothing listens on: a command that got past
validation and called a cloud would end with exit 1 (connection refused), never 2.
"""

from __future__ import annotations

import datetime as dt
import json
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridctl.cli.main import main
from hybridctl.core.errors import InputError
from hybridctl.core.inventory.budget_rules import add_months, to_decimal, today_utc
from hybridctl.core.inventory.budgets import Budget
from hybridctl.core.inventory.load import parse_inventory
from hybridctl.features.budget.validation import budget_from_flags, parse_alert
from tests.conftest import FIXTURES

DEAD = "127.0.0.1:9"  # discard port: connection refused if anything were called
GOOD: dict[str, Any] = {
    "name": "guard",
    "cloud": "aws",
    "amount": 20,
    "alerts": [{"threshold": 80}],
    "emails": ["a@b.co"],
}


def inventory_text(budgets: list[dict[str, Any]], *, azure: bool = True) -> str:
    text = string.Template((FIXTURES / "budget" / "inventory.yaml").read_text()).substitute(
        aws_endpoint=f"http://{DEAD}",
        aws_credentials="/nonexistent/credentials",
        subscription_id="00000000-0000-0000-0000-000000000000",
        tenant_id="t",
        client_id="c",
        secret_file=str(FIXTURES / "budget" / "inventory.yaml"),  # must exist; nothing reads it here
        arm_endpoint=f"https://{DEAD}",
        authority=f"https://{DEAD}",
        ca_bundle="/nonexistent/ca.pem",
    )
    doc = yaml.safe_load(text)
    doc["budgets"] = budgets
    if not azure:
        del doc["azure"]
    # Block style: every key on its own line, so a problem's line names its field.
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def with_(**changes: Any) -> dict[str, Any]:
    budget = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            budget.pop(key, None)
        else:
            budget[key] = value
    return budget


def _start(months: int, day: int = 1) -> str:
    return add_months(today_utc(), months).replace(day=day).isoformat()


SNS = "arn:aws:sns:us-east-1:123456789012:billing"
GROUP = "/subscriptions/s/resourceGroups/rg/providers/microsoft.insights/actionGroups/ops"

# (case id, budgets, field the problem names, words of its message, line anchor)
CASES: list[tuple[str, list[dict[str, Any]], str, str, str]] = [
    ("colon-in-name", [with_(name="bad:name")], "budgets[bad:name].name", "characters that are not allowed", "name:"),
    ("name-too-long", [with_(name="n" * 64)], ".name", "longer than 63 characters", "name:"),
    ("amount-zero", [with_(amount=0)], "budgets[guard].amount", "not above zero", "amount:"),
    ("amount-not-number", [with_(amount="lots")], "budgets[guard].amount", "decimal", "amount:"),
    ("aws-not-usd", [with_(currency="JPY")], "budgets[guard].currency", "AWS budgets are in USD only", "currency:"),
    ("currency-lowercase", [with_(currency="usd")], "budgets[guard].currency", "not a currency code", "currency:"),
    (
        "six-alerts",
        [with_(alerts=[{"threshold": t} for t in (10, 20, 30, 40, 50, 60)])],
        "budgets[guard].alerts",
        "at most 5 per budget",
        "alerts:",
    ),
    (
        "threshold-zero",
        [with_(alerts=[{"threshold": 0}])],
        "budgets[guard].alerts[0].threshold",
        "outside (0, 1000]",
        "threshold:",
    ),
    (
        "threshold-too-high",
        [with_(alerts=[{"threshold": 1500}])],
        "budgets[guard].alerts[0].threshold",
        "outside (0, 1000]",
        "threshold:",
    ),
    (
        "absolute-on-azure",
        [with_(cloud="azure", alerts=[{"threshold": 5, "unit": "absolute"}])],
        "budgets[guard].alerts[0].unit",
        "absolute thresholds are AWS only",
        "unit:",
    ),
    (
        "duplicate-alert",
        [with_(alerts=[{"threshold": 80}, {"type": "actual", "threshold": 80.0}])],
        "budgets[guard].alerts[1]",
        "declared twice",
        "- type: actual",
    ),
    ("nobody-to-notify-aws", [with_(emails=None)], "budgets[guard].emails", "notify nobody", "name:"),
    (
        "roles-alone-azure",
        [with_(cloud="azure", emails=None, roles=["Owner"])],
        "budgets[guard].emails",
        "roles alone are not enough",
        "name:",
    ),
    (
        "eleven-emails",
        [with_(emails=[f"u{i}@example.com" for i in range(11)])],
        "budgets[guard].emails",
        "at most 10 email subscribers",
        "emails:",
    ),
    (
        "two-sns-topics",
        [with_(sns_topics=[SNS, SNS.replace("billing", "other")])],
        "budgets[guard].sns_topics",
        "at most one",
        "sns_topics:",
    ),
    (
        "sns-on-azure",
        [with_(cloud="azure", sns_topics=[SNS])],
        "budgets[guard].sns_topics",
        "AWS subscribers",
        "sns_topics:",
    ),
    (
        "bad-sns-arn",
        [with_(sns_topics=["billing-topic"])],
        "budgets[guard].sns_topics[0]",
        "not an SNS topic ARN",
        "billing-topic",
    ),
    ("roles-on-aws", [with_(roles=["Owner"])], "budgets[guard].roles", "Azure contacts", "roles:"),
    (
        "bad-action-group",
        [with_(cloud="azure", action_groups=["ops-group"])],
        "budgets[guard].action_groups[0]",
        "not an action group resource id",
        "ops-group",
    ),
    (
        "bad-email",
        [with_(emails=["me-at-example.com"])],
        "budgets[guard].emails[0]",
        "not an email address",
        "me-at-example.com",
    ),
    ("start-mid-month", [with_(start=_start(1, 15))], "budgets[guard].start", "not the first of a month", "start:"),
    ("start-too-far", [with_(start=_start(13))], "budgets[guard].start", "more than 12 months ahead", "start:"),
    ("start-too-early", [with_(start="2017-01-01")], "budgets[guard].start", "before 2017-06-01", "start:"),
    ("rg-scope-on-aws", [with_(scope="resource-group:hybrid-rg")], "budgets[guard].scope", "account-wide", "scope:"),
    (
        "bad-scope",
        [with_(cloud="azure", scope="rg:hybrid")],
        "budgets[guard].scope",
        "neither 'subscription'",
        "scope:",
    ),
    ("preset-and-alerts", [with_(preset="guard")], "budgets[guard].preset", "sets the alerts", "preset:"),
    (
        "idle-above-amount",
        [with_(preset="guard", alerts=None, idle=25)],
        "budgets[guard].idle",
        "below the amount",
        "idle:",
    ),
    ("idle-without-preset", [with_(idle=5)], "budgets[guard].idle", "only applies to preset: guard", "idle:"),
    (
        "unknown-key",
        [with_(alerts=[{"threshhold": 80}])],
        "budgets[guard].alerts[0].threshhold",
        "unknown field",
        "threshhold:",
    ),
    (
        "alert-type",
        [with_(alerts=[{"type": "spend", "threshold": 80}])],
        "budgets[guard].alerts[0].type",
        "'actual' or 'forecast'",
        "type:",
    ),
    ("same-budget-twice", [GOOD, with_(amount=30)], "budgets[guard].name", "declared twice", "name:"),
]


@pytest.mark.parametrize(("budgets", "field", "message", "anchor"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_budget_is_reported_with_field_line_and_fix_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    budgets: list[dict[str, Any]],
    field: str,
    message: str,
    anchor: str,
) -> None:
    text = inventory_text(budgets)
    path = tmp_path / "inventory.yaml"
    path.write_text(text)

    with pytest.raises(SystemExit) as exit_info:
        main(["budget", "set", "-i", str(path), "--dry-run"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err

    # The same problem through the plain inventory loader (what `hybridctl plan` sees).
    with pytest.raises(InputError) as raised:
        parse_inventory(text, str(path))
    matching = [
        p for p in raised.value.problems if p.field.endswith(field.removeprefix("budgets[guard]")) or p.field == field
    ]
    assert matching, [p.render() for p in raised.value.problems]
    problem = matching[0]
    assert problem.line is not None
    assert anchor in text.splitlines()[problem.line - 1], (problem.line, text)
    assert problem.fix


def test_budget_problems_keep_their_own_fix_through_the_inventory_loader(tmp_path: Path) -> None:
    from hybridctl.core.inventory.load import load_inventory

    path = tmp_path / "inventory.yaml"
    path.write_text(inventory_text([with_(currency="JPY")]))
    with pytest.raises(InputError) as raised:
        load_inventory(path)
    [problem] = raised.value.problems
    assert problem.field == "budgets[guard].currency"
    assert problem.fix.startswith("use currency: USD, or declare two budgets")


def test_azure_budget_without_azure_section_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "inventory.yaml"
    text = inventory_text([with_(cloud="azure")], azure=False)
    path.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["budget", "set", "-i", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "budgets[guard].cloud" in err
    assert "no azure section" in err


FLAG_CASES: list[tuple[str, list[str], str, str]] = [
    (
        "alert-without-colon",
        ["--amount", "20", "--alert", "actual80%", "--email", "a@b.co"],
        "--alert #1",
        "is not TYPE:THRESHOLD",
    ),
    (
        "alert-not-number",
        ["--amount", "20", "--alert", "actual:lots%", "--email", "a@b.co"],
        "--alert #1",
        "is not a number",
    ),
    (
        "jpy-for-both",
        ["--amount", "4000", "--currency", "JPY", "--preset", "guard", "--email", "a@b.co"],
        "--currency",
        "USD only",
    ),
    (
        "start-mid-month",
        ["--amount", "20", "--start", "2026-12-15", "--cloud", "aws"],
        "--start",
        "not the first of a month",
    ),
    ("no-contacts", ["--amount", "20", "--alert", "forecast:100%", "--cloud", "aws"], "--email", "notify nobody"),
    ("amount-missing", ["--alert", "actual:80%", "--email", "a@b.co"], "--amount", "required field is missing"),
]


@pytest.mark.parametrize(("args", "field", "message"), [c[1:] for c in FLAG_CASES], ids=[c[0] for c in FLAG_CASES])
def test_bad_flags_exit_2_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], field: str, message: str
) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(inventory_text([]))
    with pytest.raises(SystemExit) as exit_info:
        main(["budget", "set", "flagged", "-i", str(path), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"(flags): {field}:" in err, err
    assert message in err, err


def test_flags_and_inventory_build_the_same_model() -> None:
    flags = budget_from_flags(
        {
            "name": "guard",
            "cloud": "aws",
            "amount": "20",
            "alerts": ["actual:80%", "forecast:100%", "actual:5"],
            "emails": ["a@b.co"],
        }
    )
    declared = Budget.model_validate(
        {
            "name": "guard",
            "cloud": "aws",
            "amount": 20,
            "alerts": [
                {"type": "actual", "threshold": 80},
                {"type": "forecast", "threshold": 100},
                {"type": "actual", "threshold": 5, "unit": "absolute"},
            ],
            "emails": ["a@b.co"],
        }
    )
    assert flags == declared


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("actual:80%", {"type": "actual", "threshold": "80", "unit": "percent"}),
        ("forecasted:100%", {"type": "forecast", "threshold": "100", "unit": "percent"}),
        ("Forecast: 12.5", {"type": "forecast", "threshold": "12.5", "unit": "absolute"}),
    ],
)
def test_parse_alert(text: str, expected: dict[str, str]) -> None:
    assert parse_alert(text) == expected


def test_start_limits_follow_today() -> None:
    today = dt.date(2026, 11, 22)
    ok = Budget.model_validate(
        {**GOOD, "start": "2027-11-01"}, context={"today": today}
    )  # exactly 12 months ahead of this month
    assert ok.start == dt.date(2027, 11, 1)
    with pytest.raises(ValueError, match="more than 12 months ahead"):
        Budget.model_validate({**GOOD, "start": "2027-12-01"}, context={"today": today})


def test_schema_describes_budgets() -> None:
    from hybridctl.core.inventory.models import Inventory

    schema = Inventory.model_json_schema()
    budget = schema["$defs"]["Budget"]
    assert budget["properties"]["name"]["pattern"] == r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
    assert set(budget["properties"]["cloud"]["enum"]) == {"aws", "azure", "both"}
    assert "BudgetAlert" in schema["$defs"]


@pytest.mark.parametrize("command", ["delete", "show", "status", "list"])
def test_malformed_scope_flag_never_falls_back_to_the_subscription(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(inventory_text([]))
    name = [] if command in ("status", "list") else ["guard"]
    with pytest.raises(SystemExit) as exit_info:
        main(["budget", command, *name, "-i", str(path), "--scope", "rg:hybrid"])
    assert exit_info.value.code == 2
    assert "(flags): --scope: scope 'rg:hybrid' is neither" in capsys.readouterr().err


def test_to_decimal_reads_amounts_of_both_clouds_alike() -> None:
    # AWS sends amounts as text, ARM as JSON numbers; a missing or garbled one counts as 0.
    aws = json.loads((FIXTURES / "budget" / "aws_budget.json").read_text())["Budget"]
    azure = json.loads((FIXTURES / "budget" / "azure_budget.json").read_text())["budget"]["properties"]
    assert to_decimal(aws["CalculatedSpend"]["ActualSpend"]["Amount"]) == Decimal("17.25")
    assert to_decimal(aws["BudgetLimit"]["Amount"]) == Decimal(20)
    assert to_decimal(azure["amount"]) == Decimal(4000)
    assert to_decimal(7.5) == Decimal("7.5")
    assert to_decimal(None) == Decimal(0)
    assert to_decimal("n/a") == Decimal(0)
