"""The shell scripts the SSH host backend runs, and the parsers for what they print. Pure.

One SSH exec per host and phase. The exec's command line is a fixed bootstrap that holds no
data: it copies the first N bytes of stdin (the script) into a private ``mktemp -d``
directory and runs it; the rest of stdin stays for the script, which keeps it on fd 3 and
gives every other command ``/dev/null`` (apt-get, systemctl and ip must never eat it). What is
left on fd 3 are the vpncmd password answers, in order: each vpncmd gets exactly its own with
``head -c K <&3 |`` (``head -c`` never reads ahead), so a password is never in argv, in a file
or in the script. Batch files (no secret in them, see hybridctl/core/softether/vpncmd.py) and the
managed files travel inside the script (base64 here-documents).

Output is line-oriented with markers ``@@hybridctl:NAME@@`` on their own lines:

* read: one section per fact (``os``, ``pkg``, ``files``, ``systemd``, ``service``, ``sysctl``,
  ``addr``, ``route``, ``config``, ``vpncmd``), then ``end``;
* apply: ``step:NAME`` before each step, ``fail:NAME:RC`` if it failed (the script stops
  there), ``vpncmd:N`` / ``vpncmd-end:N`` around each vpncmd transcript, ``done`` at the end.
* both: ``t:SECONDS`` (the host's clock) at the start and after each step / the vpncmd read,
  for the timeline (``up --timings``).
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from hybridctl.core.softether.vpncmd import DEFAULT_TIMEOUT_S, VPNCMD, VpncmdInvocation

MARK_PREFIX = "@@hybridctl:"
MARK_SUFFIX = "@@"
_MARK_RE = re.compile(r"^@@hybridctl:(?P<name>[A-Za-z0-9_.:/-]+)@@$")
SOFTETHER_STATE = "/var/lib/softether"
# SoftEther's configuration file, by role; the read script reports which of them exist.
SOFTETHER_CONFIG = {
    "vpn-server": f"{SOFTETHER_STATE}/vpn_server.config",
    "vpn-bridge": f"{SOFTETHER_STATE}/vpn_bridge.config",
}
SOFTETHER_CONFIGS = tuple(SOFTETHER_CONFIG.values())
# Text every template hybridctl renders carries (hybridctl/templates/): how a file at a managed path is
# told from one somebody else wrote there.
MANAGED_MARK = "Managed by hybridctl"
HEREDOC_END = "HYBRIDCTL_EOF_7f3a"
# x (0.2 s + 0.02 s), ~30 s: how long an after-network phase waits for the L3 switch. Short
# polls: the link comes up 0.2-1.3 s after the start, and each miss delays noticing it.
PING_TRIES = 140


def marker(name: str) -> str:
    return f"{MARK_PREFIX}{name}{MARK_SUFFIX}"


@dataclass(frozen=True)
class Wire:
    """One SSH exec: a command line without data, and stdin = script + secret answers."""

    command: str
    script: str
    secrets: bytes = field(repr=False, default=b"")

    @property
    def stdin(self) -> bytes:
        return self.script.encode() + self.secrets


@dataclass(frozen=True)
class Become:
    """How a host's script gets root: as the login user (``none``) or under ONE ``sudo``.

    ``password``: a password line precedes the script on stdin (``ssh.become_password``); the
    bootstrap reads it into a shell variable (builtins only: never in argv or a file) and hands
    it to ``sudo -S`` only if sudo asks for one.
    """

    method: str = "none"  # "none" | "sudo"
    password: bool = False
    user: str = "root"  # the login user, for messages


NO_BECOME = Become()
STARTED_FLAG = ".hybridctl-started"  # PRELUDE's first file in the bootstrap's directory
BECOME_ERROR = "become-error"  # marker ``@@hybridctl:become-error:KIND@@`` from the bootstrap
BECOME_EXIT = 126


def _become_fail(kind: str) -> str:
    return f"{{ printf '\\n{MARK_PREFIX}{BECOME_ERROR}:{kind}{MARK_SUFFIX}\\n'; exit {BECOME_EXIT}; }}"


def bootstrap(script: str, become: Become = NO_BECOME, shell: str = "sh") -> str:
    """The exec command line: run the first ``len(script)`` bytes of stdin as a script.

    No data in it (ps shows only this); the script's directory is 0700 and removed on exit.
    With ``sudo`` the unprivileged bootstrap writes the script, then runs the whole of it under
    one non-interactive sudo (root can read the login user's 0700 directory); the rest of stdin
    (the secret answers) goes on to the script. A sudo that wants a password nobody gave, or
    refuses the one given, prints a ``become-error`` marker and changes nothing.
    """
    n = len(script.encode())
    run = f'{shell} "$d/run.sh" "$d"'
    parts = [
        "umask 077; ",
        'd=$(mktemp -d "${TMPDIR:-/tmp}/hybridctl.XXXXXX") || exit 125; ',
        "trap 'rm -rf \"$d\"' EXIT; trap 'exit 129' HUP INT TERM; ",
    ]
    if become.method == "sudo" and become.password:
        # `read` is a builtin and reads byte by byte: the line never reaches argv or a file.
        parts.append("IFS= read -r hctl_pw || exit 125; ")
    parts.append(f'head -c {n} > "$d/run.sh" || exit 125; ')
    if become.method != "sudo":
        parts.append(f'HCTL_DIR="$d" {run}')
    else:
        parts.append(f"command -v sudo >/dev/null 2>&1 || {_become_fail('no-sudo')}; ")
        if not become.password:
            # One sudo, without a `sudo -n true` check first (a sudo is much of a small exec's
            # cost): every script starts by leaving STARTED_FLAG in its directory, so sudo's
            # refusal (exit 1, its message on stderr, nothing started) is told from a script
            # that failed.
            parts.append(
                f'sudo -n {run} 2>"$d/sudo.err"; hctl_rc=$?; '
                f'if [ "$hctl_rc" -eq 1 ] && [ ! -e "$d/{STARTED_FLAG}" ] && [ -s "$d/sudo.err" ]; '
                f"then {_become_fail('password-required')}; fi; "
                'cat "$d/sudo.err" >&2; exit "$hctl_rc"'
            )
        else:
            # -k: always ask (a cached timestamp would leave the password line to the script);
            # checked first with `true`, so a wrong password never makes sudo read the secret
            # answers that follow as further attempts. sudo -S reads exactly its line.
            parts.append(
                f"if sudo -n true 2>/dev/null; then unset hctl_pw; sudo -n {run}; else "
                "printf '%s\\n' \"$hctl_pw\" | sudo -k -S -p '' true 2>/dev/null || "
                f"{_become_fail('password-rejected')}; "
                f"{{ printf '%s\\n' \"$hctl_pw\"; unset hctl_pw; cat; }} | sudo -k -S -p '' {run}; fi"
            )
    return "sh -c " + shlex.quote("".join(parts))


def become_stdin(become: Become, password: str | None, stdin: bytes) -> bytes:
    """What goes down the exec's stdin for ``bootstrap(script, become)``."""
    if become.method == "sudo" and become.password:
        if password is None or "\n" in password or "\r" in password:
            raise ValueError("the sudo password must be one line")
        return password.encode() + b"\n" + stdin
    return stdin


def become_error(stdout: str) -> str | None:
    """The bootstrap's become failure (``no-sudo``, ``password-required``, ``password-rejected``)."""
    for name, _ in split_sections(stdout):
        if name.startswith(BECOME_ERROR + ":"):
            return name.split(":", 1)[1]
    return None


def wire(script: str, secrets: bytes = b"") -> Wire:
    return Wire(bootstrap(script), script, secrets)


# Shell functions every script starts with. POSIX sh (dash), no bashisms.
PRELUDE = r"""exec 3<&0 </dev/null 2>&1
HCTL_DIR=${HCTL_DIR:-$1}  # the bootstrap's directory (sudo resets the environment: also in $1)
# The bootstrap tells a refused sudo from a failed script by this file. (`true`, not `:`: a
# redirection error of a special builtin would end the shell.)
true > "$HCTL_DIR/STARTED_FLAG" 2>/dev/null || true
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
hctl_mark() { printf '\n@@hybridctl:%s@@\n' "$1"; }
# The host's clock between steps: where the time went (hybridctl/backends/timeline.py).
hctl_t() {  # /proc/uptime (10 ms) read by a builtin: `date` would be two processes per step
  if [ -r /proc/uptime ]; then read -r hctl_up hctl_idle < /proc/uptime; hctl_mark "t:$hctl_up"
  else hctl_mark "t:$(date +%s.%N 2>/dev/null)"; fi
}
hctl_systemd() { [ -d /run/systemd/system ]; }
hctl_cat() {  # a text file to stdout by shell builtins (no cat process); false if unreadable
  [ -r "$1" ] || return 1
  while IFS= read -r hctl_line || [ -n "$hctl_line" ]; do printf '%s\n' "$hctl_line"; done < "$1"
}
# PIDs of live processes running exactly executable $1 on this host: same mount namespace as
# this shell (on a normal host, every process; in the lab, where hosts share one PID namespace,
# only this host's). By executable identity, never by name pattern. SoftEther's pid file is not
# enough: its watchdog parent, or a worker that outlived a stop, is not in it.
hctl_pids() {
  hctl_me=$(readlink /proc/self/ns/mnt)
  for hctl_x in $(find /proc -maxdepth 2 -path '/proc/[0-9]*/exe' -lname "$1" 2>/dev/null); do
    hctl_d=${hctl_x%/exe}
    [ "$(readlink "$hctl_d/ns/mnt" 2>/dev/null)" = "$hctl_me" ] || continue
    hctl_s=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "$hctl_d/status" 2>/dev/null)
    [ -n "$hctl_s" ] && [ "$hctl_s" != Z ] && echo "${hctl_d#/proc/}"
  done
}
# Is SoftEther service $1 (binary $2) running here?
hctl_running() {
  if hctl_systemd; then systemctl is-active --quiet "$1.service"; return; fi
  [ -n "$(hctl_pids "$2")" ]
}
hctl_enabled() {
  if hctl_systemd; then systemctl is-enabled --quiet "$1.service" && echo enabled || echo disabled
  else echo n/a; fi
}
hctl_listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q LISTEN; }
""".replace("STARTED_FLAG", STARTED_FLAG)

APPLY_FUNCTIONS = r"""hctl_put() {  # path mode [umask]: base64 content on stdin; atomic replace (under set -e)
  # Two processes per file (base64, mv) when the mode has no execute bit: the new file is
  # created with it (umask $3), the directory is made only if missing, no dirname process.
  [ -d "${1%/*}" ] || mkdir -p "${1%/*}"
  [ ! -e "$1.hybridctl-new" ] || rm -f "$1.hybridctl-new"  # an interrupted run's: `>` would keep its mode
  if [ -n "${3:-}" ]; then
    umask "$3"; base64 -d > "$1.hybridctl-new"; umask 077
  else
    base64 -d > "$1.hybridctl-new"; chmod "$2" "$1.hybridctl-new"
  fi
  mv -f "$1.hybridctl-new" "$1"
}
hctl_install() {  # package: from the distribution (docs/hosts.md has the upstream fallback)
  if command -v dpkg-query >/dev/null 2>&1 && \
     dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'; then return 0; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get on this host: install $1 from the upstream tarball (docs/hosts.md)"; return 3
  fi
  DEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND
  apt-cache show "$1" >/dev/null 2>&1 || apt-get update -q || true
  if ! apt-cache show "$1" >/dev/null 2>&1; then
    hctl_hint=''
    grep -qs '^ID=ubuntu' /etc/os-release && hctl_hint=' (Ubuntu has it in universe: add-apt-repository universe)'
    echo "$1 is not in this distribution's repositories$hctl_hint: install it from the upstream tarball (docs/hosts.md)"
    return 3
  fi
  apt-get install -y -q --no-install-recommends "$1"
}
hctl_remove() {
  DEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND
  apt-get remove -y -q "$1"
}
hctl_ip_forward() { sysctl -qw "net.ipv4.ip_forward=$1" 2>/dev/null || echo "$1" > /proc/sys/net/ipv4/ip_forward; }
hctl_any_listening() {  # "ports": does a TCP socket listen on one of them?
  # Shell builtins only (read, arithmetic): this polls while SoftEther starts, and a process or
  # three per poll (ss, grep, systemctl) took the CPU SoftEther's start needed on a busy host.
  [ -r /proc/net/tcp ] || { for hctl_p in $1; do hctl_listening "$hctl_p" && return 0; done; return 1; }
  for hctl_f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$hctl_f" ] || continue
    while read -r hctl_sl hctl_local hctl_rem hctl_st hctl_rest; do
      [ "$hctl_st" = 0A ] || continue  # LISTEN (the header line has "st" there)
      hctl_lp=$((0x${hctl_local##*:}))
      for hctl_p in $1; do [ "$hctl_lp" = "$hctl_p" ] && return 0; done
    done < "$hctl_f"
  done
  return 1
}
hctl_wait_started() {  # service binary "ports": running, and listening on one of the ports
  hctl_i=0
  until hctl_any_listening "$3" && hctl_running "$1" "$2"; do
    hctl_i=$((hctl_i + 1))
    [ "$hctl_i" -le 600 ] || { echo "$1 is not listening on any of ports $3 after 30 s"; return 1; }
    sleep 0.05
  done
}
hctl_launch() {  # binary: no systemd (e.g. a container): run it as its unit would, detached
  mkdir -p /var/lib/softether /run/softether /var/log/softether
  # Detached, holding none of the SSH channel's descriptors (or the exec would never end).
  if command -v setsid >/dev/null 2>&1; then setsid "$1" start </dev/null >/dev/null 2>&1 3<&-
  else "$1" start </dev/null >/dev/null 2>&1 3<&-; fi
}
hctl_reload() {  # systemd re-reads unit files (~0.3 s on a busy host): only after one was replaced or removed
  if hctl_systemd; then systemctl daemon-reload; fi
}
hctl_enable_now() {  # units...: enabled at boot and started, in one systemctl call
  # --no-reload: systemd loads a unit it never saw when it is first named, and the symlinks only
  # matter at boot. If it still does not know the unit (it cached it as missing), reload once.
  systemctl enable --no-reload --now "$@" 2>/dev/null || { systemctl daemon-reload && systemctl enable --now "$@"; }
}
hctl_start() {  # service binary "ports"
  if hctl_systemd; then
    hctl_enable_now "$1.service"
  elif ! hctl_running "$1" "$2"; then
    hctl_launch "$2" || { echo "$2 start failed"; return 1; }
  fi
  hctl_wait_started "$1" "$2" "$3"
}
hctl_kill() {  # binary [signal]: every process of that binary on this host (watchdog and worker
  # at once, so the watchdog cannot start a new worker in between), by PID
  hctl_all=$(hctl_pids "$1")
  [ -z "$hctl_all" ] || kill "-${2:-TERM}" $hctl_all 2>/dev/null || true
}
hctl_halt() {  # service binary: stop it (not disabled)
  if hctl_systemd; then systemctl stop "$1.service"; return; fi
  hctl_running "$1" "$2" || return 0
  timeout 60 "$2" stop >/dev/null 2>&1 || true
  hctl_i=0
  while hctl_running "$1" "$2"; do
    hctl_i=$((hctl_i + 1))
    [ "$hctl_i" -ne 100 ] || hctl_kill "$2" TERM
    [ "$hctl_i" -ne 130 ] || hctl_kill "$2" KILL
    [ "$hctl_i" -le 160 ] || { echo "$1 did not stop"; return 1; }
    sleep 0.1
  done
}
hctl_stop() {  # service binary: stop and disable
  if hctl_systemd; then systemctl disable --now "$1.service"; return; fi
  hctl_halt "$1" "$2"
}
hctl_kill_wait() {  # service binary: terminate now (its configuration was flushed, or is discarded)
  hctl_kill "$2" TERM
  hctl_i=0
  while hctl_running "$1" "$2"; do
    hctl_i=$((hctl_i + 1))
    # The worker does not always act on SIGTERM (seen with vpnserver): SIGKILL after 2 s.
    [ "$hctl_i" -ne 40 ] || hctl_kill "$2" KILL
    [ "$hctl_i" -le 100 ] || { echo "$1 did not exit"; return 1; }
    sleep 0.05
  done
}
hctl_drop_listeners() {  # config "ports": remove those ports' listeners from SoftEther's configuration on disk
  # SoftEther's own header: "You may edit this file when the VPN Server / Client / Bridge program
  # is not running." vpncmd's ListenerDelete waits ~0.4 s per listener for its thread to stop,
  # one after the other (1.2 s for a fresh host's three factory listeners); hctl_restart calls
  # this just before it kills SoftEther. Lines end in CRLF; every other byte is kept as it is.
  # The read after the restart (ListenerList) shows what SoftEther made of it.
  [ -n "$2" ] && [ -f "$1" ] || return 0
  awk -v drop=" $2 " '
    { line = $0; sub(/\r$/, "", line) }
    block != "" {
      block = block $0 "\n"
      if (line ~ /^[ \t]*uint Port [0-9]+$/) { n = split(line, f, " "); port = f[n] }
      if (line ~ /^\t\t}$/) { if (index(drop, " " port " ") == 0) printf "%s", block; block = ""; port = "" }
      next
    }
    inlist && line ~ /^\t\tdeclare Listener[0-9]+$/ { block = $0 "\n"; next }
    line == "\tdeclare ListenerList" { inlist = 1 }
    inlist && line == "\t}" { inlist = 0 }
    { print }
  ' "$1" > "$1.hybridctl-new" || { rm -f "$1.hybridctl-new"; return 1; }
  chmod 600 "$1.hybridctl-new" && mv -f "$1.hybridctl-new" "$1"
}
hctl_restart() {  # service binary "ports" [config "listener ports to drop"]; the caller ran vpncmd Flush just before
  # A graceful `vpnbridge stop` waits ~10 s for an online cascade, and SoftEther's worker often
  # ignores SIGTERM for seconds; the configuration is already on disk (Flush): SIGKILL, wait
  # until the processes are gone (ms), start again. Listeners to drop leave the configuration
  # just before the kill: nothing saves it in between (no admin session, the autosave is
  # minutes away), the killed process never does, and the restart reads the file as edited.
  hctl_drop_listeners "${4:-}" "${5:-}" || echo "listeners ${5:-} stay in ${4:-}: the next run removes them"
  if hctl_systemd; then
    # Gone before `restart`: a restart of a unit still running would run its ExecStop=
    # (`vpnbridge stop`), the very wait this avoids. SIGKILL is a failure for
    # Restart=on-failure: `restart` replaces the pending automatic restart. The overlay unit is
    # PartOf= this one: the restart re-runs it (the tap comes back bare).
    systemctl kill --signal=SIGKILL "$1.service" 2>/dev/null || true
    hctl_i=0
    while [ -n "$(hctl_pids "$2")" ]; do
      hctl_i=$((hctl_i + 1))
      [ "$hctl_i" -le 200 ] || { echo "$1 did not exit"; return 1; }
      sleep 0.01
    done
    systemctl restart "$1.service"
  else
    hctl_kill "$2" KILL
    hctl_i=0
    while hctl_running "$1" "$2"; do
      hctl_i=$((hctl_i + 1))
      [ "$hctl_i" -le 200 ] || { echo "$1 did not exit"; return 1; }
      sleep 0.01
    done
    hctl_launch "$2"
  fi
  hctl_wait_started "$1" "$2" "$3"
}
hctl_overlay() {  # [softether unit]: addresses and routes, now (with systemd, also at every boot/service start)
  if hctl_systemd && [ -n "${1:-}" ]; then
    # A gateway: the unit must be active, so that every (re)start of SoftEther re-runs it
    # (PartOf=). restart when enabled, not start: a changed overlay.sh must run again.
    if systemctl is-enabled --quiet hybridctl-overlay.service 2>/dev/null; then
      systemctl restart hybridctl-overlay.service
    else
      hctl_enable_now hybridctl-overlay.service
    fi
  else
    # A LAN client (or no systemd): the script itself, now; with systemd the unit is enabled for
    # the next boot, without a systemd job per run (one systemctl call on the first run only).
    sh /etc/hybridctl/overlay.sh
    if hctl_systemd && [ ! -e /etc/systemd/system/multi-user.target.wants/hybridctl-overlay.service ]; then
      # What `systemctl enable` does for this unit ([Install] WantedBy=multi-user.target, nothing
      # else), without a systemctl process and a manager call per client: the boot reads it.
      [ -d /etc/systemd/system/multi-user.target.wants ] || mkdir -p /etc/systemd/system/multi-user.target.wants
      ln -sf /etc/systemd/system/hybridctl-overlay.service \
        /etc/systemd/system/multi-user.target.wants/hybridctl-overlay.service
    fi
  fi
}
hctl_overlay_again() {  # after hctl_restart: the tap came back bare
  # With systemd the restart re-runs the overlay unit (PartOf=): `start --no-block` joins that
  # job (or starts a unit that was not active) without waiting for it; the link wait that
  # follows needs the tap's address anyway, so the two overlap instead of adding up.
  if hctl_systemd; then systemctl start --no-block hybridctl-overlay.service; else sh /etc/hybridctl/overlay.sh; fi
}
hctl_overlay_off() {
  if hctl_systemd; then systemctl disable --now hybridctl-overlay.service 2>/dev/null || true; fi
}
hctl_wait_ping() {  # address tries: wait (bounded) until it answers; never fails the run
  command -v ping >/dev/null 2>&1 || return 0
  hctl_i=0
  # Short waits: the link comes up 0.2-1.3 s after the start, a 1 s ping timeout would add up to 1 s.
  until ping -n -c 1 -W 0.2 "$1" >/dev/null 2>&1; do
    hctl_i=$((hctl_i + 1))
    [ "$hctl_i" -lt "$2" ] || { echo "no answer from $1 yet"; return 0; }
    sleep 0.02
  done
}
hctl_vpncmd() {  # index answer-bytes port timeout: batch in $HCTL_DIR/vpncmd-N.in, answers on fd 3
  hctl_rc=0
  head -c "$2" <&3 | timeout -k 5 "$4" VPNCMD "localhost:$3" /SERVER /CSV "/IN:$HCTL_DIR/vpncmd-$1.in" \
    > "$HCTL_DIR/vpncmd-$1.out" 2>&1 || hctl_rc=$?
  hctl_mark "vpncmd:$1"
  cat "$HCTL_DIR/vpncmd-$1.out"
  hctl_mark "vpncmd-end:$1"
  case "$hctl_rc" in 124|137) echo "vpncmd timed out"; return 1 ;; esac
  if grep -Eq '^Error occurred|Command not found|first select the Virtual Hub|^Access has been denied' \
       "$HCTL_DIR/vpncmd-$1.out"; then
    echo "vpncmd reported an error"; return 1
  fi
}
""".replace("VPNCMD", VPNCMD)


def _heredoc(command: str, content: str) -> str:
    if any(line == HEREDOC_END for line in content.splitlines()):
        raise ValueError("content contains the here-document terminator")
    body = content if content.endswith("\n") or not content else content + "\n"
    return f"{command} <<'{HEREDOC_END}'\n{body}{HEREDOC_END}\n"


def _b64_lines(data: bytes) -> str:
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 76] + "\n" for i in range(0, len(text), 76))


