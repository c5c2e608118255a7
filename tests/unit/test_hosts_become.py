"""The bootstrap's privilege escalation (hostscript.bootstrap with ``Become``): its text, and
what it does when run by a real ``sh`` (without sudo on PATH; sudo itself is exercised with a
real sshd in tests/integration/test_become.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from hybridctl.backends.hostscript import (
    BECOME_EXIT,
    NO_BECOME,
    PRELUDE,
    Become,
    become_error,
    become_stdin,
    bootstrap,
)

PASSWORD = "pw-Not-In-Argv-42"


def inner(command: str) -> str:
    argv = shlex.split(command)
    assert argv[:2] == ["sh", "-c"] and len(argv) == 3
    return argv[2]


def test_no_become_runs_the_script_directly() -> None:
    text = inner(bootstrap("echo hi\n", NO_BECOME))
    assert "sudo" not in text and "read -r" not in text
    assert text.endswith('HCTL_DIR="$d" sh "$d/run.sh" "$d"')


def test_sudo_without_password_runs_everything_under_one_sudo_and_no_check_before() -> None:
    text = inner(bootstrap("echo hi\n", Become("sudo", False, "deploy")))
    assert text.index("head -c 8 ") < text.index('sudo -n sh "$d/run.sh" "$d"')
    assert text.count("sudo -n") == 1 and "-S" not in text and "sudo -n true" not in text
    assert "@@hybridctl:become-error:password-required@@" in text


def _fake_sudo(tmp_path: Path, body: str) -> str:
    """A PATH whose `sudo` is ``body`` (a sh script), everything else the machine's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sudo = bin_dir / "sudo"
    sudo.write_text("#!/bin/sh\n" + body)
    sudo.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def test_a_sudo_that_wants_a_password_is_the_become_error_and_nothing_runs(tmp_path: Path) -> None:
    path = _fake_sudo(tmp_path, "echo 'sudo: a password is required' >&2\nexit 1\n")
    marker = tmp_path / "ran"
    script = PRELUDE + f"touch {marker}\n"
    result = _run(bootstrap(script, Become("sudo", False, "deploy")), script.encode(), path)
    assert result.returncode == BECOME_EXIT
    assert become_error(result.stdout.decode()) == "password-required"
    assert not marker.exists()


def test_a_script_that_fails_under_sudo_is_not_a_become_error(tmp_path: Path) -> None:
    path = _fake_sudo(tmp_path, '[ "$1" = -n ] && shift\necho "sudo: some warning" >&2\nexec "$@"\n')
    script = PRELUDE + "echo 'worked, then failed'\nexit 1\n"
    result = _run(bootstrap(script, Become("sudo", False, "deploy")), script.encode(), path)
    assert result.returncode == 1
    assert become_error(result.stdout.decode()) is None
    assert b"worked, then failed" in result.stdout and b"sudo: some warning" in result.stderr
    ok = PRELUDE + "echo fine\n"
    result = _run(bootstrap(ok, Become("sudo", False, "deploy")), ok.encode(), path)
    assert result.returncode == 0 and b"fine" in result.stdout


def test_sudo_with_password_reads_its_line_first_and_never_puts_it_in_argv() -> None:
    command = bootstrap("echo hi\n", Become("sudo", True, "deploy"))
    text = inner(command)
    # The password line comes first on stdin: read (a builtin) before the script is copied.
    assert text.index("IFS= read -r hctl_pw") < text.index("head -c 8 ")
    # Only printf (a builtin) ever sees it; sudo -k so a cached timestamp cannot leave the line
    # to the script; checked with `true` first so a wrong one never eats the secret answers.
    assert "printf '%s\\n' \"$hctl_pw\" | sudo -k -S -p '' true" in text
    assert "{ printf '%s\\n' \"$hctl_pw\"; unset hctl_pw; cat; } | sudo -k -S -p '' sh" in text
    assert PASSWORD not in command
    assert become_stdin(Become("sudo", True), PASSWORD, b"SCRIPT") == PASSWORD.encode() + b"\nSCRIPT"
    assert become_stdin(Become("sudo", False), None, b"SCRIPT") == b"SCRIPT"
    with pytest.raises(ValueError, match="one line"):
        become_stdin(Become("sudo", True), "two\nlines", b"")


def test_bash_scripts_run_under_bash() -> None:
    assert 'sudo -n bash "$d/run.sh" "$d"' in inner(bootstrap("echo\n", Become("sudo"), shell="bash"))


def _run(command: str, stdin: bytes, path: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["/bin/sh", "-c", inner(command)], input=stdin, capture_output=True,
                          env={"PATH": path, "TMPDIR": "/tmp"}, timeout=10)


def test_the_bootstrap_runs_the_script_and_leaves_the_rest_of_stdin_to_it() -> None:
    script = 'read -r x <&0; echo "dir=$HCTL_DIR arg=$1 rest=$x"\n'
    result = _run(bootstrap(script), script.encode() + b"answers\n", os.environ["PATH"])
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "rest=answers" in out and out.split("dir=")[1].split()[0] == out.split("arg=")[1].split()[0]


def test_no_sudo_on_the_host_is_one_marker_and_nothing_runs(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mktemp", "head", "rm", "sh", "cat", "touch"):  # everything but sudo
        (bin_dir / tool).symlink_to(subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                                                   text=True, check=True).stdout.strip())
    marker = tmp_path / "ran"
    script = f"touch {marker}\n"
    stdin = become_stdin(Become("sudo", True), PASSWORD, script.encode())
    result = _run(bootstrap(script, Become("sudo", True, "deploy")), stdin, str(bin_dir))
    assert result.returncode == BECOME_EXIT
    assert become_error(result.stdout.decode()) == "no-sudo"
    assert not marker.exists()
    assert PASSWORD.encode() not in result.stdout + result.stderr


def test_become_error_ignores_ordinary_output() -> None:
    assert become_error("\n@@hybridctl:pkg@@\nfoo\n@@hybridctl:end@@\n") is None
    assert become_error("\n@@hybridctl:become-error:password-required@@\n") == "password-required"
