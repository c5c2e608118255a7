"""Pure logic of `hybridctl cost`: input checks, request bodies, response parsers, the managed split.

Nothing here calls a cloud: :mod:`hybridctl.features.cost.aws` / :mod:`hybridctl.features.cost.azure` make one
call per read and hand the answers to these parsers (unit-tested on captured answers).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from typing import Any

from hybridctl.core.errors import InputError, Problem
from hybridctl.core.inventory.budget_rules import to_decimal
from hybridctl.core.inventory.budgets import Budget
from hybridctl.features.cost.models import GROUP_BYS, CloudCost, CostRow, GroupCost, Threshold

AWS_RESOURCE_DAYS = 14  # Cost Explorer keeps resource-level data for the last 14 days
MAX_DAYS_BACK = 365  # Azure Cost Management queries span at most a year; AWS keeps 13 months by default
CLI = "command line"


# -- input --------------------------------------------------------------------------------------------


def check_request(since: str | None, group_by: str, today: dt.date) -> dt.date:
    """The first day to report (default: the first of this month); every problem at once."""
    problems: list[Problem] = []
    if group_by not in GROUP_BYS:
        problems.append(
            Problem(CLI, "--group-by", f"unknown grouping {group_by!r}", f"use one of {', '.join(GROUP_BYS)}")
        )
    start = today.replace(day=1)
    if since is not None:
        try:
            start = dt.date.fromisoformat(since)
        except ValueError:
            problems.append(Problem(CLI, "--since", f"{since!r} is not a date", "write it as YYYY-MM-DD"))
        else:
            if start > today:
                problems.append(
                    Problem(
                        CLI,
                        "--since",
                        f"{since} is in the future (today is {today.isoformat()} UTC)",
                        "use today or an earlier day",
                    )
                )
            elif (today - start).days > MAX_DAYS_BACK:
                problems.append(
                    Problem(
                        CLI,
                        "--since",
                        f"{since} is more than {MAX_DAYS_BACK} days ago",
                        f"use a day on or after {(today - dt.timedelta(days=MAX_DAYS_BACK)).isoformat()}",
                    )
                )
    if problems:
        raise InputError(problems)
    return start


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


# -- AWS Cost Explorer --------------------------------------------------------------------------------


def aws_usage_params(
    start: dt.date, today: dt.date, group_by: Sequence[tuple[str, str]], flt: dict[str, Any] | None = None
) -> dict[str, Any]:
    """GetCostAndUsage(WithResources) arguments: daily unblended cost, End exclusive (tomorrow)."""
    params: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": (today + dt.timedelta(days=1)).isoformat()},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": kind, "Key": key} for kind, key in group_by],
    }
    if flt:
        params["Filter"] = flt
    return params


def parse_aws_usage(pages: Iterable[dict[str, Any]]) -> tuple[list[CostRow], str]:
    """CostRows from GetCostAndUsage(WithResources) pages, and the unit (USD)."""
    rows: list[CostRow] = []
    unit = "USD"
    for page in pages:
        definitions = [(str(g.get("Type")), str(g.get("Key"))) for g in page.get("GroupDefinitions") or []]
        for result in page.get("ResultsByTime") or []:
            day = dt.date.fromisoformat(str(result["TimePeriod"]["Start"]))
            groups = result.get("Groups") or []
            if not groups and result.get("Total"):
                metric: dict[str, Any] = next(iter(result["Total"].values()))
                unit = str(metric.get("Unit") or unit)
                rows.append(CostRow(day, "", to_decimal(metric.get("Amount"))))
            for group in groups:
                metric = dict(next(iter((group.get("Metrics") or {}).values()), {}))
                unit = str(metric.get("Unit") or unit)
                fields: dict[str, str] = {"service": "", "resource": ""}
                tag: str | None = None
                for (kind, key), value in zip(definitions, group.get("Keys") or [], strict=False):
                    if kind == "TAG":
                        tag = str(value).partition("$")[2]
                    elif key == "SERVICE":
                        fields["service"] = str(value)
                    elif key == "RESOURCE_ID":
                        fields["resource"] = str(value)
                rows.append(CostRow(day, fields["service"], to_decimal(metric.get("Amount")), fields["resource"], tag))
    return rows, unit


def aws_forecast_params(today: dt.date) -> dict[str, Any] | None:
    """GetCostForecast for the rest of the month (tomorrow to month end); None on the month's last day."""
    start = today + dt.timedelta(days=1)
    end = month_end(today) + dt.timedelta(days=1)
    if start >= end:
        return None
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Metric": "UNBLENDED_COST",
        "Granularity": "MONTHLY",
    }