# -- read ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceRef:
    name: str  # systemd unit name without .service
    binary: str
    package: str


@dataclass(frozen=True)
class ReadRequest:
    """What to read on one host."""

    paths: tuple[str, ...]  # managed files: sha256, mode, whether hybridctl wrote it
    packages: tuple[str, ...] = ()
    service: ServiceRef | None = None
    vpncmd: VpncmdInvocation | None = None  # the read batch (answers = the admin password)
    vpncmd_ports: tuple[int, ...] = ()  # tried in order: the first one listening is used
    # Whether to list the IPv4 addresses: only hosts with planned overlay addresses compare
    # any (a LAN client has none), and the list is a process on every read.
    addresses: bool = True


def render_read(request: ReadRequest) -> Wire:
    """The read script: every fact in one exec. SoftEther is read only if its service runs."""
    body, secrets = read_body(request)
    return wire(PRELUDE + body, secrets)


def read_body(request: ReadRequest) -> tuple[str, bytes]:
    """The read script's commands (after PRELUDE) and the secret answers they take from fd 3.

    Also the tail of an apply script (``ApplyScript.render(read_after=...)``): the verification
    read in the apply's own exec.
    """
    q = shlex.quote
    parts = ["hctl_t\n"]
    # The distribution (adapters/distros.py decides whether it is supported).
    # Files the read prints whole are read by a builtin (one process fewer each, on every host).
    parts.append("hctl_mark os\nhctl_cat /etc/os-release || hctl_cat /usr/lib/os-release || true\n")
    parts.append("hctl_mark pkg\n")
    if request.packages:
        pkgs = " ".join(q(p) for p in request.packages)
        parts.append(
            "if command -v dpkg-query >/dev/null 2>&1; then\n"
            f"  dpkg-query -W -f='${{Package}}\\t${{db:Status-Abbrev}}\\n' {pkgs} 2>/dev/null || true\n"
            "fi\n"
        )
        if request.service is not None:
            # Hosts without dpkg (the upstream tarball): the binary's presence stands for the package.
            binary, package = q(request.service.binary), q(request.service.package)
            parts.append(
                "command -v dpkg-query >/dev/null 2>&1 || "
                f"{{ [ -x {binary} ] && printf '%s\\tii \\n' {package}; }} || true\n"
            )
    parts.append("hctl_mark files\n")
    if request.paths:
        # One sha256sum, one stat and one grep for all the files there are (not three processes
        # and three subshells per file), joined with builtins: path, sha256, mode, ours/foreign.
        parts.append(
            "set --\n"
            f"for hctl_fp in {quote_all(request.paths)}; do [ -f \"$hctl_fp\" ] && set -- \"$@\" \"$hctl_fp\"; done\n"
            'if [ "$#" -gt 0 ]; then\n'
            '  sha256sum "$@" > "$HCTL_DIR/f.sha"; stat -c \'%n %a\' "$@" > "$HCTL_DIR/f.mode"\n'
            f'  grep -l {q(MANAGED_MARK)} "$@" > "$HCTL_DIR/f.ours" 2>/dev/null || true\n'
            '  while read -r hctl_fh hctl_fn; do\n'
            "    hctl_fm=''; while read -r hctl_n hctl_m; do [ \"$hctl_n\" = \"$hctl_fn\" ] && hctl_fm=$hctl_m; "
            'done < "$HCTL_DIR/f.mode"\n'
            "    hctl_fo=foreign; while read -r hctl_n; do [ \"$hctl_n\" = \"$hctl_fn\" ] && hctl_fo=ours; "
            'done < "$HCTL_DIR/f.ours"\n'
            "    printf '%s\\t%s\\t%s\\t%s\\n' \"$hctl_fn\" \"$hctl_fh\" \"$hctl_fm\" \"$hctl_fo\"\n"
            '  done < "$HCTL_DIR/f.sha"\n'
            "fi\n"
        )
    parts.append("hctl_mark systemd\nhctl_systemd && echo yes || echo no\n")
    parts.append("hctl_mark service\n")
    if request.service is not None:
        s = request.service
        parts.append(
            f"if hctl_running {q(s.name)} {q(s.binary)}; then hctl_st=running; else hctl_st=stopped; fi\n"
            f'printf \'%s\\t%s\\t%s\\n\' {q(s.name)} "$hctl_st" "$(hctl_enabled {q(s.name)})"\n'
        )
    parts.append("hctl_mark sysctl\nhctl_cat /proc/sys/net/ipv4/ip_forward\n")
    parts.append("hctl_mark addr\nip -j -4 addr show\n" if request.addresses else "hctl_mark addr\n")
    parts.append("hctl_mark route\nip -j -4 route show table main\n")
    parts.append("hctl_mark config\n")
    for path in SOFTETHER_CONFIGS:
        parts.append(f"[ -f {q(path)} ] && echo {q(path)}\n")
    secrets = b""
    if request.vpncmd is not None and request.service is not None:
        inv = request.vpncmd
        s = request.service
        secrets = inv.answers
        ports = " ".join(str(p) for p in request.vpncmd_ports) or str(inv.port)
        parts.append(_heredoc('cat > "$HCTL_DIR/read.in"', inv.batch))
        parts.append(
            # The service section just asked systemd (or /proc): no second systemctl call.
            'if [ "$hctl_st" = running ]; then\n'
            "  hctl_port=''\n"
            f'  for hctl_p in {ports}; do if hctl_listening "$hctl_p"; then hctl_port=$hctl_p; break; fi; done\n'
            '  if [ -n "$hctl_port" ]; then\n'
            "    hctl_t\n"
            '    hctl_mark "vpncmd:$hctl_port"\n'
            f"    head -c {len(secrets)} <&3 | timeout -k 5 {int(inv.timeout_s)} {q(inv.vpncmd)} "
            '"localhost:$hctl_port" /SERVER /CSV "/IN:$HCTL_DIR/read.in" || true\n'
            "    hctl_t\n"
            "  fi\n"
            "fi\n"
        )
    parts.append("hctl_t\nhctl_mark end\n")
    return "".join(parts), secrets


