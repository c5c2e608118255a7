"""Microsoft.Consumption/budgets: validation as the Consumption RP does it, and rendering.

The Consumption RP reports validation failures with the HTTP status as the error code
(``{"error": {"code": "400", "message": ...}}``); we keep that shape. Spend is not computed
from usage: the lab or a test seeds ``currentSpend`` / ``forecastSpend`` through the admin API.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ArmError

BUDGET = "Microsoft.Consumption/budgets"
TIME_GRAINS = ("Monthly", "Quarterly", "Annually", "BillingMonth", "BillingQuarter", "BillingAnnual")
OPERATORS = ("EqualTo", "GreaterThan", "GreaterThanOrEqualTo")
THRESHOLD_TYPES = ("Actual", "Forecasted")
MAX_NOTIFICATIONS = 5
EARLIEST_START = dt.date(2017, 6, 1)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ACTION_GROUP = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.insights/actiongroups/[^/]+$", re.I
)


def _invalid(message: str) -> ArmError:
    return ArmError(400, "400", message)


def new_etag() -> str:
    # Budgets carry their eTag in the body, quoted, like the Consumption RP's '"1d34d016a593709"'.
    return f'"{uuid.uuid4().hex[:15]}"'


def _canonical(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if isinstance(value, str):
        for option in allowed:
            if option.lower() == value.lower():
                return option
    raise _invalid(f"Invalid value {value!r} for {field}. Allowed values are: {', '.join(allowed)}.")


def _number(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _invalid(f"{field} must be a number.")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _invalid(f"{field} must be a number.") from None
    if not number.is_finite():
        raise _invalid(f"{field} must be a number.")
    return number


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _parse_date(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str) or not value:
        raise _invalid(f"{field} is required and must be a date, for example 2024-05-01T00:00:00Z.")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(f"{field} '{value}' is not a valid date.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _format_date(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    return dt.date(day.year + index // 12, index % 12 + 1, 1)


def _period_start(today: dt.date, grain: str) -> dt.date:
    if grain in ("Quarterly", "BillingQuarter"):
        return dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    if grain in ("Annually", "BillingAnnual"):
        return dt.date(today.year, 1, 1)
    return dt.date(today.year, today.month, 1)


def _string_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{field} must be a list of strings.")
    return list(value)


def _notification(key: str, raw: Any) -> dict[str, Any]:
    where = f"notification '{key}'"
    if not isinstance(raw, dict):
        raise _invalid(f"{where} must be an object.")
    enabled = raw.get("enabled")
    if not isinstance(enabled, bool):
        raise _invalid(f"enabled is required for {where} and must be true or false.")
    operator = _canonical(raw.get("operator"), OPERATORS, f"operator of {where}")
    threshold = _number(raw.get("threshold"), f"threshold of {where}")
    if not Decimal(0) < threshold <= Decimal(1000):
        raise _invalid(
            f"Threshold of {where} must be greater than 0 and less than or equal to 1000 (a percentage of "
            f"the budget amount); got {threshold}."
        )
    threshold_type = _canonical(raw.get("thresholdType", "Actual"), THRESHOLD_TYPES, f"thresholdType of {where}")
    emails = _string_list(raw.get("contactEmails"), f"contactEmails of {where}")
    for email in emails:
        if not EMAIL.match(email):
            raise _invalid(f"Contact email '{email}' of {where} is not a valid email address.")
    roles = _string_list(raw.get("contactRoles"), f"contactRoles of {where}")
    groups = _string_list(raw.get("contactGroups"), f"contactGroups of {where}")
    for group in groups:
        if not ACTION_GROUP.match(group):
            raise _invalid(
                f"Contact group '{group}' of {where} must be the fully qualified resource id of an action group."
            )
    if not emails and not groups:
        raise _invalid(
            f"At least one contact email or contact group must be specified for {where} at the Subscription or "
            "Resource Group scope."
        )
    out: dict[str, Any] = {
        "enabled": enabled,
        "operator": operator,
        "threshold": _json_number(threshold),
        "contactEmails": emails,
        "contactRoles": roles,
        "contactGroups": groups,
        "thresholdType": threshold_type,
    }
    if raw.get("locale") is not None:
        out["locale"] = raw["locale"]
    return out


def normalize_budget(
    name: str, body: dict[str, Any], existing: dict[str, Any] | None, today: dt.date
) -> dict[str, Any]:
    """The properties to store for a budget PUT, or the RP's 400."""
    props = body.get("properties")
    if not isinstance(props, dict):
        raise _invalid(f"Budget {name}: properties are required.")
    category = _canonical(props.get("category"), ("Cost",), "category")
    amount = _number(props.get("amount"), "amount")
    if amount <= 0:
        raise _invalid(f"Budget amount must be greater than 0; got {amount}.")
    grain = _canonical(props.get("timeGrain"), TIME_GRAINS, "timeGrain")
    period = props.get("timePeriod")
    if not isinstance(period, dict):
        raise _invalid("timePeriod with a startDate is required.")
    start = _parse_date(period.get("startDate"), "timePeriod.startDate")
    if start.day != 1 or (start.hour, start.minute, start.second) != (0, 0, 0):
        raise _invalid("The start date must be first of the month.")
    end = (
        _parse_date(period["endDate"], "timePeriod.endDate")
        if period.get("endDate")
        else start.replace(year=start.year + 10)
    )
    if end <= start:
        raise _invalid("The end date of the budget must be later than its start date.")
    old_start = ((existing or {}).get("properties", {}).get("timePeriod") or {}).get("startDate")
    if existing is not None and old_start and _parse_date(old_start, "startDate") != start:
        raise _invalid("Start date of budgets cannot be updated. Please delete and create a new budget.")
    if existing is None:
        if start.date() < EARLIEST_START:
            raise _invalid("Budget start date must be on or after June 1, 2017.")
        if start.date() < _period_start(today, grain):
            raise _invalid(
                f"Start date for {grain} budgets should not be prior to the current time grain period "
                f"({_period_start(today, grain).isoformat()})."
            )
        if start.date() > _add_months(dt.date(today.year, today.month, 1), 12):
            raise _invalid("Future start date should not be more than twelve months.")
    raw_notifications = props.get("notifications") or {}
    if not isinstance(raw_notifications, dict):
        raise _invalid("notifications must be an object keyed by notification name.")
    if len(raw_notifications) > MAX_NOTIFICATIONS:
        raise _invalid(
            f"Budget can have up to {MAX_NOTIFICATIONS} notifications; {len(raw_notifications)} were given."
        )
    out: dict[str, Any] = {
        "category": category,
        "amount": _json_number(amount),
        "timeGrain": grain,
        "timePeriod": {"startDate": _format_date(start), "endDate": _format_date(end)},
        "notifications": {key: _notification(key, raw) for key, raw in raw_notifications.items()},
    }
    if props.get("filter") is not None:
        if not isinstance(props["filter"], dict):
            raise _invalid("filter must be an object.")
        out["filter"] = copy.deepcopy(props["filter"])
    return out


def render(body: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in body.items() if not k.startswith("_")}
    spend = body.get("_spend", {})
    unit = str(spend.get("unit", "USD"))
    props = out.setdefault("properties", {})
    props["currentSpend"] = {"amount": spend.get("current", 0), "unit": unit}
    props["forecastSpend"] = {"amount": spend.get("forecast", 0), "unit": unit}
    return out
