"""The ``budget`` command's flags: one budget built from the command line, checked like the inventory's.

The rules themselves (limits, names, thresholds, start dates, contacts) are the inventory's
(:mod:`hybridctl.core.inventory.budget_rules`); this reads flags into the same mapping and names
each problem by its flag (``--alert #2 threshold``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from hybridctl.core.errors import InputError, Problem
from hybridctl.core.inventory.budgets import Budget
from hybridctl.core.inventory.problems import fix_for, model_loc

# -- flags ----------------------------------------------------------------------------------------

FLAG_NAMES: dict[str, str] = {
    "name": "NAME",
    "cloud": "--cloud",
    "amount": "--amount",
    "currency": "--currency",
    "period": "--period",
    "scope": "--scope",
    "preset": "--preset",
    "idle": "--idle",
    "alerts": "--alert",
    "emails": "--email",
    "sns_topics": "--sns-topic",
    "roles": "--role",
    "action_groups": "--action-group",
    "start": "--start",
}
ALERT_FIX = "write TYPE:THRESHOLD, e.g. actual:80% or forecast:100% (percent of the amount) or actual:5 (an amount)"
_ALERT_TYPES = {"actual": "actual", "forecast": "forecast", "forecasted": "forecast"}


def flag_field(loc: Sequence[str | int]) -> str:
    """``('alerts', 1, 'threshold')`` -> ``--alert #2 threshold``."""
    if not loc:
        return "(flags)"
    head = str(loc[0])
    parts = [FLAG_NAMES.get(head, head)]
    for item in loc[1:]:
        parts.append(f"#{item + 1}" if isinstance(item, int) else str(item))
    return " ".join(parts)


def parse_alert(text: str) -> dict[str, str]:
    """``actual:80%`` -> ``{type: actual, threshold: 80, unit: percent}``; ValueError if malformed."""
    kind, sep, value = text.strip().partition(":")
    if not sep or kind.strip().lower() not in _ALERT_TYPES:
        raise ValueError(f"'{text}' is not TYPE:THRESHOLD with TYPE actual or forecast")
    value = value.strip()
    unit = "percent" if value.endswith("%") else "absolute"
    value = value.removesuffix("%").strip()
    try:
        Decimal(value)
    except ArithmeticError:
        raise ValueError(f"'{text}': '{value}' is not a number") from None
    if not value or not Decimal(value).is_finite():
        raise ValueError(f"'{text}': '{value}' is not a number")
    return {"type": _ALERT_TYPES[kind.strip().lower()], "threshold": value, "unit": unit}


def budget_from_flags(flags: dict[str, Any], today: dt.date | None = None) -> Budget:
    """Build and validate a budget from command-line values (None = not given); InputError lists all problems."""
    problems: list[Problem] = []
    data: dict[str, Any] = {k: v for k, v in flags.items() if v is not None and k != "alerts"}
    alerts = []
    for index, text in enumerate(flags.get("alerts") or []):
        try:
            alerts.append(parse_alert(text))
        except ValueError as error:
            problems.append(Problem("(flags)", flag_field(("alerts", index)), str(error), ALERT_FIX))
    if alerts:
        data["alerts"] = alerts
    try:
        budget = Budget.model_validate(data, context={"today": today} if today else None)
    except ValidationError as error:
        for item in error.errors():
            loc = model_loc(item["loc"])
            ctx = item.get("ctx") or {}
            if isinstance(ctx.get("fix"), str):
                message, fix = str(item["msg"]), str(ctx["fix"])
            else:
                message, fix = fix_for(dict(item), item.get("input"))
            problems.append(Problem("(flags)", flag_field(loc), message, fix))
        raise InputError(problems) from None
    if problems:
        raise InputError(problems)
    return budget
