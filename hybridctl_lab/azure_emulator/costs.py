"""Microsoft.CostManagement ``query`` and ``forecast`` at subscription and resource-group scope.

Shapes follow the Cost Management REST reference (api-version 2023-03-01 and later):

- ``POST {scope}/providers/Microsoft.CostManagement/query`` with a ``QueryDefinition``
  (``type``, ``timeframe`` or ``timePeriod``, ``dataset`` with ``granularity``, ``aggregation``
  and at most two ``grouping`` entries of type ``Dimension`` or ``TagKey``) answers a
  ``QueryResult``: ``properties.columns`` (the aggregated cost, then ``UsageDate`` as a
  yyyymmdd number for daily granularity, then one column per grouping -- ``TagKey`` and
  ``TagValue`` for a tag -- then ``Currency``) and ``properties.rows``, paged with ``nextLink``
  (POST the same body to it).
- ``POST {scope}/providers/Microsoft.CostManagement/forecast`` with a ``ForecastDefinition``
  answers columns ``Cost``, ``UsageDate``, ``CostStatus`` (``Actual`` / ``Forecast``), ``Currency``.

Spend is not computed from usage: the lab or a test seeds daily cost rows (:func:`seed_rows`),
kept in one store record per subscription, never listed as a resource. The forecast is the mean
of the last seven seeded days before today, per day, which is what a flat-rate bill looks like.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from .errors import ArmError

SEED_TYPE = "Hybridctl.Lab/costRows"  # store record holding the seeded rows; never served as a resource
QUERY_TYPES = ("Usage", "ActualCost", "AmortizedCost")
TIMEFRAMES = ("MonthToDate", "BillingMonthToDate", "TheLastMonth", "TheLastBillingMonth", "WeekToDate", "Custom")
# Dimension names Cost Management accepts for grouping, and the row field each one reads.
DIMENSIONS = {
    "servicename": ("ServiceName", "service"),
    "resourceid": ("ResourceId", "resource_id"),
    "resourcegroupname": ("ResourceGroupName", "resource_group"),
    "resourcegroup": ("ResourceGroup", "resource_group"),
    "resourcetype": ("ResourceType", "resource_type"),
    "resourcelocation": ("ResourceLocation", "location"),
    "metercategory": ("MeterCategory", "service"),
}
AGGREGATED = ("Cost", "PreTaxCost", "CostUSD", "PreTaxCostUSD")
FORECAST_WINDOW_DAYS = 7


def seed_id(subscription_id: str) -> str:
    return f"/subscriptions/{subscription_id}/providers/{SEED_TYPE}/seed"


def _bad(message: str) -> ArmError:
    return ArmError(400, "BadRequest", message)


def _resource_group(resource_id: str) -> str:
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    if "resourcegroups" in lowered and lowered.index("resourcegroups") + 1 < len(parts):
        return parts[lowered.index("resourcegroups") + 1].lower()
    return ""


def _resource_type(resource_id: str) -> str:
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return ""
    index = lowered.index("providers")
    return "/".join(lowered[index + 1 : index + 3]) if index + 2 < len(parts) else ""


def normalize_row(raw: dict[str, Any]) -> dict[str, Any]:
    """One seeded daily cost row: ``date``, ``cost``, ``service``, ``resource_id``, ``tags``, ``currency``."""
    date = dt.date.fromisoformat(str(raw["date"]))
    resource_id = str(raw.get("resource_id") or "")
    return {
        "date": date.isoformat(),
        "cost": str(Decimal(str(raw["cost"]))),
        "service": str(raw.get("service") or ""),
        "resource_id": resource_id.lower(),  # Cost Management reports resource ids in lower case
        "resource_group": str(raw.get("resource_group") or _resource_group(resource_id)).lower(),
        "resource_type": _resource_type(resource_id),
        "location": str(raw.get("location") or ""),
        "tags": {str(k): str(v) for k, v in (raw.get("tags") or {}).items()},
        "currency": str(raw.get("currency") or "USD"),
    }


def seed_record(subscription_id: str, rows: list[dict[str, Any]], existing: dict[str, Any] | None) -> dict[str, Any]:
    kept = list((existing or {}).get("_rows", []))
    return {
        "id": seed_id(subscription_id),
        "name": "seed",
        "type": SEED_TYPE,
        "_rows": kept + [normalize_row(r) for r in rows],
    }


# -- request parsing ------------------------------------------------------------------------------


def _parse_time(value: Any, field: str) -> dt.date:
    if not isinstance(value, str) or not value:
        raise _bad(f"Invalid {field}: a date-time such as 2026-12-01T00:00:00Z is required.")
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _bad(f"Invalid {field} '{value}'.") from None
    return moment.date()


def _canonical(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if isinstance(value, str):
        for option in allowed:
            if option.lower() == value.lower():
                return option
    raise _bad(f"Invalid {field} '{value}'. Allowed values are: {', '.join(allowed)}.")


def period(body: dict[str, Any], today: dt.date) -> tuple[dt.date, dt.date]:
    """The inclusive (from, to) dates of a query's ``timeframe`` / ``timePeriod``."""
    timeframe = _canonical(body.get("timeframe"), TIMEFRAMES, "timeframe")
    if timeframe == "Custom":
        window = body.get("timePeriod")
        if not isinstance(window, dict):
            raise _bad("timePeriod is required when timeframe is Custom.")
        start = _parse_time(window.get("from"), "timePeriod.from")
        end = _parse_time(window.get("to"), "timePeriod.to")
        if end < start:
            raise _bad("Invalid time period: 'to' must not be before 'from'.")
        if (end - start).days > 366:
            raise _bad("Invalid time period: the period cannot be longer than one year.")
        return start, end
    first = today.replace(day=1)
    if timeframe in ("MonthToDate", "BillingMonthToDate"):
        return first, today
    if timeframe == "WeekToDate":
        return today - dt.timedelta(days=today.weekday()), today
    last_month_end = first - dt.timedelta(days=1)
    return last_month_end.replace(day=1), last_month_end


