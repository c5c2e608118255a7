"""vpncmd on this machine, optionally inside a lab namespace (lab and tests only).

Managed hosts run the same :class:`VpncmdInvocation` over SSH; this runs it locally.
"""

from __future__ import annotations

import subprocess

from hybridctl.core.softether.vpncmd import VpncmdInvocation


def run_local(
    invocation: VpncmdInvocation, netns: str | None = None, *, extra_timeout_s: int = 15
) -> tuple[int, str]:
    """Run an invocation on this machine (optionally inside ``ip netns exec``).

    Returns (exit status, stdout). Used by the lab and the integration tests; hosts reached
    over SSH run :meth:`VpncmdInvocation.shell_script` with :meth:`wire_stdin` the same way.
    """
    argv = ["sh", "-c", invocation.shell_script()]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    proc = subprocess.run(
        argv,
        input=invocation.wire_stdin(),
        capture_output=True,
        timeout=invocation.timeout_s + extra_timeout_s,
        check=False,
    )
    return proc.returncode, proc.stdout.decode("utf-8", errors="replace")
