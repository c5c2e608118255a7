"""Talking to ``vpncmd`` without ever putting a secret in argv.

How a batch reaches vpncmd (measured on softether-vpncmd 5.01 build 9674, see docs/softether.md):

* The *commands* go in a ``/IN:file`` batch file. It never contains a secret: every command that
  needs a password (``ServerPasswordSet``, ``HubCreate``, ``UserPasswordSet``,
  ``CascadePasswordSet``) is written without ``/PASSWORD:`` so vpncmd prompts for it.
* The *secrets* go on stdin. In ``/IN`` mode vpncmd reads every password prompt (the admin
  password at connect, then each "Password:" / "Confirm input:") with ``getc(stdin)``, in order,
  so stdin is simply the answers, one per line. Prompts for non-password parameters use readline
  on the raw descriptor instead and hit EOF (the stdio buffer already holds our stdin), so a
  rejected parameter is cancelled rather than fed a secret.
* stdin ends with Ctrl+D (``\\x04``) characters: a wrong admin password makes vpncmd re-prompt
  forever, and a prompt at EOF spins at 100 % CPU; ``\\x04`` cancels the prompt instead.
* Over SSH (or ``ip netns exec``) one ``sh -c`` script receives batch + secrets on stdin, copies
  the first N bytes (the batch) into a 0600 file in a private ``mktemp -d`` directory, hands the
  rest of stdin to vpncmd and removes the directory on exit. argv of every process holds only
  the script, the port and the batch path.

vpncmd keeps going after a failed command and its exit status is the last command's error
code, so success is decided by :func:`parse_transcript` / :func:`check_transcript`, not by the
exit status.
"""

from __future__ import annotations

import re
import secrets as _secrets
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from hybridctl.core.errors import RemoteError
from hybridctl.core.softether.commands import RANDOM_SECRET, Step

VPNCMD = "/usr/bin/vpncmd"
DEFAULT_PORT = 5555
DEFAULT_TIMEOUT_S = 60
# vpncmd's password prompt keeps at most 63 printable ASCII characters and silently drops others.
MAX_PASSWORD_LEN = 63
# Everything vpncmd reads from stdin arrives through one stdio buffer (4096 bytes for a pipe);
# staying under it keeps the answers in one read even if a parameter prompt touches the fd.
MAX_STDIN_BYTES = 4000
CANCEL = b"\x04" * 4

_PROMPT_RE = re.compile(r"^VPN (?:Server|Bridge)(?:/(?P<hub>[^>]*))?>(?P<cmd>.*)$")
_ERROR_RE = re.compile(r"^Error occurred\. \(Error code: (?P<code>\d+)\)")
_UNANSWERED_PROMPT_RE = re.compile(r"^[^,]*: $")
_NO_CODE_FAILURES = (
    "Before executing this command, first select the Virtual Hub",
    "Command not found",
)
_ACCESS_DENIED = "Access has been denied."

# Error codes seen in practice, with what to do about them.
ERROR_HINTS: dict[int, str] = {
    1: "vpncmd could not connect: is the SoftEther service running and listening on that port?",
    8: "the virtual hub does not exist",
    9: "access denied: wrong admin password",
    12: "access denied: wrong admin password",
    29: "object not found",
    33: "unsupported on this edition (VPN Bridge has no users, hubs or L3 switches to manage)",
    51: "blank admin password: only connections from localhost are allowed",
    54: "the listener already exists",
    57: "the virtual hub already exists",
    61: "the cascade connection is offline",
    66: "the user already exists",
    93: "the virtual layer 3 switch does not exist",
    95: "the virtual layer 3 switch must be stopped to edit its interfaces and routes",
}


class VpncmdError(RemoteError):
    """A vpncmd command failed; ``command`` is the batch line, never a secret."""

    def __init__(self, target: str, command: str, code: int | None, message: str) -> None:
        self.command = command
        self.code = code
        self.detail = message
        what = f"error {code}" if code is not None else "failed"
        super().__init__(
            target, f"vpncmd {command!r} {what}: {message}", ERROR_HINTS.get(code or -1)
        )


