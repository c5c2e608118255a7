"""The host backend's shell scripts (hostscript.py): rendering and parsing, on real outputs.

Fixtures in tests/fixtures/hostread/ were captured from the lab by
``python -m tests.fixtures.hostread.capture`` (every exec of a cold `up`).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from hybridctl.backends.hostscript import (
    MANAGED_MARK,
    ApplyScript,
    ReadRequest,
    ScriptOutputError,
    ServiceRef,
    bootstrap,
    parse_apply,
    parse_read,
    put_file,
    render_read,
    split_read_after,
    split_sections,
)
from hybridctl.backends.hoststate import managed_paths
from hybridctl.core.hostfiles import SOFTETHER_BINARIES
from hybridctl.core.softether.parse import parse_read as parse_softether
from hybridctl.core.softether.vpncmd import VpncmdInvocation, answers_bytes, check_transcript, parse_transcript
from tests.conftest import FIXTURES

HOSTREAD = FIXTURES / "hostread"
SECRET = "S3cretAnswer-not-in-scripts"


def fixture(name: str) -> str:
    return (HOSTREAD / name).read_text()


def planned_files(host: str) -> dict[str, str]:
    plan = json.loads(fixture("plan.json"))
    return {r["key"][1]: r["attrs"]["sha256"] for r in plan if r["layer"] == "host-file" and r["key"][0] == host}


def test_bootstrap_holds_no_data_only_the_script_length() -> None:
    script = "echo hello\n"
    command = bootstrap(script)
    argv = shlex.split(command)
    assert argv[:2] == ["sh", "-c"]
    assert f"head -c {len(script)} " in argv[2]
    assert "hello" not in command


def test_read_script_keeps_the_admin_password_on_stdin_only() -> None:
    invocation = VpncmdInvocation(("ServerInfoGet", "HubList"), answers_bytes([SECRET]))
    wire = render_read(
        ReadRequest(
            paths=managed_paths(),
            packages=("softether-vpnserver",),
            service=ServiceRef("softether-vpnserver", SOFTETHER_BINARIES["vpn-server"], "softether-vpnserver"),
            vpncmd=invocation,
            vpncmd_ports=(5555, 443),
        )
    )
    assert SECRET not in wire.script and SECRET not in wire.command and SECRET not in repr(wire)
    assert wire.stdin == wire.script.encode() + invocation.answers
    # vpncmd gets exactly the answers' bytes from fd 3, and the batch file holds the commands.
    assert f"head -c {len(invocation.answers)} <&3" in wire.script
    assert "ServerInfoGet\nHubList\n" in wire.script
    for path in managed_paths():
        assert shlex.quote(path) in wire.script


def test_parse_read_bare_bridge() -> None:
    raw = parse_read(fixture("read_bare_aws-bridge.txt"))
    assert raw.packages == {"softether-vpnbridge": True}
    assert raw.files == {}
    assert raw.systemd is False
    assert raw.service_running is False
    assert raw.ip_forward == "0"
    assert not raw.config_exists
    assert raw.vpncmd_port is None and raw.vpncmd_output == ""
    assert json.loads(raw.route_json)[0]["dst"] == "default"


@pytest.mark.parametrize("host", ["aws-bridge", "azure-bridge", "vpnserver", "hl-home-c1"])
def test_parse_read_configured_files_match_the_plan(host: str) -> None:
    raw = parse_read(fixture(f"read_configured_{host}.txt"))
    assert {path: fact.sha256 for path, fact in raw.files.items()} == planned_files(host)
    assert all(fact.ours for fact in raw.files.values())


@pytest.mark.parametrize(
    ("host", "role"), [("aws-bridge", "vpn-bridge"), ("azure-bridge", "vpn-bridge"), ("vpnserver", "vpn-server")]
)
def test_parse_read_configured_softether(host: str, role: str) -> None:
    raw = parse_read(fixture(f"read_configured_{host}.txt"))
    assert raw.service_running is True
    assert raw.config_exists
    assert raw.vpncmd_port == 5555
    read = parse_softether(raw.vpncmd_output, role)  # type: ignore[arg-type]
    assert read.facts.admin_password_set
    assert read.config.listeners == (5555,)
    if role == "vpn-bridge":
        assert raw.ip_forward == "1"
        state = read.facts.cascade("BRIDGE", "HYBRID")
        assert state is not None and state.established


def test_parse_read_without_end_marker_is_an_error() -> None:
    text = fixture("read_configured_vpnserver.txt")
    with pytest.raises(ScriptOutputError):
        parse_read(text[: text.index("@@hybridctl:end@@")])


def test_sections_keep_order_and_trim_the_blank_line_before_markers() -> None:
    sections = split_sections(fixture("read_bare_hl-home-c1.txt"))
    names = [n for n, _ in sections]
    assert names == ["pkg", "files", "systemd", "service", "sysctl", "addr", "route", "config", "end"]
    assert dict(sections)["sysctl"] == "0\n"


def test_apply_script_secrets_only_on_stdin_in_order() -> None:
    script = ApplyScript()
    script.add("files", "files", put_file("/etc/hybridctl/overlay.sh", "#!/bin/sh\necho x\n", 0o755))
    first = VpncmdInvocation(("ServerPasswordSet",), answers_bytes([SECRET, SECRET]), admin_prompt_expected=False)
    second = VpncmdInvocation(("Hub BRIDGE", "CascadeOnline HYBRID"), answers_bytes(["other-" + SECRET]))
    script.add_vpncmd("softether", first, 5555)
    script.add("overlay", "network", "hctl_overlay\n")
    script.add_vpncmd("softether", second, 5555)
    wire = script.render()
    assert SECRET not in wire.script and SECRET not in wire.command and SECRET not in repr(wire)
    assert bytes(wire.secrets) == first.answers + second.answers
    # Each vpncmd reads exactly its own answers, in script order.
    counts = [int(n) for n in re.findall(r"hctl_vpncmd \d+ (\d+) ", wire.script)]
    assert counts == [len(first.answers), len(second.answers)]
    order = [m.group(1) for m in re.finditer(r"hctl_mark 'step:([a-z0-9-]+)'", wire.script)]
    assert order == ["files", "vpncmd-1", "overlay", "vpncmd-2"]


def test_put_file_content_travels_base64() -> None:
    body = put_file("/etc/x", f"# {MANAGED_MARK}\nHYBRIDCTL_EOF_7f3a\n", 0o644)
    # A content line equal to the terminator cannot end the here-document early: base64 hides it.
    assert body.splitlines().count("HYBRIDCTL_EOF_7f3a") == 1
    assert body.endswith("\nHYBRIDCTL_EOF_7f3a\n")
    assert body.startswith("hctl_put /etc/x 644 022 <<'HYBRIDCTL_EOF_7f3a'\n")
    # An executable mode cannot come from a umask: chmod sets it (no third argument).
    assert put_file("/etc/x.sh", "#!/bin/sh\n", 0o755).startswith("hctl_put /etc/x.sh 755 <<")
    assert put_file("/etc/k", "s\n", 0o600).startswith("hctl_put /etc/k 600 066 <<")


def test_parse_apply_cold_bridge_first_exec() -> None:
    result = parse_apply(fixture("apply_aws-bridge_1.txt"))
    assert result.finished and result.failed is None
    assert result.completed == ("files", "ip-forward", "service", "vpncmd-1", "overlay")
    transcript = parse_transcript(result.vpncmd[1])
    check_transcript(
        transcript,
        ("ServerPasswordSet", "BridgeCreate BRIDGE /DEVICE:vpntap /TAP:yes", "ListenerDelete 1194"),
        expected_connect_prompt=False,
    )


def test_parse_apply_cold_bridge_after_network() -> None:
    result = parse_apply(fixture("apply_aws-bridge_2.txt"))
    assert result.completed == ("vpncmd-1", "restart", "overlay-again", "wait-link")
    transcript = parse_transcript(result.vpncmd[1])
    check_transcript(transcript, ("CascadeOnline HYBRID", "Flush"), expected_connect_prompt=True)


def test_parse_apply_server() -> None:
    result = parse_apply(fixture("apply_vpnserver_1.txt"))
    assert result.finished and result.completed == ("files", "service", "vpncmd-1")
    transcript = parse_transcript(result.vpncmd[1])
    assert not transcript.failures()
    assert any(r.command.startswith("RouterStart") for r in transcript.results)


def test_parse_apply_failure_stops_at_the_failed_step() -> None:
    text = (
        "\n@@hybridctl:step:package@@\n\n@@hybridctl:step:files@@\nmv: cannot move: Read-only file system\n"
        "\n@@hybridctl:fail:files:1@@\n"
    )
    result = parse_apply(text)
    assert result.completed == ("package",)
    assert result.failed == "files" and result.rc == 1
    assert "Read-only" in result.outputs["files"]
    assert not result.finished


def test_fixtures_hold_no_password_echo() -> None:
    for path in Path(HOSTREAD).glob("*.txt"):
        for line in path.read_text().splitlines():
            if line.startswith(("Password:", "Confirm input:")):
                assert set(line.split(":", 1)[1].strip()) <= {"*"}, (path.name, line)


def test_an_apply_script_can_end_with_the_read_and_its_answers_come_last() -> None:
    script = ApplyScript()
    online = VpncmdInvocation(("Hub BRIDGE", "CascadeOnline HYBRID"), answers_bytes([SECRET]))
    script.add_vpncmd("softether", online, 5555)
    read = VpncmdInvocation(("ServerInfoGet",), answers_bytes(["read-" + SECRET]))
    request = ReadRequest(
        paths=managed_paths(),
        packages=("softether-vpnbridge",),
        service=ServiceRef("softether-vpnbridge", SOFTETHER_BINARIES["vpn-bridge"], "softether-vpnbridge"),
        vpncmd=read,
    )
    wire = script.render(read_after=request)
    assert SECRET not in wire.script
    # The apply's vpncmd takes its answers first, the read's vpncmd the rest.
    assert bytes(wire.secrets) == online.answers + read.answers
    assert wire.script.index("hctl_mark done") < wire.script.index("hctl_mark os") < wire.script.index("hctl_mark end")


def test_split_read_after_separates_the_apply_from_the_read_that_followed_it() -> None:
    apply_text, read_text = fixture("apply_aws-bridge_2.txt"), fixture("read_configured_aws-bridge.txt")
    assert "@@hybridctl:done@@" in apply_text
    applied, read = split_read_after(apply_text.rstrip("\n") + "\n" + read_text)
    assert read is not None
    assert parse_apply(applied) == parse_apply(apply_text)
    assert parse_read(read) == parse_read(read_text)
    # No read after the apply (an older host script, or cut off before its end): the verify phase reads.
    assert split_read_after(apply_text)[1] is None
    cut = apply_text.rstrip("\n") + "\n" + read_text.split("@@hybridctl:end@@")[0]
    assert split_read_after(cut)[1] is None
    failed = "\n@@hybridctl:step:files@@\nmv: Read-only file system\n\n@@hybridctl:fail:files:1@@\n"
    assert split_read_after(failed) == (failed, None)


def test_the_start_wait_sees_listening_ports_with_shell_builtins_only() -> None:
    """hctl_any_listening reads /proc/net/tcp{,6} with `read` and arithmetic (no process per poll)
    and tells a listening port from a closed one and from a connected-but-not-listening one."""
    import socket
    import subprocess

    from tests.support.hosts import shell_functions

    functions = shell_functions()

    def listens(*candidates: int) -> bool:
        script = functions + f'hctl_any_listening "{" ".join(map(str, candidates))}"\n'
        return subprocess.run(["sh", "-c", script, "sh"], check=False).returncode == 0

    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening
        v4, shut = listening.getsockname()[1], closed.getsockname()[1]
        assert listens(v4) and listens(shut, v4)
        assert not listens(shut)
        if socket.has_ipv6:  # the IPv6 table too (SoftEther listens on both)
            with socket.socket(socket.AF_INET6) as listening6:
                listening6.bind(("::", 0))
                listening6.listen()
                assert listens(shut, listening6.getsockname()[1])
    assert not listens(v4)  # closed now


def test_the_read_script_reports_each_managed_file_with_three_processes_in_all(tmp_path: Path) -> None:
    """sha256, mode and ours/foreign of the files there are (one sha256sum, stat and grep for all),
    as parse_read expects them; a missing file is simply absent."""
    import hashlib
    import subprocess

    ours, foreign = tmp_path / "ours.sh", tmp_path / "foreign.conf"
    ours.write_text(f"# {MANAGED_MARK}\necho hi\n")
    foreign.write_text("somebody else's\n")
    ours.chmod(0o755)
    foreign.chmod(0o640)
    body = render_read(ReadRequest(paths=(str(ours), str(tmp_path / "missing"), str(foreign)))).script
    assert body.count("sha256sum ") == 1 and body.count("stat -c") == 1
    out = subprocess.run(["sh", "-c", body, "sh", str(tmp_path)], capture_output=True, text=True, check=False)
    files = parse_read(out.stdout).files
    assert set(files) == {str(ours), str(foreign)}
    assert files[str(ours)].sha256 == hashlib.sha256(ours.read_bytes()).hexdigest()
    assert (files[str(ours)].mode, files[str(ours)].ours) == ("755", True)
    assert (files[str(foreign)].mode, files[str(foreign)].ours) == ("640", False)


def test_hctl_put_writes_content_and_mode_and_restores_the_umask(tmp_path: Path) -> None:
    """Real files through a real shell: new directories, modes by umask or chmod, a leftover
    temporary file of an interrupted run (mode 600) not keeping its mode, the umask back at 077."""
    import stat
    import subprocess

    from tests.support.hosts import shell_functions

    target = tmp_path / "new-dir" / "unit.service"
    script_file = tmp_path / "bin" / "overlay.sh"
    secret = tmp_path / "new-dir" / "key"
    (tmp_path / "bin").mkdir()
    leftover = Path(f"{script_file}.hybridctl-new")
    leftover.write_text("half written")
    leftover.chmod(0o600)
    body = (
        put_file(str(target), "[Unit]\n", 0o644)
        + put_file(str(script_file), "#!/bin/sh\necho hi\n", 0o755)
        + put_file(str(secret), "s3cret\n", 0o600)
    )
    script = shell_functions() + "umask 077\n(\nset -e\n" + body + "umask\n)\n"
    done = subprocess.run(["sh", "-c", script, "sh"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "0077"
    assert target.read_text() == "[Unit]\n" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert script_file.read_text() == "#!/bin/sh\necho hi\n" and stat.S_IMODE(script_file.stat().st_mode) == 0o755
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert not leftover.exists()


def test_hctl_cat_prints_a_file_as_cat_would_without_a_process(tmp_path: Path) -> None:
    import subprocess

    from tests.support.hosts import shell_functions

    text = (FIXTURES / "os-release" / "ubuntu-24.04").read_text()
    source = tmp_path / "os-release"
    source.write_text(text)
    unterminated = tmp_path / "ip_forward"
    unterminated.write_text("1")  # a last line without its newline is printed with one
    calls = f"hctl_cat {source}; hctl_cat {unterminated}; hctl_cat {tmp_path}/none || echo missing\n"
    script = shell_functions() + calls
    done = subprocess.run(["sh", "-c", script, "sh"], capture_output=True, text=True, check=True)
    assert done.stdout == text + "1\nmissing\n"
