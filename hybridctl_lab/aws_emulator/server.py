""":class:`AwsEmulator`: moto's server on loopback behind :class:`~.middleware.EmulatorMiddleware`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from hybridctl.core.errors import PreconditionError

from . import backends
from .backends import DEFAULT_ACCOUNT_ID, STATE_LOCK, FabricView
from .budgets_ext import refresh_spend, seed_spend
from .ce_ext import seed_usage
from .middleware import CallStats, EmulatorControl, EmulatorMiddleware, Fault, MutationEvent

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5511


class _QuietHandler(WSGIRequestHandler):
    """werkzeug logs one line per request to stderr by default; the lab daemon would drown."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class AwsEmulator:
    """The lab's AWS control plane: moto + extensions + counters/faults, in a background thread.

    ``port=0`` picks a free port (read it back from :attr:`port` / :attr:`endpoint_url`).
    moto's state is process-wide: see :mod:`.backends`.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.host = host
        self._requested_port = port
        self.control = EmulatorControl()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Listen and serve in a daemon thread; returns once connections are accepted."""
        if self._server is not None:
            raise PreconditionError("the AWS emulator is already running")
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        app = EmulatorMiddleware(DomainDispatcherApplication(create_backend_app), self.control)
        try:
            # The socket is bound and listening when make_server returns, so clients
            # connecting from now on are queued until serve_forever picks them up.
            server = make_server(self.host, self._requested_port, app, threaded=True, request_handler=_QuietHandler)
        except OSError as exc:
            raise PreconditionError(f"AWS emulator cannot listen on {self.host}:{self._requested_port}: {exc}") from exc
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="aws-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (state stays in the process; see :meth:`reset`)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> AwsEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._requested_port
        return int(self._server.server_port)

    @property
    def endpoint_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ----------------------------------------------------------------- counters and faults

    def call_counts(self) -> list[CallStats]:
        """A snapshot of the per (service, action) counters."""
        return self.control.call_stats()

    def call_count(self, service: str | None = None, action: str | None = None, kind: str | None = None) -> int:
        """Requests received (throttled ones included), optionally for one service/action/kind."""
        return self.control.call_count(service, action, kind)

    def reset_call_counts(self) -> None:
        self.control.reset_calls()

    def inject_fault(
        self, service: str, action: str, count: int = 1, *, code: str | None = None, status: int | None = None
    ) -> None:
        """The next ``count`` calls of ``service:action`` ("*" = any) get AWS's throttling error.

        ``code``/``status`` override the protocol's default (EC2 RequestLimitExceeded/503,
        query Throttling/400, JSON ThrottlingException/400).
        """
        self.control.add_fault(service, action, count, code=code, status=status)

    def pending_faults(self) -> list[Fault]:
        return self.control.faults()

    def clear_faults(self) -> None:
        self.control.clear_faults()

    def subscribe(self, callback: Callable[[MutationEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after each mutating request is served; returns an unsubscribe.

        Runs in the request's thread, after state changed and before the client gets the
        response; it must be quick (set an Event, enqueue) and must not raise.
        """
        return self.control.subscribe(callback)

    def reset(self) -> None:
        """Forget every resource, counter and pending fault."""
        self.control.reset()

    # ----------------------------------------------------------------- budgets spend feed

    def seed_budget_spend(
        self,
        budget_name: str,
        actual: str | float | Decimal,
        forecasted: str | float | Decimal | None = None,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        unit: str | None = None,
    ) -> dict[str, dict[str, str]]:
        """New billing data for a budget: becomes its CalculatedSpend. Raises KeyError if unknown."""
        return seed_spend(budget_name, actual, forecasted, account_id=account_id, unit=unit)

    def refresh_budget_spend(self, account_id: str | None = None) -> int:
        """Billing data arrives again after UpdateBudget zeroed CalculatedSpend."""
        return refresh_spend(account_id)

    def seed_cost_usage(self, items: list[dict[str, Any]], *, account_id: str = DEFAULT_ACCOUNT_ID) -> int:
        """Billing line items Cost Explorer answers from (docs/cost.md); returns how many are held."""
        return seed_usage(items, account_id=account_id)

    # ----------------------------------------------------------------- in-process state

    @property
    def lock(self) -> Any:
        """:data:`~.backends.STATE_LOCK`: hold it while reading live moto objects."""
        return STATE_LOCK

    @staticmethod
    def ec2_backend(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> Any:
        return backends.ec2_backend(region, account_id)

    @staticmethod
    def iam_backend(account_id: str = DEFAULT_ACCOUNT_ID) -> Any:
        return backends.iam_backend(account_id)

    @staticmethod
    def budgets_backend(account_id: str = DEFAULT_ACCOUNT_ID) -> Any:
        return backends.budgets_backend(account_id)

    @staticmethod
    def fabric_view(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> FabricView:
        return backends.fabric_view(region, account_id)
