"""Presets: alert sets worth having a name for.

``guard`` is the reference's two-tier guard (docs: reference.md section 3): a small amount that
means "nothing should be running" (the reference's 1,000 JPY) and a self-restraint amount (its
4,000 JPY, the budget amount), watched on actual spend, plus the forecast against the amount so
a leak shows before it lands. Thresholds are percentages of the amount so the same preset works
in both clouds (Azure takes percentages only).
"""

from __future__ import annotations

from decimal import Decimal

from hybridctl.features.budget.models import BudgetAlert

# The reference's ratio: 1,000 JPY of a 4,000 JPY budget.
GUARD_IDLE_PERCENT = Decimal(25)
_CENT = Decimal("0.01")


def guard_idle_percent(amount: Decimal, idle: Decimal | None) -> Decimal:
    """The small tier as a percentage of the amount (two decimals at most)."""
    if idle is None or amount <= 0:
        return GUARD_IDLE_PERCENT
    return (idle * 100 / amount).quantize(_CENT).normalize()


def guard_alerts(amount: Decimal, idle: Decimal | None = None) -> list[BudgetAlert]:
    """actual above the idle share, actual above 100%, forecast above 100%."""
    return [
        BudgetAlert(type="actual", threshold=guard_idle_percent(amount, idle), unit="percent"),
        BudgetAlert(type="actual", threshold=Decimal(100), unit="percent"),
        BudgetAlert(type="forecast", threshold=Decimal(100), unit="percent"),
    ]


PRESETS: dict[str, str] = {
    "guard": "two-tier guard: actual above idle (default 25% of the amount), actual above 100%, forecast above 100%",
}