def _aggregation(dataset: dict[str, Any]) -> str:
    aggregation = dataset.get("aggregation") or {"totalCost": {"name": "Cost", "function": "Sum"}}
    if not isinstance(aggregation, dict) or len(aggregation) != 1:
        raise _bad("dataset.aggregation must hold exactly one aggregated column.")
    (spec,) = aggregation.values()
    if not isinstance(spec, dict) or str(spec.get("function", "")).lower() != "sum":
        raise _bad("Only the Sum aggregation function is supported for cost columns.")
    return _canonical(spec.get("name"), AGGREGATED, "aggregation name")


def _grouping(dataset: dict[str, Any]) -> list[tuple[str, str]]:
    """[(kind, name)]: ("dimension", canonical name) or ("tag", tag key)."""
    raw = dataset.get("grouping") or []
    if not isinstance(raw, list) or len(raw) > 2:
        raise _bad("dataset.grouping accepts at most 2 entries.")
    out: list[tuple[str, str]] = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _bad("Each grouping needs a type and a name.")
        kind = str(entry.get("type", "")).lower()
        if kind == "dimension":
            found = DIMENSIONS.get(entry["name"].lower())
            if found is None:
                raise _bad(f"Invalid dimension '{entry['name']}' for grouping.")
            out.append(("dimension", found[0]))
        elif kind == "tagkey":
            out.append(("tag", entry["name"]))
        else:
            raise _bad(f"Invalid grouping type '{entry.get('type')}'. Allowed values are: Dimension, TagKey.")
    return out


def _granularity(dataset: dict[str, Any]) -> str | None:
    value = dataset.get("granularity")
    if value is None or str(value).lower() == "none":
        return None
    return _canonical(value, ("Daily", "Monthly"), "granularity")


def _in_scope(row: dict[str, Any], resource_group: str | None) -> bool:
    return resource_group is None or row["resource_group"] == resource_group.lower()


def _number(value: Decimal) -> float:
    return float(value)


def _page(rows: list[list[Any]], query: dict[str, str], next_url: str, page_size: int) -> tuple[list[list[Any]], Any]:
    token = query.get("$skiptoken")
    offset = 0
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
        except (ValueError, UnicodeDecodeError):
            raise ArmError(400, "InvalidSkipToken", f"The skip token '{token}' is invalid.") from None
    chunk = rows[offset : offset + page_size]
    if offset + page_size >= len(rows):
        return chunk, None
    following = base64.urlsafe_b64encode(str(offset + page_size).encode()).decode().rstrip("=")
    return chunk, f"{next_url}&%24skiptoken={following}"


def _result(scope: str, kind: str, columns: list[dict[str, str]], rows: list[list[Any]], next_link: Any) -> dict:
    name = str(uuid.uuid4())
    return {
        "id": f"{scope}/providers/Microsoft.CostManagement/{kind}/{name}",
        "name": name,
        "type": f"Microsoft.CostManagement/{kind}",
        "location": None,
        "sku": None,
        "eTag": None,
        "properties": {"nextLink": next_link, "columns": columns, "rows": rows},
    }


