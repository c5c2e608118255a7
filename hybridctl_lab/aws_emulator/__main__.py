"""``python -m hybridctl_lab.aws_emulator [--host H] [--port P]``: serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from hybridctl.core.errors import PreconditionError

from .server import DEFAULT_HOST, DEFAULT_PORT, AwsEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybridctl_lab.aws_emulator", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port, 0 = any free (default %(default)s)")
    args = parser.parse_args(argv)

    emulator = AwsEmulator(args.host, args.port)
    try:
        emulator.start()
    except PreconditionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # One machine-readable line so a parent process (or a person) learns the port.
    print(f"aws-emulator listening on {emulator.endpoint_url}", flush=True)
    stop.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
