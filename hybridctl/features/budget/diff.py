"""Cloud-neutral budget state and the pure diff between what is declared and what a cloud has.

Both adapters parse what their API returns into :class:`BudgetState`; :func:`desired_state`
turns a declared :class:`~hybridctl.core.inventory.budgets.Budget` into the same shape for one cloud
target; :func:`diff_budget` compares them and lists the changes, notifications one by one.
Nothing here does I/O.

Rules the diff keeps (docs/budgets.md):

- No change is ever listed for something already right: AWS UpdateBudget resets the calculated
  spend until new billing data arrives, so a no-op update is not harmless.
- Only what hybridctl declares is compared: the limit, the currency (AWS), the period, the start
  date when declared, and each notification's type, threshold, unit, operator and contacts.
  Cost types, filters and end dates someone set by hand stay as they are.
- A notification is matched by its alarm (type, threshold, unit, operator), as AWS identifies
  it. Unmatched declared and cloud notifications are paired (same type and unit first) and the
  pair becomes one update, so changing one threshold is one UpdateNotification, not a delete and
  a create.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from hybridctl.core.inventory.budget_rules import number
from hybridctl.core.inventory.budgets import Budget, BudgetAlert

OPERATOR_SYMBOLS = {"gt": ">", "ge": ">=", "eq": "=", "lt": "<"}
ACTION_ORDER = (
    "blocked",
    "create-budget",
    "update-budget",
    "delete-notification",
    "update-notification",
    "update-contacts",
    "create-notification",
    "delete-budget",
)
SYMBOLS = {
    "create-budget": "+",
    "update-budget": "~",
    "delete-notification": "-",
    "update-notification": "~",
    "update-contacts": "~",
    "create-notification": "+",
    "delete-budget": "-",
    "blocked": "!",
}


@dataclass(frozen=True, order=True)
class Target:
    """One cloud object: the AWS account's budget NAME, or an Azure scope's budget NAME."""

    cloud: str  # aws | azure
    scope: str  # aws: account; azure: subscription | resource-group:<name>
    name: str

    def label(self) -> str:
        if self.cloud == "aws":
            return f"aws/{self.name}"
        kind, _, rg = self.scope.partition(":")
        return f"azure/rg:{rg}/{self.name}" if kind == "resource-group" else f"azure/{self.name}"


@dataclass(frozen=True)
class Alarm:
    """When a notification fires, the part AWS identifies a notification by."""

    kind: str  # actual | forecast
    threshold: Decimal
    unit: str = "percent"  # percent | absolute
    operator: str = "gt"  # gt | ge | eq | lt

    def label(self) -> str:
        suffix = "%" if self.unit == "percent" else ""
        return f"{self.kind} {OPERATOR_SYMBOLS.get(self.operator, self.operator)} {number(self.threshold)}{suffix}"

    def limit(self, amount: Decimal) -> Decimal:
        """The threshold as an amount of money."""
        return amount * self.threshold / 100 if self.unit == "percent" else self.threshold

    def crossed(self, amount: Decimal, spend: Decimal) -> bool:
        limit = self.limit(amount)
        return {
            "gt": spend > limit,
            "ge": spend >= limit,
            "eq": spend == limit,
            "lt": spend < limit,
        }.get(self.operator, False)


def _norm(values: Sequence[str], fold: bool) -> frozenset[str]:
    return frozenset(v.lower() for v in values) if fold else frozenset(values)


@dataclass(frozen=True)
class Contacts:
    """Who a notification tells. Role names and action group ids compare case-insensitively (ARM)."""

    emails: tuple[str, ...] = ()
    sns_topics: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    action_groups: tuple[str, ...] = ()

    def key(self) -> tuple[frozenset[str], ...]:
        return (
            _norm(self.emails, False),
            _norm(self.sns_topics, False),
            _norm(self.roles, True),
            _norm(self.action_groups, True),
        )

    def same(self, other: Contacts) -> bool:
        return self.key() == other.key()

    def changes_from(self, old: Contacts) -> list[str]:
        """'+x' / '-y' items turning ``old`` into self (for people)."""
        out: list[str] = []
        for mine, theirs, fold in (
            (self.emails, old.emails, False),
            (self.sns_topics, old.sns_topics, False),
            (self.roles, old.roles, True),
            (self.action_groups, old.action_groups, True),
        ):
            have = _norm(theirs, fold)
            want = _norm(mine, fold)
            out += [f"+{v}" for v in mine if (v.lower() if fold else v) not in have]
            out += [f"-{v}" for v in theirs if (v.lower() if fold else v) not in want]
        return out


@dataclass(frozen=True)
class Notice:
    """One notification of a budget."""

    alarm: Alarm
    contacts: Contacts
    enabled: bool = True
    key: str = ""  # Azure: the notification's name in the budget's notifications map
    state: str | None = field(default=None, compare=False)  # AWS NotificationState (ALARM / OK)

    def same(self, other: Notice) -> bool:
        return self.alarm == other.alarm and self.enabled == other.enabled and self.contacts.same(other.contacts)


@dataclass(frozen=True)
class Spend:
    """What the cloud computed so far for the current period."""

    actual: Decimal
    forecast: Decimal | None
    unit: str


@dataclass(frozen=True)
class BudgetState:
    """A budget as declared for one target, or as a cloud reports it."""

    target: Target
    amount: Decimal
    currency: str | None  # AWS: the limit's unit; Azure: not stored (the billing currency)
    period: str  # monthly | quarterly | annual (anything else as the cloud names it)
    start: dt.date | None
    notices: tuple[Notice, ...] = ()
    kind: str = "COST"  # AWS BudgetType
    spend: Spend | None = field(default=None, compare=False)
    etag: str | None = field(default=None, compare=False)
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class BudgetChange:
    """One thing to do to one target; AWS makes each a call or a few, Azure folds them into one PUT."""

    action: str
    target: Target
    before: Notice | None = None
    after: Notice | None = None
    fields: tuple[tuple[str, str, str], ...] = ()  # (field, cloud value, declared value)
    why: str = ""

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.action]

    def text(self) -> str:
        if self.action == "update-budget":
            return ", ".join(f"{name} {old} -> {new}" for name, old, new in self.fields)
        if self.action == "update-notification" and self.before and self.after:
            text = f"{self.before.alarm.label()} -> {self.after.alarm.label()}"
            extra = self.after.contacts.changes_from(self.before.contacts)
            return text + (f" ({' '.join(extra)})" if extra else "")
        if self.action == "update-contacts" and self.before and self.after:
            extra = self.after.contacts.changes_from(self.before.contacts)
            if self.before.enabled != self.after.enabled:
                extra.append("enable")
            return f"{self.after.alarm.label()}: {' '.join(extra)}"
        notice = self.after or self.before
        if notice is not None:
            return notice.alarm.label()
        return self.why


# -- declared -> state ----------------------------------------------------------------------------


def azure_notification_key(alarm: Alarm) -> str:
    """The name the Azure portal would give: Actual_GreaterThan_80_Percent."""
    kind = "Actual" if alarm.kind == "actual" else "Forecasted"
    operator = {"gt": "GreaterThan", "ge": "GreaterThanOrEqualTo", "eq": "EqualTo"}.get(alarm.operator, "GreaterThan")
    return f"{kind}_{operator}_{number(alarm.threshold).replace('.', '_')}_Percent"


def alarm_of(alert: BudgetAlert) -> Alarm:
    return Alarm(alert.type, alert.threshold, alert.unit, "gt")


def targets_of(budget: Budget) -> list[Target]:
    return [Target(cloud, "account" if cloud == "aws" else budget.scope, budget.name) for cloud in budget.clouds]


def desired_state(budget: Budget, target: Target) -> BudgetState:
    """What the declaration means for one cloud target."""
    if target.cloud == "aws":
        contacts = Contacts(emails=tuple(budget.emails), sns_topics=tuple(budget.sns_topics))
    else:
        contacts = Contacts(
            emails=tuple(budget.emails), roles=tuple(budget.roles), action_groups=tuple(budget.action_groups)
        )
    notices = []
    for alert in budget.resolved_alerts():
        alarm = alarm_of(alert)
        key = azure_notification_key(alarm) if target.cloud == "azure" else ""
        notices.append(Notice(alarm, contacts, True, key))
    return BudgetState(
        target=target,
        amount=budget.amount,
        currency=budget.currency,
        period=budget.period,
        start=budget.start,
        notices=tuple(notices),
    )


# -- the diff -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeMatch:
    """How declared notifications line up with the cloud's."""

    kept: tuple[tuple[Notice, Notice], ...]  # (cloud, declared) with the same alarm
    paired: tuple[tuple[Notice, Notice], ...]  # (cloud, declared) to turn one into the other
    created: tuple[Notice, ...]
    deleted: tuple[Notice, ...]


