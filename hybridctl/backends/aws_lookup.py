"""The one way an inventory's reference to an EC2 object resolves: by id, else by Name tag.

Every AWS reference a user writes (``vpc``, ``gateway.eni``, ``gateway.instance``, a route table,
a VIP's ENIs and Transit Gateway parts) is either the object's id (``vpc-0abc...``) or its Name
tag. Reading: a reference that starts with the id prefix goes to the id filter, any other to
``tag:Name`` (:func:`split_refs`, used by :meth:`hybridctl.backends.clouds.AwsApi.pages_by_id_or_name`).
Picking among objects already read: the ones whose id is the reference, else the ones whose
Name tag is (:func:`by_id_or_name`); an id always wins, so a Name tag that happens to look like
another object's id never shadows that object.

Pure: no SDK, no calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def tags(obj: dict[str, Any]) -> dict[str, str]:
    """An EC2 object's tags as a dict."""
    # DescribeNetworkInterfaces calls the list TagSet; every other Describe calls it Tags.
    return {t["Key"]: t["Value"] for t in (obj.get("Tags") or obj.get("TagSet") or [])}


def name_of(obj: dict[str, Any]) -> str | None:
    """An EC2 object's Name tag."""
    return tags(obj).get("Name")


def split_refs(refs: Iterable[str], id_prefix: str) -> tuple[list[str], list[str]]:
    """(ids, Name tags) among ``refs``, each sorted and without repeats: what the two filtered reads ask for."""
    unique = set(refs)
    ids = sorted(r for r in unique if r.startswith(id_prefix))
    return ids, sorted(unique.difference(ids))


def by_id_or_name(items: Iterable[dict[str, Any]], ref: str, *, id_key: str) -> list[dict[str, Any]]:
    """The objects whose ``id_key`` is ``ref``; when none, those whose Name tag is ``ref``.

    More than one is the caller's to report: a Name tag is not unique.
    """
    items = list(items)
    return [i for i in items if i.get(id_key) == ref] or [i for i in items if name_of(i) == ref]


__all__ = ["by_id_or_name", "name_of", "split_refs", "tags"]
