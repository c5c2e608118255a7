"""`hybridctl plan` and `hybridctl schema` through the real entry point."""

from __future__ import annotations

import json

import pytest

from hybridctl.cli.main import main
from tests.conftest import REPO

REFERENCE = str(REPO / "inventory" / "reference.yaml")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


def test_plan_json_is_complete_and_secret_free(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "-i", REFERENCE, "-o", "json")
    assert code == 0
    document = json.loads(out)
    routes = {tuple(c["key"]) for c in document["changes"] if c["layer"] == "cloud-route"}
    assert ("aws", "Hybrid-RT", "192.168.1.0/24") in routes
    assert all(c["action"] == "create" for c in document["changes"])
    assert document["transit"]["bridges"] == {"aws": "192.168.10.2", "azure": "192.168.10.3"}
    assert {s["source"] for s in document["secrets"]} == {"generate"}
    assert document["clients"][0]["dhcp_option_121"].startswith("18:")


def test_plan_layer_filter(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "-i", REFERENCE, "-o", "json", "--layer", "host-route")
    assert code == 0
    assert {c["layer"] for c in json.loads(out)["changes"]} == {"host-route"}


def test_plan_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "-i", REFERENCE)
    assert code == 0
    assert "cloud-route" in out and "192.168.21.0/24" in out
    assert "DHCP option 121" in out


def test_unknown_layer_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "-i", REFERENCE, "--layer", "nonsense")
    assert code == 2
    assert "unknown layer" in err


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "hybridctl inventory"
    assert "Site" in schema["$defs"] and "Gateway" in schema["$defs"]
    assert schema["$defs"]["Gateway"]["additionalProperties"] is False