def match_notices(desired: Sequence[Notice], actual: Sequence[Notice]) -> NoticeMatch:
    kept: list[tuple[Notice, Notice]] = []
    left_actual = list(actual)
    left_desired: list[Notice] = []
    for want in desired:
        found = next((have for have in left_actual if have.alarm == want.alarm), None)
        if found is None:
            left_desired.append(want)
            continue
        left_actual.remove(found)
        kept.append((found, want))
    paired: list[tuple[Notice, Notice]] = []
    # Same type and unit first, in threshold order: 80% -> 90% stays "the actual percent alert".
    for want in sorted(left_desired, key=lambda n: n.alarm.threshold):
        found = next(
            (
                have
                for have in sorted(left_actual, key=lambda n: n.alarm.threshold)
                if (have.alarm.kind, have.alarm.unit) == (want.alarm.kind, want.alarm.unit)
            ),
            None,
        )
        if found is not None:
            left_actual.remove(found)
            paired.append((found, want))
    left_desired = [n for n in left_desired if all(n is not w for _, w in paired)]
    while left_desired and left_actual:
        paired.append((left_actual.pop(0), left_desired.pop(0)))
    return NoticeMatch(tuple(kept), tuple(paired), tuple(left_desired), tuple(left_actual))


def final_notices(desired: BudgetState, actual: BudgetState | None) -> tuple[Notice, ...]:
    """The notifications a budget should end up with, keeping the cloud's names for kept ones."""
    if actual is None:
        return desired.notices
    match = match_notices(desired.notices, actual.notices)
    out = [replace(want, key=have.key or want.key) for have, want in match.kept]
    taken = {n.key.lower() for n in out}
    for want in [w for _, w in match.paired] + list(match.created):
        key = want.key
        suffix = 2
        while key and key.lower() in taken:
            key = f"{want.key}_{suffix}"
            suffix += 1
        taken.add(key.lower())
        out.append(replace(want, key=key))
    return tuple(out)