@dataclass(frozen=True)
class FileFact:
    sha256: str
    mode: str
    ours: bool


@dataclass(frozen=True)
class RawRead:
    """The read script's output, split and lightly parsed (no iproute2/vpncmd parsing here)."""

    packages: dict[str, bool]
    files: dict[str, FileFact]
    systemd: bool
    service_running: bool | None  # None: no service on this host
    service_enabled: str  # enabled / disabled / n/a
    ip_forward: str
    addr_json: str
    route_json: str
    configs: tuple[str, ...]
    vpncmd_port: int | None  # the port vpncmd read through; None when SoftEther was not read
    vpncmd_output: str
    os_release: str = ""  # /etc/os-release as printed
    # The host's clock: the script's start and end, and the vpncmd read's (None if not read).
    clock: tuple[float, float] | None = None
    vpncmd_clock: tuple[float, float] | None = None

    @property
    def config_exists(self) -> bool:
        return bool(self.configs)


def split_sections(text: str) -> list[tuple[str, str]]:
    """(marker name, body) in output order; body without the blank line before the next marker."""
    out: list[tuple[str, str]] = []
    name: str | None = None
    body: list[str] = []
    for line in text.split("\n"):
        m = _MARK_RE.match(line.rstrip("\r"))
        if m:
            if name is not None:
                out.append((name, _trim(body)))
            name = m.group("name")
            body = []
        elif name is not None:
            body.append(line)
    if name is not None:
        out.append((name, _trim(body)))
    return out


