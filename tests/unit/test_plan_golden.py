"""The reference plan's JSON, byte for byte: refactors must not change what `plan -o json` says.

tests/fixtures/plan/reference.json is `hybridctl plan -i inventory/reference.yaml -o json` as the
planner produced it before typed items reached the backends. A change to it is a behaviour change:
regenerate it only on purpose (the command above, from the repository root) and review the diff.
"""

from __future__ import annotations

import json

import pytest

from hybridctl.cli.main import main
from hybridctl.core.planner.desired import LAYERS
from tests.conftest import FIXTURES, REPO

GOLDEN = FIXTURES / "plan" / "reference.json"


def plan_json(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "-i", str(REPO / "inventory" / "reference.yaml"), "-o", "json"])
    out, _ = capsys.readouterr()
    assert exited.value.code in (0, None)
    return out


def test_reference_plan_json_is_the_golden_file(capsys: pytest.CaptureFixture[str]) -> None:
    out = plan_json(capsys)
    golden = GOLDEN.read_text(encoding="utf-8")
    if out != golden:
        # Name the first differing change rather than dumping 23 kB of JSON.
        got, want = json.loads(out), json.loads(golden)
        first = next((i for i, (a, b) in enumerate(zip(got["changes"], want["changes"], strict=False)) if a != b), None)
        detail = (
            f"change {first}: {got['changes'][first]} != {want['changes'][first]}" if first is not None else "see diff"
        )
        pytest.fail(f"plan -o json differs from {GOLDEN.relative_to(REPO)}: {detail}")
    assert out == golden


def test_golden_file_covers_every_layer_the_reference_applies() -> None:
    # The reference's LAN client is not reachable over SSH: its routes are instructions, not items.
    layers = {c["layer"] for c in json.loads(GOLDEN.read_text(encoding="utf-8"))["changes"]}
    assert layers == set(LAYERS) - {"client-route"}
