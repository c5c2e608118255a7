"""Cost Explorer: GetCostAndUsage, GetCostAndUsageWithResources and GetCostForecast over seeded spend.

moto 5.2 answers GetCostAndUsage from a queue of canned results keyed by the request body (set
through ``/moto-api/static/ce/cost-and-usage-results``): it never filters, groups or sums, and it
has no forecast. Here the lab seeds *line items* (day, service, resource, region, tags, amount;
:func:`seed_usage`) and the three actions compute their answers from them as the Cost Explorer
API reference describes:

- ``TimePeriod`` Start inclusive, End exclusive, ``Start`` before ``End``
  (``ValidationException`` otherwise); granularity ``DAILY`` or ``MONTHLY``; any of the cost
  metrics (all read the same seeded amount); at most two ``GroupBy`` of type ``DIMENSION``
  (``SERVICE``, ``REGION``, ``LINKED_ACCOUNT``, ``USAGE_TYPE``; ``RESOURCE_ID`` only with
  resources) or ``TAG`` (group key ``key$value``, ``key$`` for untagged); ``Filter`` with
  ``Dimensions`` / ``Tags`` / ``And`` / ``Or`` / ``Not``.
- ``GetCostAndUsageWithResources``: ``Filter`` is required and the period must lie within the
  last 14 days, as AWS keeps resource-level data for 14 days only.
- ``GetCostForecast``: Start today or later; the forecast per day is the mean of the last
  seven seeded days before today (``DataUnavailableException`` without any), with a +/-10%
  prediction interval.

When no line item was ever seeded, GetCostAndUsage falls back to moto's own queue.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from copy import deepcopy
from decimal import Decimal, InvalidOperation
from typing import Any

from moto.ce.responses import CostExplorerResponse
from moto.core.exceptions import JsonRESTError

from .backends import DEFAULT_ACCOUNT_ID, STATE_LOCK

DIMENSION_FIELDS = {
    "SERVICE": "service",
    "REGION": "region",
    "LINKED_ACCOUNT": "account",
    "USAGE_TYPE": "usage_type",
    "RESOURCE_ID": "resource_id",
}
METRICS = (
    "AmortizedCost",
    "BlendedCost",
    "NetAmortizedCost",
    "NetUnblendedCost",
    "NormalizedUsageAmount",
    "UnblendedCost",
    "UsageQuantity",
)
FORECAST_METRICS = ("AMORTIZED_COST", "BLENDED_COST", "NET_AMORTIZED_COST", "NET_UNBLENDED_COST", "UNBLENDED_COST")
RESOURCE_DAYS = 14
FORECAST_WINDOW_DAYS = 7

# account id -> seeded line items
_USAGE: dict[str, list[dict[str, Any]]] = {}
_TODAY: list[dt.date] = []  # a pinned "today" (tests of month boundaries); empty: the clock's


class ValidationException(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)


class DataUnavailableException(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("DataUnavailableException", message)


def today() -> dt.date:
    return _TODAY[0] if _TODAY else dt.datetime.now(dt.UTC).date()


def pin_today(day: dt.date | None) -> None:
    _TODAY.clear()
    if day is not None:
        _TODAY.append(day)


def _item(raw: dict[str, Any], account_id: str) -> dict[str, Any]:
    try:
        amount = Decimal(str(raw["amount"]))
    except (InvalidOperation, KeyError):
        raise ValueError(f"line item needs a numeric amount: {raw!r}") from None
    return {
        "date": dt.date.fromisoformat(str(raw["date"])),
        "amount": amount,
        "service": str(raw.get("service") or "Amazon Elastic Compute Cloud - Compute"),
        "region": str(raw.get("region") or "us-east-1"),
        "account": account_id,
        "usage_type": str(raw.get("usage_type") or ""),
        "resource_id": str(raw.get("resource_id") or ""),
        "tags": {str(k): str(v) for k, v in (raw.get("tags") or {}).items()},
    }


def seed_usage(items: list[dict[str, Any]], *, account_id: str = DEFAULT_ACCOUNT_ID) -> int:
    """Append billing line items: ``date``, ``amount`` (USD), ``service``, ``region``, ``resource_id``, ``tags``."""
    parsed = [_item(i, account_id) for i in items]
    with STATE_LOCK:
        _USAGE.setdefault(account_id, []).extend(parsed)
        return len(_USAGE[account_id])


def clear_usage(account_id: str | None = None) -> None:
    with STATE_LOCK:
        if account_id is None:
            _USAGE.clear()
        else:
            _USAGE.pop(account_id, None)


def _date(value: Any, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationException(f"{field}: the date {value!r} is not in the format yyyy-MM-dd") from None


def _period(params: dict[str, Any]) -> tuple[dt.date, dt.date]:
    window = params.get("TimePeriod") or {}
    start = _date(window.get("Start"), "TimePeriod.Start")
    end = _date(window.get("End"), "TimePeriod.End")
    if start >= end:
        raise ValidationException("Start date (and hour) should be before end date (and hour)")
    return start, end


def _matches(item: dict[str, Any], expression: dict[str, Any] | None) -> bool:
    if not expression:
        return True
    if "And" in expression:
        return all(_matches(item, e) for e in expression["And"])
    if "Or" in expression:
        return any(_matches(item, e) for e in expression["Or"])
    if "Not" in expression:
        return not _matches(item, expression["Not"])
    if "Dimensions" in expression:
        dim = expression["Dimensions"]
        field = DIMENSION_FIELDS.get(str(dim.get("Key")))
        if field is None:
            raise ValidationException(f"Dimension {dim.get('Key')} is not allowed in this filter")
        return str(item[field]) in {str(v) for v in dim.get("Values") or []}
    if "Tags" in expression:
        tag = expression["Tags"]
        value = item["tags"].get(str(tag.get("Key")))
        values = tag.get("Values") or []
        if "ABSENT" in (tag.get("MatchOptions") or []):
            return value is None or value in values
        return value is not None and (not values or value in values)
    raise ValidationException("Filter expression must have one of And, Or, Not, Dimensions, Tags")


def _group_key(item: dict[str, Any], group: dict[str, Any]) -> str:
    if group.get("Type") == "TAG":
        key = str(group.get("Key"))
        return f"{key}${item['tags'].get(key, '')}"
    return str(item[DIMENSION_FIELDS[str(group.get("Key"))]])


def _check_groups(groups: list[dict[str, Any]], *, resources: bool) -> None:
    if len(groups) > 2:
        raise ValidationException("You can group by up to two dimensions or tags")
    for group in groups:
        kind, key = group.get("Type"), str(group.get("Key"))
        if kind == "TAG":
            continue
        if kind != "DIMENSION" or key not in DIMENSION_FIELDS:
            raise ValidationException(f"Group Definition dimension is invalid: {kind} {key}")
        if key == "RESOURCE_ID" and not resources:
            raise ValidationException(
                "Dimension RESOURCE_ID is not allowed. Use GetCostAndUsageWithResources for resource-level data"
            )


def _money(amount: Decimal) -> dict[str, str]:
    return {"Amount": format(amount.quantize(Decimal("0.0000000001")).normalize(), "f"), "Unit": "USD"}


def _buckets(start: dt.date, end: dt.date, granularity: str) -> list[tuple[dt.date, dt.date]]:
    out = []
    day = start
    while day < end:
        if granularity == "MONTHLY":
            following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        else:
            following = day + dt.timedelta(days=1)
        following = min(following, end)
        out.append((day, following))
        day = following
    return out


def cost_and_usage(params: dict[str, Any], account_id: str, *, resources: bool) -> dict[str, Any]:
    start, end = _period(params)
    granularity = str(params.get("Granularity") or "")
    if granularity not in ("DAILY", "MONTHLY"):
        raise ValidationException("Granularity must be DAILY or MONTHLY (HOURLY needs hourly data)")
    metrics = list(params.get("Metrics") or [])
    if not metrics or any(m not in METRICS for m in metrics):
        raise ValidationException(f"Metrics must be one or more of {', '.join(METRICS)}")
    groups = list(params.get("GroupBy") or [])
    _check_groups(groups, resources=resources)
    if resources:
        if not params.get("Filter"):
            raise ValidationException("Filter is required for GetCostAndUsageWithResources")
        if start < today() - dt.timedelta(days=RESOURCE_DAYS):
            raise ValidationException(
                f"Resource-level data is available for the last {RESOURCE_DAYS} days only: Start must be on or after "
                f"{(today() - dt.timedelta(days=RESOURCE_DAYS)).isoformat()}"
            )
    with STATE_LOCK:
        items = [i for i in _USAGE.get(account_id, []) if _matches(i, params.get("Filter"))]
    results = []
    for low, high in _buckets(start, end, granularity):
        inside = [i for i in items if low <= i["date"] < high]
        entry: dict[str, Any] = {
            "TimePeriod": {"Start": low.isoformat(), "End": high.isoformat()},
            "Total": {},
            "Groups": [],
            "Estimated": high > today(),
        }
        if groups:
            sums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
            for item in inside:
                sums[tuple(_group_key(item, g) for g in groups)] += item["amount"]
            entry["Groups"] = [
                {"Keys": list(keys), "Metrics": {m: _money(total) for m in metrics}}
                for keys, total in sorted(sums.items())
            ]
        else:
            total = sum((i["amount"] for i in inside), Decimal(0))
            entry["Total"] = {m: _money(total) for m in metrics}
        results.append(entry)
    return {
        "GroupDefinitions": [{"Type": g.get("Type"), "Key": g.get("Key")} for g in groups],
        "ResultsByTime": results,
        "DimensionValueAttributes": [],
    }


def cost_forecast(params: dict[str, Any], account_id: str) -> dict[str, Any]:
    start, end = _period(params)
    if start < today():
        raise ValidationException("Start date must be equal to or no later than the current date")
    metric = str(params.get("Metric") or "")
    if metric not in FORECAST_METRICS:
        raise ValidationException(f"Metric must be one of {', '.join(FORECAST_METRICS)}")
    granularity = str(params.get("Granularity") or "")
    if granularity not in ("DAILY", "MONTHLY"):
        raise ValidationException("Granularity must be DAILY or MONTHLY")
    with STATE_LOCK:
        items = [i for i in _USAGE.get(account_id, []) if _matches(i, params.get("Filter"))]
    per_day: dict[dt.date, Decimal] = defaultdict(Decimal)
    for item in items:
        per_day[item["date"]] += item["amount"]
    window = [today() - dt.timedelta(days=n) for n in range(1, FORECAST_WINDOW_DAYS + 1)]
    history = [per_day[d] for d in window if d in per_day]
    if not history:
        raise DataUnavailableException("Insufficient amount of historical data to generate forecast.")
    mean = sum(history, Decimal(0)) / len(history)
    results = []
    total = Decimal(0)
    for low, high in _buckets(start, end, granularity):
        value = mean * (high - low).days
        total += value
        results.append(
            {
                "TimePeriod": {"Start": low.isoformat(), "End": high.isoformat()},
                "MeanValue": _money(value)["Amount"],
                "PredictionIntervalLowerBound": _money(value * Decimal("0.9"))["Amount"],
                "PredictionIntervalUpperBound": _money(value * Decimal("1.1"))["Amount"],
            }
        )
    return {"Total": _money(total), "ForecastResultsByTime": results}


class ExtCostExplorerResponse(CostExplorerResponse):
    def _params(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or "{}")
        except ValueError:
            raise ValidationException("Request body is not valid JSON") from None
        return data if isinstance(data, dict) else {}

    def get_cost_and_usage(self) -> str:
        with STATE_LOCK:
            seeded = self.current_account in _USAGE
        if not seeded:
            return super().get_cost_and_usage()  # moto's canned-results queue
        return json.dumps(cost_and_usage(self._params(), self.current_account, resources=False))

    def get_cost_and_usage_with_resources(self) -> str:
        return json.dumps(cost_and_usage(self._params(), self.current_account, resources=True))

    def get_cost_forecast(self) -> str:
        return json.dumps(cost_forecast(self._params(), self.current_account))


OVERRIDDEN_ACTIONS = frozenset({"GetCostAndUsage", "GetCostAndUsageWithResources", "GetCostForecast"})


def snapshot(account_id: str = DEFAULT_ACCOUNT_ID) -> list[dict[str, Any]]:
    with STATE_LOCK:
        return [
            {**deepcopy(i), "date": i["date"].isoformat(), "amount": str(i["amount"])}
            for i in _USAGE.get(account_id, [])
        ]
