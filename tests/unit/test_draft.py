"""The draft writer of `hybridctl init`: YAML with comments, placeholders and their refusal."""

from __future__ import annotations

import pytest
import yaml

from hybridctl.core.errors import InputError
from hybridctl.core.inventory.load import parse_inventory
from hybridctl.features.draft import Map, placeholder, placeholders, render
from tests.conftest import REPO


def test_render_round_trips_with_comments_above_keys() -> None:
    doc = (
        Map()
        .add("name", "x", "the name")
        .add(
            "sites",
            [Map().add("name", "a", "first").add("nets", [Map().add("cidr", "10.0.0.0/24")]), Map().add("name", "b")],
            "two sites",
        )
    )
    doc.add("empty", []).add("flag", True).add("odd", "it's: <quoted>")
    lines = render(doc)
    assert yaml.safe_load("\n".join(lines)) == {
        "name": "x",
        "sites": [{"name": "a", "nets": [{"cidr": "10.0.0.0/24"}]}, {"name": "b"}],
        "empty": [],
        "flag": True,
        "odd": "it's: <quoted>",
    }
    assert lines[0] == "# the name" and "# two sites" in lines
    # A list item's first key keeps its comment on the line above the dash.
    first = lines.index("  - name: a")
    assert lines[first - 1] == "    # first"


def test_placeholders_are_found_with_their_path() -> None:
    doc = {"a": [{"b": placeholder("x")}, {"c": 1}], "d": placeholder("y"), "e": "<not one>"}
    assert placeholders(doc) == [(("a", 0, "b"), "<FILL: x>"), (("d",), "<FILL: y>")]


def test_an_inventory_with_placeholders_names_each_one() -> None:
    text = (REPO / "inventory" / "reference.yaml").read_text()
    text = text.replace("public_address: vpn.home.example", f"public_address: '{placeholder('the address')}'")
    text = text.replace("lan_device: eth1", f"lan_device: '{placeholder('the NIC')}'")
    with pytest.raises(InputError) as caught:
        parse_inventory(text, "draft.yaml")
    problems = caught.value.problems
    assert [p.field for p in problems] == ["sites[home].gateway.public_address", "sites[home].gateway.lan_device"]
    assert all(p.line and "placeholder" in p.message and p.file == "draft.yaml" for p in problems)
