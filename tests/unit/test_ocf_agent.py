"""The OCF agent's contract where no cloud is involved: meta-data, usage, parameters, probes.

Exit codes per the OCF resource agent API: 0 success, 1 generic, 2 args, 3 unimplemented,
4 perm, 5 installed, 6 configured, 7 not running. The states that need EC2 are covered in
tests/integration/test_vip_ocf.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from hybridctl.core.errors import InputError
from hybridctl.features.vip import ocf
from hybridctl_lab import vip_scenario as scenario

OCF_CODES = {
    "OCF_SUCCESS": 0,
    "OCF_ERR_GENERIC": 1,
    "OCF_ERR_ARGS": 2,
    "OCF_ERR_UNIMPLEMENTED": 3,
    "OCF_ERR_PERM": 4,
    "OCF_ERR_INSTALLED": 5,
    "OCF_ERR_CONFIGURED": 6,
    "OCF_NOT_RUNNING": 7,
}


def test_exit_code_values_are_the_ocf_api_s() -> None:
    assert {name: getattr(ocf, name) for name in OCF_CODES} == OCF_CODES


def test_meta_data_is_ra_api_xml_with_every_parameter_and_action() -> None:
    result = ocf.run_agent("meta-data", {})
    assert result.code == ocf.OCF_SUCCESS
    root = ET.fromstring(result.stdout.split("\n", 2)[2])  # after the XML and DOCTYPE lines
    assert result.stdout.startswith('<?xml version="1.0"?>\n<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">')
    assert root.tag == "resource-agent" and root.get("name") == ocf.AGENT_NAME
    assert root.find("version") is not None
    assert root.find("shortdesc[@lang='en']") is not None and root.find("longdesc[@lang='en']") is not None
    params = {p.get("name"): p for p in root.iterfind("parameters/parameter")}
    assert set(params) == {p.name for p in ocf.PARAMS}
    for spec in ocf.PARAMS:
        element = params[spec.name]
        assert element.get("required") == str(int(spec.required))
        assert element.find("shortdesc") is not None and element.find("longdesc") is not None
        content = element.find("content")
        assert content is not None and content.get("type") == spec.type
    actions = {a.get("name"): a for a in root.iterfind("actions/action")}
    # the spec's mandatory actions, and validate-all, each with a timeout
    assert {"start", "stop", "monitor", "meta-data", "validate-all"} <= set(actions)
    assert all(a.get("timeout", "").endswith("s") for a in actions.values())
    assert actions["monitor"].get("interval") and actions["monitor"].get("depth") == "0"


@pytest.mark.parametrize("action", ["promote", "demote", "migrate_to", "migrate_from", "notify", "reload", "bogus"])
def test_unimplemented_actions(action: str) -> None:
    result = ocf.run_agent(action, {"OCF_RESKEY_vip": "v", "OCF_RESKEY_inventory": "/nonexistent"})
    assert result.code == ocf.OCF_ERR_UNIMPLEMENTED


def test_no_action_is_an_argument_error_and_usage_succeeds() -> None:
    assert ocf.run_agent(None, {}).code == ocf.OCF_ERR_ARGS
    usage = ocf.run_agent("usage", {})
    assert usage.code == ocf.OCF_SUCCESS and "start" in usage.stdout


@pytest.mark.parametrize("action", ["start", "monitor", "validate-all"])
def test_missing_required_parameters_are_not_configured(action: str, tmp_path: Path) -> None:
    assert ocf.run_agent(action, {"OCF_RESKEY_inventory": "x", "HA_RSCTMP": str(tmp_path)}).code == 6
    assert ocf.run_agent(action, {"OCF_RESKEY_vip": "v", "HA_RSCTMP": str(tmp_path)}).code == 6


@pytest.mark.parametrize(
    ("name", "value"), [("monitor_interval", "soon"), ("monitor_interval", "-1"), ("allow_collisions", "maybe")]
)
def test_malformed_parameters_are_not_configured(name: str, value: str, tmp_path: Path) -> None:
    env = {"OCF_RESKEY_vip": "v", "OCF_RESKEY_inventory": "x", f"OCF_RESKEY_{name}": value, "HA_RSCTMP": str(tmp_path)}
    assert ocf.run_agent("validate-all", env).code == ocf.OCF_ERR_CONFIGURED


def test_inventory_missing_on_this_node_is_not_installed(tmp_path: Path) -> None:
    env = {"OCF_RESKEY_vip": "v", "OCF_RESKEY_inventory": str(tmp_path / "none.yaml"), "HA_RSCTMP": str(tmp_path)}
    assert ocf.run_agent("validate-all", env).code == ocf.OCF_ERR_INSTALLED
    assert ocf.run_agent("start", env).code == ocf.OCF_ERR_INSTALLED


def _inventory(tmp_path: Path, **vip: object) -> Path:
    doc = scenario.inventory_document("http://127.0.0.1:9", str(tmp_path / "credentials"))
    doc["vips"][0].update(vip)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _env(tmp_path: Path, inventory: Path, **params: str) -> dict[str, str]:
    env = {"OCF_RESKEY_inventory": str(inventory), "OCF_RESKEY_vip": "ha-vip", "HA_RSCTMP": str(tmp_path / "run")}
    env.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
    return env


def test_validate_all_succeeds_offline_on_a_valid_config(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path)
    assert ocf.run_agent("validate-all", _env(tmp_path, inventory, node="node1")).code == ocf.OCF_SUCCESS


def test_invalid_inventory_or_unknown_vip_is_not_configured(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path)
    assert ocf.run_agent("validate-all", _env(tmp_path, inventory, node="node1", vip="other")).code == 6
    broken = _inventory(tmp_path, nodes=[{"name": "n1", "eni": "e"}, {"name": "n1", "eni": "f"}])
    result = ocf.run_agent("validate-all", _env(tmp_path, broken, node="n1"))
    assert result.code == ocf.OCF_ERR_CONFIGURED
    assert any("used twice" in line for line in result.log)


def test_a_node_not_among_the_vip_s_nodes_is_an_argument_error(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path)
    env = _env(tmp_path, inventory, node="node7")
    assert ocf.run_agent("validate-all", env).code == ocf.OCF_ERR_ARGS
    # and the cluster's node name is the default
    env = _env(tmp_path, inventory)
    env["OCF_RESKEY_CRM_meta_on_node"] = "node2"
    assert ocf.run_agent("validate-all", env).code == ocf.OCF_SUCCESS


def test_probe_and_stop_of_a_never_started_resource_need_no_cloud(tmp_path: Path) -> None:
    # The endpoint (port 9) would refuse every connection: nothing may be called.
    inventory = _inventory(tmp_path)
    env = _env(tmp_path, inventory, node="node1", CRM_meta_interval="0")
    assert ocf.run_agent("monitor", env).code == ocf.OCF_NOT_RUNNING
    assert ocf.run_agent("stop", env).code == ocf.OCF_SUCCESS
    assert ocf.run_agent("stop", env).code == ocf.OCF_SUCCESS
    # stop needs neither the inventory nor a valid one
    assert ocf.run_agent("stop", {"OCF_RESKEY_vip": "ha-vip", "HA_RSCTMP": str(tmp_path)}).code == 0


def test_unreadable_state_file_makes_monitor_fail_and_stop_clean_it(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path)
    env = _env(tmp_path, inventory, node="node1")
    state = tmp_path / "run" / f"{ocf.AGENT_NAME}-ha-vip.json"
    state.parent.mkdir()
    state.write_text("{not json")
    assert ocf.run_agent("monitor", env).code == ocf.OCF_ERR_GENERIC
    assert ocf.run_agent("stop", env).code == ocf.OCF_SUCCESS
    assert not state.exists()
    assert ocf.run_agent("monitor", env).code == ocf.OCF_NOT_RUNNING


def test_cli_passes_exit_codes_through(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hybridctl.cli.main import main

    with pytest.raises(SystemExit) as code:
        main(["vip", "agent", "meta-data"])
    assert code.value.code == 0 and "<resource-agent" in capsys.readouterr().out
    with pytest.raises(SystemExit) as code:
        main(["vip", "agent", "promote"])
    assert code.value.code == ocf.OCF_ERR_UNIMPLEMENTED


def test_install_agent_writes_an_executable_wrapper_that_runs_the_agent(tmp_path: Path) -> None:
    import stat
    import subprocess

    executable = ocf.default_executable()
    assert executable is not None and executable.is_absolute()
    path = ocf.install_wrapper(tmp_path / "resource.d" / "hybridctl", executable)
    assert path == tmp_path / "resource.d" / "hybridctl" / "vip"
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert path.read_text().splitlines()[0] == "#!/bin/sh"
    assert path.read_text().splitlines()[-1] == f'exec {executable} vip agent "$1"'
    # Pacemaker's minimal PATH: the wrapper must not depend on finding hybridctl there.
    ran = subprocess.run([str(path), "meta-data"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0 and ran.stdout == ocf.meta_data()
    assert subprocess.run([str(path), "promote"], capture_output=True, env={"PATH": "/usr/bin:/bin"}).returncode == 3


def test_install_agent_quotes_the_path_and_refuses_a_non_executable(tmp_path: Path) -> None:
    odd = tmp_path / "my bin" / "hybridctl"
    odd.parent.mkdir()
    odd.write_text("#!/bin/sh\n")
    with pytest.raises(InputError, match="--hybridctl"):
        ocf.install_wrapper(tmp_path / "out", odd)  # not executable
    odd.chmod(0o755)
    assert ocf.wrapper_script(odd).splitlines()[-1] == f"exec '{odd}' vip agent \"$1\""
    with pytest.raises(InputError, match="absolute"):
        ocf.install_wrapper(tmp_path / "out", Path("relative/hybridctl"))
    assert not (tmp_path / "out").exists()  # nothing written on bad input


def test_install_agent_cli_json_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from hybridctl.cli.main import main

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(["vip", "install-agent", *args])
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err

    code, out, _ = run("--dir", str(tmp_path / "hybridctl"), "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["agent"] == str(tmp_path / "hybridctl" / "vip")
    assert doc["exec"] == f'exec {ocf.default_executable()} vip agent "$1"'
    code, _, err = run("--dir", str(tmp_path / "other"), "--hybridctl", "relative/hybridctl")
    assert code == 2 and "--hybridctl" in err and not (tmp_path / "other").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run("--dir", str(blocker / "sub"))  # a file where the directory should be
    assert code == 1 and "cannot write" in err