class VpncmdAuthError(RemoteError):
    """The admin password was refused (vpncmd was cancelled at its password prompt)."""


@dataclass(frozen=True)
class CommandResult:
    """One command of a transcript: the echoed line, the hub selected when it ran, its output."""

    command: str
    hub: str | None
    lines: tuple[str, ...]
    error_code: int | None = None
    error_message: str | None = None
    failed: bool = False

    @property
    def name(self) -> str:
        return self.command.split(" ", 1)[0].lower() if self.command else ""

    @property
    def args(self) -> str:
        parts = self.command.split(" ", 1)
        return parts[1] if len(parts) > 1 else ""

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class Transcript:
    """vpncmd's stdout split per command."""

    preamble: tuple[str, ...]
    results: tuple[CommandResult, ...]
    connect_password_prompts: int
    access_denied: bool
    connect_error: tuple[int | None, str] | None = None

    @property
    def admin_password_asked(self) -> bool:
        return self.connect_password_prompts > 0

    def failures(self) -> list[CommandResult]:
        return [r for r in self.results if r.failed]


def _strip(line: str) -> str:
    # BridgeCreate's warning and some messages end lines with CR LF.
    return line.rstrip("\r")


def _section_result(command: str, hub: str | None, lines: list[str]) -> CommandResult:
    code: int | None = None
    message: str | None = None
    failed = False
    for i, line in enumerate(lines):
        m = _ERROR_RE.match(line)
        if m:
            code = int(m.group("code"))
            message = " ".join(x.strip() for x in lines[i + 1 :] if x.strip()) or "error"
            failed = True
            break
        if any(marker in line for marker in _NO_CODE_FAILURES):
            message = line.strip()
            failed = True
            break
        if _UNANSWERED_PROMPT_RE.match(line):
            # A prompt that got no answer: vpncmd asked for a parameter it did not accept
            # (or a password we did not supply) and the input hit EOF / Ctrl+D.
            message = f"prompt {line.strip()!r} was not answered (parameter rejected or cancelled)"
            failed = True
            break
    return CommandResult(command, hub, tuple(lines), code, message, failed)


