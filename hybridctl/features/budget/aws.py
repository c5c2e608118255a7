"""AWS Budgets: one wrapper around every call, a pure parser, and changes turned into calls.

Reads: DescribeBudgets (paged) for the account, then for each budget of interest
DescribeNotificationsForBudget and DescribeSubscribersForNotification (both paged). The account
id comes from STS GetCallerIdentity. Writes follow the diff one change at a time:

=====================  ===============================================================
create-budget          CreateBudget with NotificationsWithSubscribers (one call)
update-budget          UpdateBudget with the budget as read, only the declared fields changed
delete-notification    DeleteNotification
update-notification    UpdateNotification, then Create/DeleteSubscriber for contact changes
update-contacts        CreateSubscriber / DeleteSubscriber
create-notification    CreateNotification with its subscribers
delete-budget          DeleteBudget (its notifications go with it)
=====================  ===============================================================

Calls go through :class:`hybridctl.backends.clouds.AwsApi`: botocore retries throttling
(``aws.retry_mode``, ``aws.max_attempts``); every failure becomes a
:class:`~hybridctl.core.errors.RemoteError` with a hint.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

from hybridctl.backends.calls import CallCounter
from hybridctl.backends.clouds import AwsApi, AwsCallError, Hints
from hybridctl.core.inventory.budget_rules import number, to_decimal
from hybridctl.core.inventory.models import AwsSettings
from hybridctl.features.budget.diff import Alarm, BudgetChange, BudgetState, Contacts, Notice, Spend, Target

PERIODS = {"MONTHLY": "monthly", "QUARTERLY": "quarterly", "ANNUALLY": "annual", "DAILY": "daily"}
TIME_UNITS = {v: k for k, v in PERIODS.items()}
KINDS = {"ACTUAL": "actual", "FORECASTED": "forecast"}
NOTIFICATION_TYPES = {v: k for k, v in KINDS.items()}
UNITS = {"PERCENTAGE": "percent", "ABSOLUTE_VALUE": "absolute"}
THRESHOLD_TYPES = {v: k for k, v in UNITS.items()}
OPERATORS = {"GREATER_THAN": "gt", "LESS_THAN": "lt", "EQUAL_TO": "eq"}
COMPARISONS = {v: k for k, v in OPERATORS.items()}
MAX_SUBSCRIBERS = 11  # 10 email + 1 SNS per notification
# Output-only members of the Budget shape: never sent back in UpdateBudget.
OUTPUT_ONLY = frozenset({"CalculatedSpend", "LastUpdatedTime", "HealthStatus"})

# Budgets is a global service: AWS serves it from us-east-1 whatever the caller's region.
BUDGETS_REGION = "us-east-1"
HINTS = Hints(
    permission="grant the identity budgets:ViewBudget and budgets:ModifyBudget (docs/budgets.md)",
    rerun="run the command again",
    limits="docs/budgets.md lists the limits",
)


# -- pure: API shapes <-> state ---------------------------------------------------------------------


def to_date(value: Any) -> dt.date | None:
    """A TimePeriod bound (datetime from botocore, ISO text or epoch seconds from a fixture) as a UTC date."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).date()
    return to_date(dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def parse_alarm(notification: dict[str, Any]) -> Alarm:
    return Alarm(
        kind=KINDS.get(str(notification.get("NotificationType")), str(notification.get("NotificationType")).lower()),
        threshold=to_decimal(notification.get("Threshold", 0)),
        unit=UNITS.get(str(notification.get("ThresholdType") or "PERCENTAGE"), "percent"),
        operator=OPERATORS.get(str(notification.get("ComparisonOperator")), "gt"),
    )


def parse_contacts(subscribers: Iterable[dict[str, Any]]) -> Contacts:
    emails = [str(s["Address"]) for s in subscribers if s.get("SubscriptionType") == "EMAIL"]
    topics = [str(s["Address"]) for s in subscribers if s.get("SubscriptionType") == "SNS"]
    return Contacts(emails=tuple(emails), sns_topics=tuple(topics))


def parse_budget(
    raw: dict[str, Any], notifications: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]
) -> BudgetState:
    """A DescribeBudgets item plus its (notification, subscribers) pairs, as cloud-neutral state."""
    limit = raw.get("BudgetLimit") or {}
    spend = raw.get("CalculatedSpend") or {}
    actual = spend.get("ActualSpend") or {}
    forecast = spend.get("ForecastedSpend")
    notices = tuple(
        Notice(parse_alarm(n), parse_contacts(subs), True, "", n.get("NotificationState")) for n, subs in notifications
    )
    unit = str(limit.get("Unit") or "USD")
    return BudgetState(
        target=Target("aws", "account", str(raw["BudgetName"])),
        amount=to_decimal(limit.get("Amount", 0)),
        currency=unit,
        period=PERIODS.get(str(raw.get("TimeUnit")), str(raw.get("TimeUnit")).lower()),
        start=to_date((raw.get("TimePeriod") or {}).get("Start")),
        notices=notices,
        kind=str(raw.get("BudgetType") or "COST"),
        spend=Spend(
            actual=to_decimal(actual.get("Amount", 0)),
            forecast=to_decimal(forecast.get("Amount", 0)) if forecast else None,
            unit=str(actual.get("Unit") or unit),
        )
        if spend
        else None,
        raw=raw,
    )


