"""(desired, actual) -> changes: a table of cases."""

from __future__ import annotations

import pytest

from hybridctl.core.diff import Change, diff, summary
from hybridctl.core.planner.desired import Resource, res


def route(prefix: str, target: str, owned: bool = True, table: str = "rt") -> Resource:
    r = res("cloud-route", ("aws", table, prefix), "why", target=target)
    return Resource(r.layer, r.key, r.attrs, r.why, owned)


def actions(changes: list[Change]) -> list[tuple[str, str]]:
    return [(c.action, c.key[-1]) for c in changes]


CASES = [
    ("in sync", [route("10.1.0.0/24", "eni:a")], [route("10.1.0.0/24", "eni:a")], []),
    ("missing", [route("10.1.0.0/24", "eni:a")], [], [("create", "10.1.0.0/24")]),
    (
        "wrong target, owned",
        [route("10.1.0.0/24", "eni:a")],
        [route("10.1.0.0/24", "eni:b")],
        [("update", "10.1.0.0/24")],
    ),
    (
        "same prefix, foreign target",
        [route("10.1.0.0/24", "eni:a")],
        [route("10.1.0.0/24", "eni:x", owned=False)],
        [("conflict", "10.1.0.0/24")],
    ),
    ("owned extra is deleted", [], [route("10.9.0.0/24", "eni:a")], [("delete", "10.9.0.0/24")]),
    ("foreign extra is ignored", [], [route("10.9.0.0/24", "eni:x", owned=False)], []),
    (
        "foreign more specific steals",
        [route("10.1.0.0/16", "eni:a")],
        [route("10.1.0.0/16", "eni:a"), route("10.1.5.0/24", "eni:x", owned=False)],
        [("conflict", "10.1.5.0/24")],
    ),
    (
        "foreign more specific in another table is harmless",
        [route("10.1.0.0/16", "eni:a")],
        [route("10.1.0.0/16", "eni:a"), route("10.1.5.0/24", "eni:x", owned=False, table="other")],
        [],
    ),
    (
        "foreign less specific is harmless",
        [route("10.1.5.0/24", "eni:a")],
        [route("10.1.5.0/24", "eni:a"), route("10.1.0.0/16", "eni:x", owned=False)],
        [],
    ),
    (
        "mixed",
        [route("10.1.0.0/24", "eni:a"), route("10.2.0.0/24", "eni:a")],
        [route("10.2.0.0/24", "eni:b"), route("10.3.0.0/24", "eni:a")],
        [("create", "10.1.0.0/24"), ("update", "10.2.0.0/24"), ("delete", "10.3.0.0/24")],
    ),
]


@pytest.mark.parametrize(("name", "desired", "actual", "expected"), CASES, ids=[c[0] for c in CASES])
def test_diff_cases(
    name: str, desired: list[Resource], actual: list[Resource], expected: list[tuple[str, str]]
) -> None:
    assert actions(diff(desired, actual)) == expected


def test_unreadable_attributes_are_not_compared() -> None:
    want = res("softether", ("srv", "user", "HYBRID", "u"), secret="hub-user/HYBRID/u")
    have = res("softether", ("srv", "user", "HYBRID", "u"))
    assert diff([want], [have]) == []


def test_extra_actual_attributes_do_not_count() -> None:
    want = res("flag", ("aws", "eni", "source_dest_check"), value="false")
    have = res("flag", ("aws", "eni", "source_dest_check"), value="false", found="true")
    assert diff([want], [have]) == []


def test_layer_filter() -> None:
    want = [route("10.1.0.0/24", "eni:a"), res("flag", ("aws", "eni", "source_dest_check"), value="false")]
    assert [c.layer for c in diff(want, [], ["flag"])] == ["flag"]


def test_differing_names_expected_and_actual() -> None:
    (change,) = diff([route("10.1.0.0/24", "eni:a")], [route("10.1.0.0/24", "eni:b")])
    assert change.differing() == {"target": ("eni:a", "eni:b")}
    assert dict(change.desired or ()) == {"target": "eni:a"}
    assert change.symbol == "~"


def test_order_deletes_after_creates_within_layer() -> None:
    changes = diff([route("10.9.0.0/24", "eni:a")], [route("10.1.0.0/24", "eni:a")])
    assert actions(changes) == [("create", "10.9.0.0/24"), ("delete", "10.1.0.0/24")]
    assert summary(changes) == {"cloud-route": {"create": 1, "update": 0, "delete": 1, "conflict": 0}}