def parse_transcript(text: str) -> Transcript:
    """Split vpncmd output (``/CSV``, ``/IN`` mode) into preamble and per-command results."""
    lines = [_strip(x) for x in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    preamble: list[str] = []
    results: list[CommandResult] = []
    current: tuple[str, str | None] | None = None
    body: list[str] = []
    for line in lines:
        m = _PROMPT_RE.match(line)
        if m:
            if current is not None:
                results.append(_section_result(current[0], current[1], body))
            hub = m.group("hub") or None
            current = (m.group("cmd").strip(), hub)
            body = []
            continue
        if current is None:
            preamble.append(line)
        else:
            body.append(line)
    # A trailing bare prompt (interactive mode at EOF) is not a command.
    if current is not None and (current[0] or body):
        results.append(_section_result(current[0], current[1], body))

    prompts = sum(1 for x in preamble if x.startswith("Password:"))
    denied = any(_ACCESS_DENIED in x for x in preamble)
    connect_error: tuple[int | None, str] | None = None
    for i, line in enumerate(preamble):
        m = _ERROR_RE.match(line)
        if m:
            msg = " ".join(x.strip() for x in preamble[i + 1 :] if x.strip())
            connect_error = (int(m.group("code")), msg)
            break
    if not results and connect_error is None and denied:
        connect_error = (None, "access denied: the admin password was refused")
    return Transcript(tuple(preamble), tuple(results), prompts, denied, connect_error)


def check_transcript(
    transcript: Transcript,
    expected: Sequence[str],
    *,
    target: str = "vpncmd",
    tolerate: Mapping[str, Iterable[int]] | None = None,
    expected_connect_prompt: bool | None = None,
    tolerate_unselected: bool = False,
) -> None:
    """Raise on the first failed command, or when vpncmd did not run every expected command.

    ``tolerate`` maps a command name (lower case, e.g. ``"cascadestatusget"``) to error codes
    that are facts rather than failures. ``expected_connect_prompt`` guards the stdin protocol:
    if we fed an admin password but vpncmd never asked (or the reverse), every later answer
    would go to the wrong prompt. ``tolerate_unselected`` ignores hub-scoped commands that ran
    with no hub selected (a read batch after ``Hub NAME`` failed because NAME does not exist).
    """
    if transcript.connect_error is not None:
        code, msg = transcript.connect_error
        if transcript.access_denied or code in (9, 12):
            raise VpncmdAuthError(target, "the SoftEther admin password was refused", ERROR_HINTS[9])
        raise VpncmdError(target, "(connect)", code, msg)
    if transcript.access_denied:
        # A retry after a refused password that happened to succeed still means our secret
        # store holds a wrong value; refuse rather than continue with shifted answers.
        raise VpncmdAuthError(target, "the SoftEther admin password was refused", ERROR_HINTS[9])
    if expected_connect_prompt is not None and transcript.admin_password_asked != expected_connect_prompt:
        raise RemoteError(
            target,
            "vpncmd "
            + ("asked" if transcript.admin_password_asked else "did not ask")
            + " for the admin password, contrary to the last read",
            "the server's admin password state changed since it was read; read again and re-plan",
        )
    allowed = {k.lower(): set(v) for k, v in (tolerate or {}).items()}
    for result in transcript.results:
        unselected = result.hub is None and any(_NO_CODE_FAILURES[0] in line for line in result.lines)
        if tolerate_unselected and unselected:
            continue
        if result.failed and result.error_code not in allowed.get(result.name, set()):
            raise VpncmdError(target, result.command, result.error_code, result.error_message or "failed")
    ran = [r.command for r in transcript.results]
    missing = [c for c in expected if c not in ran]
    if missing:
        raise VpncmdError(
            target, missing[0], None, "vpncmd stopped before running this command (output truncated)"
        )


def validate_password(name: str, value: str) -> None:
    """vpncmd's prompt silently drops characters outside 0x20-0x7E and truncates at 63."""
    if not value:
        raise ValueError(f"secret {name!r} is empty")
    if len(value) > MAX_PASSWORD_LEN:
        raise ValueError(f"secret {name!r} is longer than {MAX_PASSWORD_LEN} characters")
    if any(not (0x20 <= ord(c) <= 0x7E) for c in value):
        raise ValueError(f"secret {name!r} contains characters vpncmd's password prompt cannot type")


@dataclass(frozen=True)
class VpncmdInvocation:
    """One vpncmd process: batch lines (no secrets) + stdin answers (secret).

    ``repr`` never shows the stdin answers.
    """

    commands: tuple[str, ...]
    answers: bytes = field(repr=False, default=b"")
    host: str = "localhost"
    port: int = DEFAULT_PORT
    timeout_s: int = DEFAULT_TIMEOUT_S
    admin_prompt_expected: bool | None = None
    vpncmd: str = VPNCMD

    @property
    def batch(self) -> str:
        return "".join(c + "\n" for c in self.commands)

    def argv(self, batch_path: str) -> list[str]:
        """vpncmd's argv for a batch file at ``batch_path``: no secret in it."""
        return [self.vpncmd, f"{self.host}:{self.port}", "/SERVER", "/CSV", f"/IN:{batch_path}"]

    def shell_script(self) -> str:
        """A POSIX sh script for ``sh -c`` (SSH exec, ``ip netns exec``): reads the batch from
        the first bytes of stdin into a private file, runs vpncmd with the rest of stdin."""
        n = len(self.batch.encode())
        fixed = [self.vpncmd, f"{self.host}:{self.port}", "/SERVER", "/CSV"]
        argv = " ".join(shlex.quote(a) for a in fixed) + ' "/IN:$d/in"'
        return (
            "umask 077\n"
            'd=$(mktemp -d "${TMPDIR:-/tmp}/hybridctl-vpncmd.XXXXXX") || exit 125\n'
            "trap 'rm -rf \"$d\"' EXIT\n"
            "trap 'exit 129' HUP INT TERM\n"
            f'head -c {n} > "$d/in" || exit 125\n'
            f"timeout -k 5 {int(self.timeout_s)} {argv}\n"
        )

    def wire_stdin(self) -> bytes:
        """What to write to the script's stdin: batch bytes, then the secret answers."""
        return self.batch.encode() + self.answers


def answers_bytes(values: Sequence[str]) -> bytes:
    out = b"".join(v.encode("ascii") + b"\n" for v in values) + CANCEL
    if len(out) > MAX_STDIN_BYTES:
        raise ValueError("too many password answers for one vpncmd batch; split the batch")
    return out


def read_invocation(
    commands: Sequence[str],
    admin_password: str,
    *,
    host: str = "localhost",
    port: int = DEFAULT_PORT,
    timeout_s: int = DEFAULT_TIMEOUT_S,
) -> VpncmdInvocation:
    """A read-only batch. The admin password is offered on stdin; a server without one never
    asks and the answer stays unread (the transcript tells which happened)."""
    validate_password("admin password", admin_password)
    return VpncmdInvocation(
        tuple(commands), answers_bytes([admin_password]), host, port, timeout_s, None
    )


def random_password() -> str:
    return _secrets.token_urlsafe(32)[:40]


def render_invocations(
    steps: Sequence[Step],
    secrets: Mapping[str, str],
    *,
    admin_secret: str,
    admin_password_set: bool,
    host: str = "localhost",
    port: int = DEFAULT_PORT,
    timeout_s: int = DEFAULT_TIMEOUT_S,
) -> list[VpncmdInvocation]:
    """Turn vpncmd steps + resolved secrets into batches (usually one).

    The batch holds the command lines; stdin holds, in prompt order, the admin password (if the
    server has one) and each step's password answers. A new batch starts when stdin would
    outgrow one stdio buffer. Each batch selects hubs itself (``Hub`` then ``Hub NAME``).
    """
    admin_password = secrets.get(admin_secret, "")
    invocations: list[VpncmdInvocation] = []
    asked = admin_password_set  # does the server ask for the admin password at connect?
    chunk_asked = asked
    cmds: list[str] = []
    answers: list[str] = []
    hub: str | None = None

    def start() -> None:
        nonlocal cmds, answers, hub, chunk_asked
        cmds, answers, hub, chunk_asked = [], [], None, asked
        if asked:
            validate_password(admin_secret, admin_password)
            answers.append(admin_password)

    def flush() -> None:
        if cmds:
            invocations.append(
                VpncmdInvocation(tuple(cmds), answers_bytes(answers), host, port, timeout_s, chunk_asked)
            )

    start()
    for step in steps:
        if step.kind != "vpncmd":
            raise ValueError(f"{step.command!r} is not a vpncmd step; split with vpncmd_runs()")
        values: list[str] = []
        if step.prompts:
            if step.secret == RANDOM_SECRET:
                value = random_password()
            else:
                if step.secret is None or step.secret not in secrets:
                    raise ValueError(f"step {step.command!r} needs secret {step.secret!r}, not resolved")
                value = secrets[step.secret]
                validate_password(step.secret, value)
            values = [value] * step.prompts
        if cmds and len(answers_bytes([*answers, *values])) > MAX_STDIN_BYTES - 200:
            flush()
            start()
        lines: list[str] = []
        if step.hub != hub:
            if hub is not None:
                lines.append("Hub")
            if step.hub is not None:
                lines.append(f"Hub {step.hub}")
            hub = step.hub
        lines.append(step.command)
        cmds.extend(lines)
        answers.extend(values)
        if step.command == "ServerPasswordSet":
            asked = True
    flush()
    return invocations