def _trim(lines: list[str]) -> str:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(lines) + ("\n" if lines else "")


class ScriptOutputError(ValueError):
    """The host printed something the parser does not understand (e.g. the script was cut off)."""


def clock_mark(name: str) -> float | None:
    """The host clock of a ``t:SECONDS`` marker (None for other markers, or a clock without %N)."""
    if not name.startswith("t:"):
        return None
    try:
        return float(name[2:])
    except ValueError:
        return None


def parse_read(text: str) -> RawRead:
    sections = split_sections(text)
    names = [n for n, _ in sections]
    if "end" not in names:
        raise ScriptOutputError("the read script did not finish (no end marker)")
    found = dict(sections)
    packages: dict[str, bool] = {}
    for line in found.get("pkg", "").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0]:
            packages[fields[0]] = fields[1].startswith("ii")
    files: dict[str, FileFact] = {}
    for line in found.get("files", "").splitlines():
        fields = line.split("\t")
        if len(fields) == 4:
            files[fields[0]] = FileFact(fields[1], fields[2], fields[3] == "ours")
    running: bool | None = None
    enabled = "n/a"
    for line in found.get("service", "").splitlines():
        fields = line.split("\t")
        if len(fields) == 3:
            running = fields[1] == "running"
            enabled = fields[2]
    port: int | None = None
    output = ""
    stamps: list[tuple[int, float]] = []  # (section index, host clock)
    vpncmd_at: int | None = None
    for index, (name, body) in enumerate(sections):
        if name.startswith("vpncmd:"):
            port = int(name.split(":", 1)[1])
            output = body
            vpncmd_at = index
        stamp = clock_mark(name)
        if stamp is not None:
            stamps.append((index, stamp))
    clock = (stamps[0][1], stamps[-1][1]) if len(stamps) >= 2 else None
    vpncmd_clock = None
    if vpncmd_at is not None:
        before = [t for i, t in stamps if i < vpncmd_at]
        after = [t for i, t in stamps if i > vpncmd_at]
        if before and after:
            vpncmd_clock = (before[-1], after[0])
    return RawRead(
        packages=packages,
        files=files,
        systemd=found.get("systemd", "").strip() == "yes",
        service_running=running,
        service_enabled=enabled,
        ip_forward=found.get("sysctl", "").strip(),
        addr_json=found.get("addr", ""),
        route_json=found.get("route", ""),
        configs=tuple(x.strip() for x in found.get("config", "").splitlines() if x.strip()),
        vpncmd_port=port,
        vpncmd_output=output,
        os_release=found.get("os", ""),
        clock=clock,
        vpncmd_clock=vpncmd_clock,
    )


