"""Reading ARM JSON (``as_dict()`` of an Azure SDK model, or a REST body) the same way everywhere.

ARM names are case-insensitive and resource ids end in the resource's name; a resource's fields
sit under ``properties``, which a partial body may lack. The Azure backend and ``hybridctl init``
read VNets, subnets, NICs, NSGs and route tables with these.

Pure: no SDK, no calls.
"""

from __future__ import annotations

from typing import Any


def lower(text: Any) -> str:
    """A name or id for case-insensitive comparison (``None`` -> ``""``)."""
    return str(text or "").lower()


def props(obj: dict[str, Any]) -> dict[str, Any]:
    """An ARM object's ``properties`` ({} when it has none)."""
    found = obj.get("properties")
    return found if isinstance(found, dict) else {}


def last(resource_id: str) -> str:
    """The last segment of a resource id: the resource's own name."""
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


__all__ = ["last", "lower", "props"]
