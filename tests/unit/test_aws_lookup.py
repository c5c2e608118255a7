"""The one id-or-Name-tag resolver, on EC2 responses in the shape AWS returns them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hybridctl.backends.aws_lookup import by_id_or_name, name_of, split_refs, tags

FIXTURES = Path(__file__).parent.parent / "fixtures" / "aws"


def _load(name: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())[key]
    return items


def _renamed(item: dict[str, Any], id_key: str, new_id: str, name: str) -> dict[str, Any]:
    out = copy.deepcopy(item)
    out[id_key] = new_id
    out["Tags"] = [t for t in out.get("Tags") or [] if t["Key"] != "Name"] + [{"Key": "Name", "Value": name}]
    return out


def test_tags_read_both_list_names() -> None:
    [table] = _load("describe_route_tables.json", "RouteTables")
    assert name_of(table) == "Hybrid-RT"
    # DescribeNetworkInterfaces calls the list TagSet.
    eni = {"NetworkInterfaceId": "eni-0e5c3f4b", "TagSet": [{"Key": "Name", "Value": "aws-bridge-eni"}]}
    assert tags(eni) == {"Name": "aws-bridge-eni"} and name_of(eni) == "aws-bridge-eni"
    assert name_of({"NetworkInterfaceId": "eni-1"}) is None


def test_split_refs_sorts_ids_from_names_once_each() -> None:
    refs = ["Hybrid-VPC", "vpc-0b2", "vpc-0a1", "Hybrid-VPC", "Other"]
    assert split_refs(refs, "vpc-") == (["vpc-0a1", "vpc-0b2"], ["Hybrid-VPC", "Other"])
    assert split_refs([], "vpc-") == ([], [])


def test_by_id_or_name_finds_by_id_then_by_name() -> None:
    [table] = _load("describe_route_tables.json", "RouteTables")
    other = _renamed(table, "RouteTableId", "rtb-0other", "Overlay-RT")
    items = [table, other]
    assert by_id_or_name(items, "rtb-09ba434c1bEXAMPLE", id_key="RouteTableId") == [table]
    assert by_id_or_name(items, "Overlay-RT", id_key="RouteTableId") == [other]
    assert by_id_or_name(items, "nothing", id_key="RouteTableId") == []


def test_an_id_wins_over_a_name_that_looks_like_it() -> None:
    [table] = _load("describe_route_tables.json", "RouteTables")
    impostor = _renamed(table, "RouteTableId", "rtb-0impostor", "rtb-09ba434c1bEXAMPLE")
    assert by_id_or_name([impostor, table], "rtb-09ba434c1bEXAMPLE", id_key="RouteTableId") == [table]


def test_a_shared_name_gives_every_holder() -> None:
    # Name tags are not unique: the caller reports "2 objects are named ..." with the ids.
    [group] = _load("describe_security_groups.json", "SecurityGroups")
    twin = _renamed(group, "GroupId", "sg-0twin", "bridge-sg")
    found = by_id_or_name([group, twin], "bridge-sg", id_key="GroupId")
    assert [g["GroupId"] for g in found] == ["sg-903004f8EXAMPLE", "sg-0twin"]
