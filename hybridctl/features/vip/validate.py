"""Checks across ``vips:`` entries, located like every other inventory problem (file/line/field/fix).

Pydantic already checked each entry (:mod:`hybridctl.features.vip.models`); what needs the whole
inventory is here: unique names, one VIP address per region (the collision rule of reference
section 5 applies inside one inventory too), and a VIP declared in an
inventory site's VPC that falls inside that site's networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hybridctl.core.errors import InputError, Problem
from hybridctl.core.inventory.load import field_name

if TYPE_CHECKING:
    from hybridctl.core.inventory.load import LoadedInventory
    from hybridctl.features.vip.models import Vip


def _problem(loaded: LoadedInventory, loc: Sequence[str | int], message: str, fix: str) -> Problem:
    return Problem(str(loaded.path), field_name(loaded.raw, loc), message, fix, loaded.line_of(loc))


def vip_problems(loaded: LoadedInventory) -> list[Problem]:
    inv = loaded.inventory
    problems: list[Problem] = []
    default_region = inv.aws.region if inv.aws else None
    seen_names: dict[str, int] = {}
    seen_addresses: dict[tuple[str | None, str], str] = {}
    for i, vip in enumerate(inv.vips):
        if vip.name in seen_names:
            problems.append(
                _problem(
                    loaded, ("vips", i, "name"), f"VIP name '{vip.name}' is used twice", "give every VIP its own name"
                )
            )
        seen_names.setdefault(vip.name, i)
        region = vip.region or default_region
        key = (region, str(vip.address))
        if key in seen_addresses:
            problems.append(
                _problem(
                    loaded,
                    ("vips", i, "address"),
                    f"{vip.address} is also VIP '{seen_addresses[key]}' in {region}",
                    "a VIP must be unique per account and region: choose another address",
                )
            )
        seen_addresses.setdefault(key, vip.name)
        for site in inv.sites:
            if site.kind == "aws" and site.vpc == vip.vpc:
                inside = [str(n.cidr) for n in site.networks if vip.address in n.cidr]
                if inside:
                    problems.append(
                        _problem(
                            loaded,
                            ("vips", i, "address"),
                            f"{vip.address} lies inside {', '.join(inside)} of site '{site.name}' (same VPC)",
                            "choose an address outside every CIDR of the VPC: the local route would win",
                        )
                    )
    return problems


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
