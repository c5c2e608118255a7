"""``python -m hybridctl_lab.azure_emulator --state-dir D --port P``: serve until SIGINT/SIGTERM.

Prints one JSON line with the endpoints and identity (never the client secret: that is in
``D/azure.env``, mode 0600, for ``set -a; . D/azure.env``).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .arm import ArmConfig
from .server import ENV_FILE, AzureEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybridctl_lab.azure_emulator", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True, help="state, TLS material and azure.env")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5512, help="0 picks a free port")
    defaults = ArmConfig()
    parser.add_argument("--lro-polls", type=int, default=defaults.lro_polls,
                        help="status polls answered InProgress before an operation completes")
    parser.add_argument("--retry-after-ms", type=int, default=defaults.lro_retry_after_ms)
    parser.add_argument("--page-size", type=int, default=defaults.page_size)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")

    config = ArmConfig(lro_polls=args.lro_polls, lro_retry_after_ms=args.retry_after_ms, page_size=args.page_size)
    emulator = AzureEmulator(args.state_dir, host=args.host, port=args.port, config=config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator.start()
    print(json.dumps({
        "base_url": emulator.base_url,
        "authority": emulator.authority,
        "ca_bundle": emulator.ca_bundle,
        "subscription_id": emulator.subscription_id,
        "tenant_id": emulator.tenant_id,
        "client_id": emulator.client_id,
        "env_file": str(args.state_dir / ENV_FILE),
    }), flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