def notification_of(alarm: Alarm) -> dict[str, Any]:
    """The Notification structure AWS identifies a notification by."""
    return {
        "NotificationType": NOTIFICATION_TYPES[alarm.kind],
        "ComparisonOperator": COMPARISONS.get(alarm.operator, "GREATER_THAN"),
        "Threshold": float(alarm.threshold),
        "ThresholdType": THRESHOLD_TYPES[alarm.unit],
    }


def subscribers_of(contacts: Contacts) -> list[dict[str, str]]:
    return [{"SubscriptionType": "EMAIL", "Address": e} for e in contacts.emails] + [
        {"SubscriptionType": "SNS", "Address": t} for t in contacts.sns_topics
    ]


def _start_time(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def budget_body(state: BudgetState) -> dict[str, Any]:
    """CreateBudget's Budget for a declared state."""
    body: dict[str, Any] = {
        "BudgetName": state.target.name,
        "BudgetLimit": {"Amount": number(state.amount), "Unit": state.currency or "USD"},
        "TimeUnit": TIME_UNITS[state.period],
        "BudgetType": "COST",
    }
    if state.start is not None:
        body["TimePeriod"] = {"Start": _start_time(state.start)}
    return body


def updated_budget(actual: BudgetState, desired: BudgetState, members: Collection[str]) -> dict[str, Any]:
    """UpdateBudget's NewBudget: the budget as read (input members only), declared fields replaced.

    UpdateBudget replaces the whole budget, so everything hybridctl does not manage (cost types,
    filters, the end date) is sent back as it was.
    """
    raw = copy.deepcopy(actual.raw or {})
    body = {k: v for k, v in raw.items() if k in members and k not in OUTPUT_ONLY}
    body["BudgetName"] = actual.target.name
    body["BudgetLimit"] = {"Amount": number(desired.amount), "Unit": desired.currency or "USD"}
    body["TimeUnit"] = TIME_UNITS[desired.period]
    body.setdefault("BudgetType", "COST")
    if desired.start is not None:
        period = dict(body.get("TimePeriod") or {})
        period["Start"] = _start_time(desired.start)
        body["TimePeriod"] = period
    return body


def subscriber_steps(before: Contacts, after: Contacts) -> list[tuple[str, dict[str, str]]]:
    """("create"|"delete", subscriber) steps, in an order that never breaks AWS's 1..11 bounds."""
    have = subscribers_of(before)
    want = subscribers_of(after)
    adds = [s for s in want if s not in have]
    drops = [s for s in have if s not in want]
    creates = [("create", s) for s in adds]
    deletes = [("delete", s) for s in drops]
    # Adding first keeps at least one subscriber; deleting first keeps within the maximum.
    if len(have) + len(adds) > MAX_SUBSCRIBERS:
        return deletes + creates
    return creates + deletes


# -- the adapter ------------------------------------------------------------------------------------


class AwsBudgets:
    """Budgets of the AWS account the configured credentials belong to."""

    cloud = "aws"

    def __init__(self, settings: AwsSettings, counter: CallCounter | None = None) -> None:
        self.settings = settings
        self.counter = counter or CallCounter()
        self.api = AwsApi(settings, hints=HINTS, target="aws budgets", on_call=self.counter.add)
        self._account: str | None = None

    # -- the one call wrapper ----------------------------------------------------------------------

    def _region(self, service: str) -> str:
        return BUDGETS_REGION if service == "budgets" else (self.settings.region or BUDGETS_REGION)

    def call(self, op: str, service: str = "budgets", **kwargs: Any) -> dict[str, Any]:
        return self.api.call(service, op, self._region(service), **kwargs)

    def pages(self, op: str, key: str, *, missing_ok: bool = False, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a paged read. ``missing_ok``: NotFoundException means none (DescribeBudgets
        answers it for an account without budgets)."""
        try:
            return self.api.pages("budgets", op, key, BUDGETS_REGION, **kwargs)
        except AwsCallError as error:
            if missing_ok and error.code == "NotFoundException":
                return []
            raise

    def account_id(self) -> str:
        if self._account is None:
            self._account = str(self.call("get_caller_identity", service="sts")["Account"])
        return self._account

    # -- reads -------------------------------------------------------------------------------------

    def _notifications(self, name: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        account = self.account_id()
        out = []
        for notification in self.pages(
            "describe_notifications_for_budget", "Notifications", missing_ok=True, AccountId=account, BudgetName=name
        ):
            identity = {k: v for k, v in notification.items() if k != "NotificationState"}
            subscribers = self.pages(
                "describe_subscribers_for_notification",
                "Subscribers",
                missing_ok=True,
                AccountId=account,
                BudgetName=name,
                Notification=identity,
            )
            out.append((notification, subscribers))
        return out

    def read(self, names: Collection[str] | None = None) -> dict[str, BudgetState]:
        """The account's budgets (only ``names`` when given), with notifications and subscribers."""
        account = self.account_id()
        out: dict[str, BudgetState] = {}
        for raw in self.pages("describe_budgets", "Budgets", missing_ok=True, AccountId=account):
            name = str(raw.get("BudgetName"))
            if names is not None and name not in names:
                continue
            out[name] = parse_budget(raw, self._notifications(name))
        return out

    # -- writes ------------------------------------------------------------------------------------

    def apply(self, desired: BudgetState | None, actual: BudgetState | None, changes: Iterable[BudgetChange]) -> None:
        """Make each change with its calls, in order; the first failure raises RemoteError."""
        account = self.account_id()
        for change in changes:
            name = change.target.name
            common = {"AccountId": account, "BudgetName": name}
            if change.action == "create-budget" and desired is not None:
                self.call(
                    "create_budget",
                    AccountId=account,
                    Budget=budget_body(desired),
                    NotificationsWithSubscribers=[
                        {"Notification": notification_of(n.alarm), "Subscribers": subscribers_of(n.contacts)}
                        for n in desired.notices
                    ],
                )
            elif change.action == "update-budget" and desired is not None and actual is not None:
                members = self.api.client("budgets", BUDGETS_REGION).meta.service_model.shape_for("Budget").members
                self.call("update_budget", AccountId=account, NewBudget=updated_budget(actual, desired, members))
            elif change.action == "delete-notification" and change.before is not None:
                self.call("delete_notification", **common, Notification=notification_of(change.before.alarm))
            elif change.action == "update-notification" and change.before and change.after:
                old = notification_of(change.before.alarm)
                new = notification_of(change.after.alarm)
                self.call("update_notification", **common, OldNotification=old, NewNotification=new)
                self._subscribers(common, new, change.before.contacts, change.after.contacts)
            elif change.action == "update-contacts" and change.before and change.after:
                identity = notification_of(change.after.alarm)
                self._subscribers(common, identity, change.before.contacts, change.after.contacts)
            elif change.action == "create-notification" and change.after is not None:
                self.call(
                    "create_notification",
                    **common,
                    Notification=notification_of(change.after.alarm),
                    Subscribers=subscribers_of(change.after.contacts),
                )
            elif change.action == "delete-budget":
                self.call("delete_budget", **common)

    def _subscribers(
        self, common: dict[str, str], notification: dict[str, Any], before: Contacts, after: Contacts
    ) -> None:
        for step, subscriber in subscriber_steps(before, after):
            op = "create_subscriber" if step == "create" else "delete_subscriber"
            self.call(op, **common, Notification=notification, Subscriber=subscriber)

    def close(self) -> None:
        self.api.close()