# -- apply ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One named step of an apply script. ``group`` ties it to the changes it carries out."""

    name: str
    group: str
    body: str
    fatal: bool = True


@dataclass
class ApplyScript:
    """Steps plus the secret answers their vpncmd runs read from fd 3, in order."""

    steps: list[Step] = field(default_factory=list)
    secrets: bytearray = field(default_factory=bytearray, repr=False)
    vpncmd: dict[int, VpncmdInvocation] = field(default_factory=dict, repr=False)

    def add(self, name: str, group: str, body: str, fatal: bool = True) -> None:
        self.steps.append(Step(name, group, body, fatal))

    def __bool__(self) -> bool:
        return bool(self.steps)

    def add_vpncmd(self, group: str, invocation: VpncmdInvocation, port: int) -> None:
        index = len(self.vpncmd) + 1
        self.vpncmd[index] = invocation
        self.secrets += invocation.answers
        body = _heredoc(f'cat > "$HCTL_DIR/vpncmd-{index}.in"', invocation.batch)
        timeout = int(invocation.timeout_s or DEFAULT_TIMEOUT_S)
        body += f"hctl_vpncmd {index} {len(invocation.answers)} {int(port)} {timeout}\n"
        self.add(f"vpncmd-{index}", group, body)

    def render(self, read_after: ReadRequest | None = None) -> Wire:
        """The apply script. ``read_after``: once every step is done, the same exec reads the host
        as :func:`render_read` would (its output follows the ``done`` marker; split it off with
        :func:`split_read_after`), so the verification costs no exec of its own."""
        parts = [PRELUDE, APPLY_FUNCTIONS, "hctl_t\n"]
        for step in self.steps:
            parts.append(f"hctl_mark 'step:{step.name}'\n(\nset -e\n{step.body})\nhctl_rc=$?\nhctl_t\n")
            if step.fatal:
                parts.append(
                    f'if [ "$hctl_rc" -ne 0 ]; then hctl_mark "fail:{step.name}:$hctl_rc"; exit "$hctl_rc"; fi\n'
                )
        parts.append("hctl_mark done\n")
        secrets = bytes(self.secrets)
        if read_after is not None:
            body, read_secrets = read_body(read_after)
            # The apply's vpncmd runs took exactly their own answers from fd 3: the read's come next.
            parts.append(body)
            secrets += read_secrets
        return wire("".join(parts), secrets)


