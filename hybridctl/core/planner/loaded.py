"""Plan a loaded inventory: the planner's entry point for commands, with its failures as bad input.

Kept apart from :mod:`hybridctl.core.inventory.load` so loading never needs the planner (the
inventory is the lower layer: the planner reads it, never the other way round).
"""

from __future__ import annotations

from hybridctl.core.errors import InputError, Problem
from hybridctl.core.inventory.addressing import AddressingError
from hybridctl.core.inventory.load import LoadedInventory
from hybridctl.core.inventory.problems import field_name
from hybridctl.core.planner.desired import DesiredState
from hybridctl.core.planner.plan import plan


def plan_loaded(loaded: LoadedInventory) -> DesiredState:
    """Plan a loaded inventory; a table that cannot fit its route limit is bad input (exit 2)."""
    try:
        return plan(loaded.inventory)
    except AddressingError as error:
        index = next((i for i, s in enumerate(loaded.inventory.sites) if s.name == error.site), None)
        loc: tuple[str | int, ...] = ("sites", index, "route_limit") if index is not None else ("sites",)
        raise InputError(
            [Problem(str(loaded.path), field_name(loaded.raw, loc), str(error), error.fix, loaded.line_of(loc))]
        ) from None