def query(
    body: dict[str, Any],
    seeded: list[dict[str, Any]],
    *,
    scope: str,
    resource_group: str | None,
    today: dt.date,
    url_query: dict[str, str],
    next_url: str,
    page_size: int,
) -> dict[str, Any]:
    """The QueryResult for one page of ``body`` over the seeded rows."""
    _canonical(body.get("type"), QUERY_TYPES, "type")
    start, end = period(body, today)
    dataset = body.get("dataset") or {}
    if not isinstance(dataset, dict):
        raise _bad("dataset must be an object.")
    cost_name = _aggregation(dataset)
    grain = _granularity(dataset)
    grouping = _grouping(dataset)
    sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for row in seeded:
        day = dt.date.fromisoformat(row["date"])
        if not (start <= day <= end) or not _in_scope(row, resource_group):
            continue
        key: list[Any] = []
        if grain == "Daily":
            key.append(int(day.strftime("%Y%m%d")))
        elif grain == "Monthly":
            key.append(int(day.replace(day=1).strftime("%Y%m%d")))
        for kind, name in grouping:
            if kind == "dimension":
                key.append(row[DIMENSIONS[name.lower()][1]])
            else:
                value = next((v for k, v in row["tags"].items() if k.lower() == name.lower()), None)
                key.extend([name, value] if value is not None else ["", ""])
        key.append(row["currency"])
        sums[tuple(key)] += Decimal(row["cost"])
    columns = [{"name": cost_name, "type": "Number"}]
    if grain is not None:
        columns.append({"name": "UsageDate" if grain == "Daily" else "BillingMonth", "type": "Number"})
    for kind, name in grouping:
        if kind == "dimension":
            columns.append({"name": name, "type": "String"})
        else:
            columns += [{"name": "TagKey", "type": "String"}, {"name": "TagValue", "type": "String"}]
    columns.append({"name": "Currency", "type": "String"})
    rows = [[_number(total), *key] for key, total in sorted(sums.items(), key=lambda kv: [str(k) for k in kv[0]])]
    chunk, next_link = _page(rows, url_query, next_url, page_size)
    return _result(scope, "query", columns, chunk, next_link)


def forecast(
    body: dict[str, Any],
    seeded: list[dict[str, Any]],
    *,
    scope: str,
    resource_group: str | None,
    today: dt.date,
) -> dict[str, Any]:
    """The ForecastResult: actual days (when asked for) and forecast days after today."""
    _canonical(body.get("type"), QUERY_TYPES, "type")
    start, end = period(body, today)
    dataset = body.get("dataset") or {}
    if not isinstance(dataset, dict):
        raise _bad("dataset must be an object.")
    cost_name = _aggregation(dataset)
    if _granularity(dataset) != "Daily":
        raise _bad("Forecast supports granularity Daily only.")
    if dataset.get("grouping"):
        raise _bad("Forecast does not support grouping.")
    include_actual = bool(body.get("includeActualCost", False))
    rows = [r for r in seeded if _in_scope(r, resource_group)]
    per_day: dict[dt.date, Decimal] = defaultdict(Decimal)
    currency = "USD"
    for row in rows:
        per_day[dt.date.fromisoformat(row["date"])] += Decimal(row["cost"])
        currency = row["currency"]
    window = [today - dt.timedelta(days=n) for n in range(1, FORECAST_WINDOW_DAYS + 1)]
    history = [per_day[d] for d in window if d in per_day]
    if not history:
        raise ArmError(
            422, "InsufficientData", "Forecast is not available: there is not enough cost history for this scope."
        )
    mean = sum(history, Decimal(0)) / len(history)
    out: list[list[Any]] = []
    day = start
    while day <= end:
        stamp = int(day.strftime("%Y%m%d"))
        if day <= today:
            if include_actual and day in per_day:
                out.append([_number(per_day[day]), stamp, "Actual", currency])
        else:
            out.append([_number(mean.quantize(Decimal("0.0001"))), stamp, "Forecast", currency])
        day += dt.timedelta(days=1)
    columns = [
        {"name": cost_name, "type": "Number"},
        {"name": "UsageDate", "type": "Number"},
        {"name": "CostStatus", "type": "String"},
        {"name": "Currency", "type": "String"},
    ]
    return _result(scope, "forecast", columns, out, None)


def rows_of(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    return copy.deepcopy(list((record or {}).get("_rows", [])))


__all__ = ["SEED_TYPE", "forecast", "normalize_row", "query", "rows_of", "seed_id", "seed_record"]