def split_read_after(text: str) -> tuple[str, str | None]:
    """An apply script's output: (the apply's part up to its ``done`` marker, the read after it).

    The read part is None when the script did not reach ``done`` or printed no read after it.
    """
    done = f"\n{marker('done')}\n"
    head, found, tail = text.partition(done)
    if not found:
        return text, None
    return head + done, tail if marker("end") in tail else None


def put_file(path: str, content: str, mode: int) -> str:
    # A mode with no execute bit is what a new file gets under umask ~mode: no chmod process.
    umask = "" if mode & 0o111 else f" {0o666 & ~mode:03o}"
    return _heredoc(f"hctl_put {shlex.quote(path)} {mode:o}{umask}", _b64_lines(content.encode()))


def remove_file(path: str) -> str:
    return f"rm -f {shlex.quote(path)}\n"


@dataclass(frozen=True)
class ApplyResult:
    completed: tuple[str, ...]  # steps that ran to the end
    failed: str | None  # the step that failed (the script stopped there)
    rc: int | None
    outputs: dict[str, str]  # step -> its output (stdout and stderr)
    vpncmd: dict[int, str]  # vpncmd index -> transcript
    finished: bool
    # Steps timed by the host: (step, start, end) on its clock, and the script's first timestamp.
    times: tuple[tuple[str, float, float], ...] = ()
    started: float | None = None


