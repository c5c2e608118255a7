"""What `hybridctl cost` and `hybridctl leaks` report: plain values (hybridctl.render.cost renders them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

GROUP_BYS = ("service", "resource", "tag")
DEFAULT_TAG = "managed-by"  # hybridctl tags what it creates managed-by=hybridctl


def money(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(Decimal("0.01")))


@dataclass(frozen=True)
class CostRow:
    """One day's cost of one (service, resource, tag value) as the cloud reports it."""

    day: dt.date
    service: str
    amount: Decimal
    resource: str = ""  # a resource id, when the read was per resource
    tag: str | None = None  # the grouped tag's value ("" untagged), when the read was per tag


@dataclass(frozen=True)
class GroupCost:
    key: str
    managed: Decimal
    other: Decimal

    @property
    def total(self) -> Decimal:
        return self.managed + self.other


@dataclass(frozen=True)
class Threshold:
    budget: str
    kind: str  # actual | forecast
    amount: Decimal
    label: str  # actual:25%


@dataclass
class CloudCost:
    cloud: str
    scope: str
    currency: str
    since: dt.date
    until: dt.date  # inclusive: today
    actual: Decimal
    managed: Decimal
    month_to_date: Decimal
    forecast: Decimal | None  # the whole current month: month to date + forecast of the rest
    group_by: str
    groups: list[GroupCost]
    daily: dict[dt.date, Decimal]
    forecast_daily: dict[dt.date, Decimal] = field(default_factory=dict)
    thresholds: list[Threshold] = field(default_factory=list)
    budget_amounts: dict[str, Decimal] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def other(self) -> Decimal:
        return self.actual - self.managed


@dataclass(frozen=True)
class Leak:
    """A resource that bills while doing nothing (or that no inventory declares)."""

    cloud: str
    kind: str  # elastic-ip, volume, stopped-instance, nat-gateway, load-balancer, snapshot, public-ip, disk
    id: str
    name: str
    where: str  # region / resource group
    monthly: Decimal
    currency: str
    price_source: str
    why: str
    remove: str  # the exact command that removes it
    managed: bool = False  # hybridctl created it (tagged managed-by=hybridctl)

    @property
    def label(self) -> str:
        return self.name or self.id


__all__ = ["DEFAULT_TAG", "GROUP_BYS", "CloudCost", "CostRow", "GroupCost", "Leak", "Threshold", "money"]