def _date(value: dt.date | None) -> str:
    return value.isoformat() if value else "-"


def diff_budget(desired: BudgetState, actual: BudgetState | None) -> list[BudgetChange]:
    """The changes turning ``actual`` (None: missing) into ``desired``; empty when in sync."""
    target = desired.target
    if actual is None:
        return [BudgetChange("create-budget", target, why=f"{len(desired.notices)} alerts")]
    if actual.kind != "COST":
        return [
            BudgetChange(
                "blocked",
                target,
                why=f"a {actual.kind} budget has this name; hybridctl manages cost budgets: rename one of them",
            )
        ]
    changes: list[BudgetChange] = []
    fields: list[tuple[str, str, str]] = []
    if actual.amount != desired.amount:
        fields.append(("amount", number(actual.amount), number(desired.amount)))
    if target.cloud == "aws" and actual.currency != desired.currency:
        fields.append(("currency", str(actual.currency), str(desired.currency)))
    if actual.period != desired.period:
        fields.append(("period", actual.period, desired.period))
    if desired.start is not None and actual.start != desired.start:
        if target.cloud == "azure":
            changes.append(
                BudgetChange(
                    "blocked",
                    target,
                    fields=(("start", _date(actual.start), _date(desired.start)),),
                    why="Azure cannot change a budget's start date: run `hybridctl budget delete "
                    f"{target.name} --cloud azure` and set it again, or declare start {_date(actual.start)}",
                )
            )
        else:
            fields.append(("start", _date(actual.start), _date(desired.start)))
    if fields:
        changes.append(BudgetChange("update-budget", target, fields=tuple(fields)))
    match = match_notices(desired.notices, actual.notices)
    changes += [BudgetChange("delete-notification", target, before=have) for have in match.deleted]
    changes += [BudgetChange("update-notification", target, before=have, after=want) for have, want in match.paired]
    changes += [
        BudgetChange("update-contacts", target, before=have, after=replace(want, key=have.key or want.key))
        for have, want in match.kept
        if not have.same(want)
    ]
    changes += [BudgetChange("create-notification", target, after=want) for want in match.created]
    return changes


def delete_changes(actual: BudgetState | None, target: Target) -> list[BudgetChange]:
    if actual is None:
        return []
    return [BudgetChange("delete-budget", target, why=f"{len(actual.notices)} alerts go with it")]


def blocked(changes: Sequence[BudgetChange]) -> list[BudgetChange]:
    return [c for c in changes if c.action == "blocked"]
