"""`hybridctl cost --plot FILE`: spend per day with the forecast and the budgets' lines (matplotlib).

matplotlib is an optional extra (``pip install 'hybridctl[plot]'``); without it the command says
so before it reads anything.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Sequence
from pathlib import Path

from hybridctl.core.errors import InputError, PreconditionError, Problem
from hybridctl.features.cost.models import CloudCost

FORMATS = (".png", ".svg")


def check_plot_target(path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise InputError(
            [Problem("command line", "--plot", f"{path} is neither .png nor .svg", "name a FILE.png or FILE.svg")]
        )
    if not path.parent.exists():
        raise InputError(
            [Problem("command line", "--plot", f"directory {path.parent} does not exist", "create it first")]
        )
    if importlib.util.find_spec("matplotlib") is None:
        raise PreconditionError("--plot needs matplotlib: pip install 'hybridctl[plot]'")


def plot_spend(reports: Sequence[CloudCost], path: Path) -> Path:
    """One panel per cloud: cumulative actual spend this period, the forecast to month end, budget lines."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    matplotlib.rcParams["svg.fonttype"] = "none"  # SVG text stays text (searchable, smaller)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(reports) or 1, 1, figsize=(8, 3.2 * max(1, len(reports))), squeeze=False)
    for axis, report in zip(axes[:, 0], reports, strict=False):
        days = sorted(report.daily)
        running = []
        total = 0.0
        for day in days:
            total += float(report.daily[day])
            running.append(total)
        axis.bar(days, [float(report.daily[d]) for d in days], color="#8fb3d9", label="per day")
        axis.plot(days, running, color="#1f4e79", marker="o", markersize=3, label="cumulative")
        if report.forecast_daily:
            f_days = sorted(report.forecast_daily)
            f_running = []
            month_total = float(report.month_to_date)
            for day in f_days:
                month_total += float(report.forecast_daily[day])
                f_running.append(month_total)
            start = [report.until] if days else []
            axis.plot(
                start + f_days,
                ([float(report.month_to_date)] if days else []) + f_running,
                color="#1f4e79",
                linestyle="--",
                label="forecast (month)",
            )
        # One line per (budget, amount): guard's actual:100% and forecast:100% are the same amount.
        lines: dict[tuple[str, float], list[str]] = {}
        for threshold in report.thresholds:
            lines.setdefault((threshold.budget, float(threshold.amount)), []).append(threshold.label)
        for (budget, amount), labels in sorted(lines.items()):
            colour = "#c0392b" if any(label.startswith("actual") for label in labels) else "#e67e22"
            axis.axhline(amount, color=colour, linestyle=":", linewidth=1)
            axis.annotate(
                f"{budget} {', '.join(labels)}",
                (0.99, amount),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                va="bottom",
                ha="right",
            )
        axis.set_title(f"{report.cloud} {report.scope} ({report.currency})", fontsize=10)
        axis.set_ylabel(report.currency)
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
        axis.legend(fontsize=7, loc="upper left")
        axis.set_xlim(left=min(days or [report.since]) - dt.timedelta(days=1))
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


__all__ = ["check_plot_target", "plot_spend"]