def parse_aws_forecast(answer: dict[str, Any]) -> Decimal:
    return to_decimal((answer.get("Total") or {}).get("Amount"))


# -- Azure Cost Management ----------------------------------------------------------------------------


def _arm_time(day: dt.date, end: bool = False) -> str:
    return f"{day.isoformat()}T23:59:59Z" if end else f"{day.isoformat()}T00:00:00Z"


def azure_query_body(start: dt.date, today: dt.date, grouping: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """A QueryDefinition: actual cost per day from ``start`` to today, grouped as asked."""
    return {
        "type": "ActualCost",
        "timeframe": "Custom",
        "timePeriod": {"from": _arm_time(start), "to": _arm_time(today, end=True)},
        "dataset": {
            "granularity": "Daily",
            "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
            "grouping": [{"type": kind, "name": name} for kind, name in grouping],
        },
    }


def azure_forecast_body(today: dt.date) -> dict[str, Any] | None:
    start = today + dt.timedelta(days=1)
    end = month_end(today)
    if start > end:
        return None
    return {
        "type": "ActualCost",
        "timeframe": "Custom",
        "timePeriod": {"from": _arm_time(start), "to": _arm_time(end, end=True)},
        "dataset": {"granularity": "Daily", "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}}},
        "includeActualCost": False,
        "includeFreshPartialCost": False,
    }


def _usage_date(value: Any) -> dt.date:
    text = str(value)
    if text.isdigit() and len(text) == 8:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return dt.date.fromisoformat(text[:10])


def parse_azure_rows(pages: Iterable[dict[str, Any]]) -> tuple[list[CostRow], str | None]:
    """CostRows from QueryResult pages (columns by name, as Cost Management documents), and the currency."""
    rows: list[CostRow] = []
    currency: str | None = None
    for page in pages:
        props = page.get("properties") or {}
        names = [str(c.get("name")) for c in props.get("columns") or []]
        index = {n.lower(): i for i, n in enumerate(names)}
        cost_at = next((index[n] for n in ("cost", "pretaxcost", "costusd", "pretaxcostusd") if n in index), 0)
        for raw in props.get("rows") or []:
            if "currency" in index:
                currency = str(raw[index["currency"]])
            day = _usage_date(raw[index["usagedate"]]) if "usagedate" in index else dt.date.min
            tag = str(raw[index["tagvalue"]]) if "tagvalue" in index else None
            rows.append(
                CostRow(
                    day,
                    str(raw[index["servicename"]]) if "servicename" in index else "",
                    to_decimal(raw[cost_at]),
                    str(raw[index["resourceid"]]) if "resourceid" in index else "",
                    tag,
                )
            )
    return rows, currency


def parse_azure_forecast(page: dict[str, Any]) -> tuple[dict[dt.date, Decimal], str | None]:
    """The forecast days (CostStatus Forecast) of a ForecastResult."""
    props = page.get("properties") or {}
    names = [str(c.get("name")).lower() for c in props.get("columns") or []]
    index = {n: i for i, n in enumerate(names)}
    out: dict[dt.date, Decimal] = defaultdict(Decimal)
    currency = None
    for raw in props.get("rows") or []:
        if "coststatus" in index and str(raw[index["coststatus"]]).lower() != "forecast":
            continue
        if "currency" in index:
            currency = str(raw[index["currency"]])
        out[_usage_date(raw[index["usagedate"]])] += to_decimal(raw[index.get("cost", 0)])
    return dict(out), currency


# -- the managed split --------------------------------------------------------------------------------


def resource_key(resource: str) -> str:
    """A resource id as compared: lower case, the last segment of an ARN (``...:volume/vol-1`` -> ``vol-1``)."""
    text = resource.strip().lower()
    if text.startswith("arn:"):
        text = text.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    return text


def is_managed(resource: str, managed: Collection[str]) -> bool:
    return bool(resource) and resource_key(resource) in managed


def _daily(rows: Iterable[CostRow]) -> dict[dt.date, Decimal]:
    out: dict[dt.date, Decimal] = defaultdict(Decimal)
    for row in rows:
        out[row.day] += row.amount
    return dict(out)


def summarize(
    cloud: str,
    scope: str,
    currency: str,
    since: dt.date,
    today: dt.date,
    group_by: str,
    *,
    totals: Sequence[CostRow],
    resources: Sequence[CostRow],
    tagged: Sequence[CostRow] = (),
    managed_ids: Collection[str] = (),
    tag_key: str = "managed-by",
    forecast_rest: Decimal | None = None,
    forecast_daily: dict[dt.date, Decimal] | None = None,
    notes: Sequence[str] = (),
) -> CloudCost:
    """One cloud's report. ``totals``: per (day, service) over the whole period (and the month);
    ``resources``: per (day, service, resource) where the cloud has them; ``tagged``: per tag value.

    Managed = a resource hybridctl manages (``managed_ids``); with ``--group-by tag``, the tag
    value ``hybridctl`` is managed as well.
    """
    in_period = [r for r in totals if since <= r.day <= today]
    actual = sum((r.amount for r in in_period), Decimal(0))
    month_start = today.replace(day=1)
    mtd = sum((r.amount for r in totals if month_start <= r.day <= today), Decimal(0))
    res_period = [r for r in resources if since <= r.day <= today]
    managed_by_service: dict[str, Decimal] = defaultdict(Decimal)
    for row in res_period:
        if is_managed(row.resource, managed_ids):
            managed_by_service[row.service] += row.amount
    managed_total = sum(managed_by_service.values(), Decimal(0))
    groups: list[GroupCost] = []
    if group_by == "service":
        per_service: dict[str, Decimal] = defaultdict(Decimal)
        for row in in_period:
            per_service[row.service] += row.amount
        for service, total in per_service.items():
            mine = min(managed_by_service.get(service, Decimal(0)), total)
            groups.append(GroupCost(service or "(none)", mine, total - mine))
    elif group_by == "resource":
        per_resource: dict[str, Decimal] = defaultdict(Decimal)
        for row in res_period:
            per_resource[row.resource] += row.amount
        for resource, total in per_resource.items():
            mine = total if is_managed(resource, managed_ids) else Decimal(0)
            groups.append(GroupCost(resource or "(no resource)", mine, total - mine))
    else:
        per_tag: dict[str, Decimal] = defaultdict(Decimal)
        for row in tagged:
            if since <= row.day <= today:
                per_tag[row.tag or ""] += row.amount
        for value, total in per_tag.items():
            label = f"{tag_key}={value}" if value else f"{tag_key} (untagged)"
            mine = total if value == "hybridctl" else Decimal(0)
            groups.append(GroupCost(label, mine, total - mine))
        tagged_managed = sum((g.managed for g in groups), Decimal(0))
        managed_total = max(managed_total, tagged_managed)
    groups.sort(key=lambda g: (-g.total, g.key))
    forecast = None if forecast_rest is None else mtd + forecast_rest
    return CloudCost(
        cloud=cloud,
        scope=scope,
        currency=currency,
        since=since,
        until=today,
        actual=actual,
        managed=min(managed_total, actual),
        month_to_date=mtd,
        forecast=forecast,
        group_by=group_by,
        groups=groups,
        daily=_daily(in_period),
        forecast_daily=dict(forecast_daily or {}),
        notes=list(notes),
    )


# -- budgets on the same scale ------------------------------------------------------------------------


def thresholds_for(cloud: str, budgets: Iterable[Budget], currency: str) -> tuple[dict[str, Decimal], list[Threshold]]:
    """The inventory's budgets of ``cloud`` in ``currency``: their amounts and each alert's threshold amount."""
    amounts: dict[str, Decimal] = {}
    out: list[Threshold] = []
    for budget in budgets:
        if cloud not in budget.clouds:
            continue
        if cloud == "azure" and budget.currency.upper() != currency.upper():
            continue  # another billing currency: not on this scale
        if cloud == "aws" and budget.currency.upper() != "USD":
            continue
        amounts[budget.name] = budget.amount
        for alert in budget.resolved_alerts():
            value = budget.amount * alert.threshold / 100 if alert.unit == "percent" else alert.threshold
            out.append(Threshold(budget.name, alert.type, value, alert.label()))
    return amounts, out


__all__ = [
    "AWS_RESOURCE_DAYS",
    "aws_forecast_params",
    "aws_usage_params",
    "azure_forecast_body",
    "azure_query_body",
    "check_request",
    "is_managed",
    "month_end",
    "parse_aws_forecast",
    "parse_aws_usage",
    "parse_azure_forecast",
    "parse_azure_rows",
    "resource_key",
    "summarize",
    "thresholds_for",
]