def parse_apply(text: str) -> ApplyResult:
    completed: list[str] = []
    outputs: dict[str, str] = {}
    vpncmd: dict[int, str] = {}
    failed: str | None = None
    rc: int | None = None
    finished = False
    current: str | None = None
    times: list[tuple[str, float, float]] = []
    started: float | None = None
    last: float | None = None  # the latest host timestamp
    timing: tuple[str, float] | None = None  # the step whose end timestamp is due
    for name, body in split_sections(text):
        stamp = clock_mark(name)
        if stamp is not None:
            started = stamp if started is None else started
            if timing is not None:
                times.append((timing[0], timing[1], stamp))
                timing = None
            last = stamp
            continue
        if name.startswith("step:"):
            if current is not None:
                completed.append(current)
            current = name[5:]
            outputs[current] = body
            timing = (current, last) if last is not None else None
        elif name.startswith("vpncmd:"):
            vpncmd[int(name.split(":", 1)[1])] = body
        elif name.startswith("vpncmd-end:"):
            if current is not None:
                outputs[current] = outputs.get(current, "") + body
        elif name.startswith("fail:"):
            _, step, code = name.split(":", 2)
            failed, rc = step, int(code)
            current = None
        elif name == "done":
            if current is not None:
                completed.append(current)
                current = None
            finished = True
    return ApplyResult(tuple(completed), failed, rc, outputs, vpncmd, finished, tuple(times), started)


def output_tail(text: str, lines: int = 6, width: int = 400) -> str:
    """The last lines of a step's output, for an error message."""
    kept = [x.strip() for x in text.strip().splitlines() if x.strip()][-lines:]
    return " | ".join(kept)[-width:]


def quote_all(items: Sequence[str]) -> str:
    return " ".join(shlex.quote(i) for i in items)
