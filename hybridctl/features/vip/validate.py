"""The VIPs a command names, and the ``vips:`` checks for an inventory built in code.

The checks themselves run for every command when the inventory loads
(:func:`hybridctl.core.inventory.validate.vip_problems`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hybridctl.core.errors import InputError, Problem
from hybridctl.core.inventory.validate import vip_problems

if TYPE_CHECKING:
    from hybridctl.core.inventory.load import LoadedInventory
    from hybridctl.core.inventory.vips import Vip


def check_vips(loaded: LoadedInventory) -> None:
    """Raise :class:`InputError` with every cross-entry problem of ``vips:`` (before any remote call).

    :func:`hybridctl.core.inventory.load.load_inventory` already runs :func:`vip_problems` for every
    command; this is for an inventory built in code.
    """
    problems = vip_problems(loaded)
    if problems:
        raise InputError(problems)


def select(loaded: LoadedInventory, names: Sequence[str] | None) -> list[Vip]:
    """The VIPs named (all when ``names`` is empty); an unknown name is bad input."""
    vips = list(loaded.inventory.vips)
    if not vips:
        raise InputError(
            [
                Problem(
                    str(loaded.path), "vips", "the inventory declares no VIP", "add a `vips:` entry (docs/vip.md)", None
                )
            ]
        )
    if not names:
        return vips
    by_name = {v.name: v for v in vips}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InputError(
            [
                Problem(
                    str(loaded.path),
                    "vips",
                    f"no VIP named '{n}'",
                    f"use one of {', '.join(by_name)}",
                    loaded.line_of(("vips",)),
                )
                for n in unknown
            ]
        )
    return [by_name[n] for n in names]
