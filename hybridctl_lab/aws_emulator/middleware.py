"""The WSGI layer in front of moto: counting, fault injection, extensions, admin API.

Every AWS request is identified (:mod:`.protocol`), counted, possibly answered with an
injected throttling error, then served under :data:`~.backends.STATE_LOCK` either by an
extension responder (the actions moto lacks or gets wrong) or by moto's own app. After a
mutating request completes, subscribers are told, so the in-process fabric reconciler
can react before the client even sees the response.

Admin API (JSON, under ``/_emulator/``, a path moto never uses):

====== ============================ ===================================================
GET    /_emulator/health            ``{"ok": true}``
GET    /_emulator/calls             counters: ``{"calls": [...], "totals": {...}}``
POST   /_emulator/calls/reset       zero the counters
GET    /_emulator/faults            pending faults
POST   /_emulator/faults            ``{"service", "action", "count"=1, "code"?, "status"?}``
DELETE /_emulator/faults            drop pending faults
POST   /_emulator/budgets/spend     ``{"budget_name", "actual", "forecasted"?, "unit"?,
                                    "account_id"?}`` (new billing data for one budget)
POST   /_emulator/budgets/refresh   ``{"account_id"?}`` (billing data arrives again)
POST   /_emulator/reset             forget all state, counters and faults
====== ============================ ===================================================
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from werkzeug.wrappers import Request

from hybridctl_lab.subscribers import Subscribers

from . import budgets_ext, ce_ext, ec2_ext, iam_ext, pricing_ext
from .backends import DEFAULT_ACCOUNT_ID, STATE_LOCK, reset_state
from .protocol import ErrorResponse, RequestInfo, identify, internal_error, is_mutating, throttle_error

# moto >= 5.2.5 responses read attributes (from_wsgi_server, raw_url) of the request class its
# server builds, BackendRequest; older moto servers hand them a plain werkzeug Request.
ServerRequest: type[Request] = getattr(
    importlib.import_module("moto.moto_server.werkzeug_app"), "BackendRequest", Request
)
log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_emulator"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: (signing name, action) -> responder class that replaces moto's for that action.
EXTENSIONS: dict[tuple[str, str], type[Any]] = {
    **{("ec2", a): ec2_ext.ExtEC2Response for a in ec2_ext.OVERRIDDEN_ACTIONS},
    **{("iam", a): iam_ext.ExtIamResponse for a in iam_ext.OVERRIDDEN_ACTIONS},
    **{("budgets", a): budgets_ext.ExtBudgetsResponse for a in budgets_ext.OVERRIDDEN_ACTIONS},
    **{("ce", a): ce_ext.ExtCostExplorerResponse for a in ce_ext.OVERRIDDEN_ACTIONS},
    **{("pricing", a): pricing_ext.PricingResponse for a in pricing_ext.OVERRIDDEN_ACTIONS},
}


@dataclass(frozen=True)
class MutationEvent:
    """Passed to subscribers after a mutating request was served (whatever its outcome)."""

    service: str
    action: str
    region: str
    status: int


@dataclass
class CallStats:
    service: str
    action: str
    kind: str  # "read" | "mutating"
    count: int = 0  # every request received, throttled ones included
    throttled: int = 0  # answered with an injected fault
    errors: int = 0  # served, but with an HTTP status >= 400


@dataclass
class Fault:
    service: str
    action: str  # "*" matches every action of the service
    remaining: int
    code: str | None = None
    status: int | None = None


class EmulatorControl:
    """Counters, faults and subscribers, shared by the middleware, the admin API and Python."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[tuple[str, str], CallStats] = {}
        self._faults: list[Fault] = []
        self._subscribers: Subscribers[MutationEvent] = Subscribers("aws emulator")

    # -- counters

    def _stats(self, info: RequestInfo) -> CallStats:
        stats = self._calls.get((info.service, info.action))
        if stats is None:
            kind = "mutating" if info.mutating else "read"
            stats = self._calls[(info.service, info.action)] = CallStats(info.service, info.action, kind)
        return stats

    def record_call(self, info: RequestInfo, *, throttled: bool) -> None:
        with self._lock:
            stats = self._stats(info)
            stats.count += 1
            stats.throttled += int(throttled)

    def record_status(self, info: RequestInfo, status: int) -> None:
        if status >= 400:
            with self._lock:
                self._stats(info).errors += 1

    def call_stats(self) -> list[CallStats]:
        with self._lock:
            return [CallStats(**asdict(s)) for s in self._calls.values()]

    def call_count(self, service: str | None = None, action: str | None = None, kind: str | None = None) -> int:
        return sum(
            s.count
            for s in self.call_stats()
            if (service is None or s.service == service)
            and (action is None or s.action == action)
            and (kind is None or s.kind == kind)
        )

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # -- faults

    def add_fault(
        self, service: str, action: str, count: int = 1, *, code: str | None = None, status: int | None = None
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(Fault(service.lower(), action, count, code, status))

    def take_fault(self, info: RequestInfo) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.service == info.service and fault.action in (info.action, "*"):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def faults(self) -> list[Fault]:
        with self._lock:
            return [Fault(**asdict(f)) for f in self._faults]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- subscribers

    def subscribe(self, callback: Callable[[MutationEvent], None]) -> Callable[[], None]:
        return self._subscribers.subscribe(callback)

    def notify(self, event: MutationEvent) -> None:
        # A broken subscriber must not turn a served request into an error: Subscribers logs it.
        self._subscribers.notify(event)

    def reset(self) -> None:
        reset_state()
        ce_ext.clear_usage()
        self.reset_calls()
        self.clear_faults()


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = bytes(stream.read(int(length)))
    elif environ.get("wsgi.input_terminated"):
        body = bytes(stream.read())
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _respond(start_response: StartResponse, status: int, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    from http import HTTPStatus

    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    headers = [(k, v) for k, v in headers if k.lower() not in ("content-length", "status")]
    headers.append(("Content-Length", str(len(body))))
    start_response(f"{status} {reason}", headers)
    return [body]


class EmulatorMiddleware:
    def __init__(self, app: WSGIApp, control: EmulatorControl) -> None:
        self.app = app
        self.control = control

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            return self._admin(environ, start_response)
        body = _read_body(environ)
        if path.startswith("/moto-api"):
            with STATE_LOCK:
                status, headers, payload = self._run_moto(environ)
            return _respond(start_response, status, headers, payload)

        info = identify(environ, body)
        fault = self.control.take_fault(info)
        self.control.record_call(info, throttled=fault is not None)
        if fault is not None:
            err = throttle_error(info, fault.code, fault.status)
            return _respond(start_response, err.status, err.headers, err.body)

        responder = EXTENSIONS.get((info.service, info.action))
        with STATE_LOCK:
            try:
                if responder is not None:
                    status, headers, payload = self._run_extension(responder, environ)
                else:
                    status, headers, payload = self._run_moto(environ)
            except Exception as exc:
                log.exception("aws emulator failed on %s:%s", info.service, info.action)
                failure: ErrorResponse = internal_error(info, f"{type(exc).__name__}: {exc}")
                status, headers, payload = failure.status, failure.headers, failure.body
        self.control.record_status(info, status)
        if info.mutating:
            self.control.notify(MutationEvent(info.service, info.action, info.region, status))
        return _respond(start_response, status, headers, payload)

    # -- serving

    def _run_moto(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = list(headers)
            return lambda _data: None

        chunks = self.app(environ, capture)
        try:
            payload = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return captured["status"], captured["headers"], payload

    @staticmethod
    def _run_extension(responder: type[Any], environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        # The same request class moto's own server hands its responses, so an extension's
        # response class sees the request exactly as moto's server would give it.
        request = ServerRequest(environ)
        status, headers, body = responder.dispatch(request, request.url, dict(request.headers))
        payload = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
        header_list = [(str(k), str(v)) for k, v in dict(headers).items() if str(k).lower() != "status"]
        if not any(k.lower() == "content-type" for k, _ in header_list):
            header_list.append(("Content-Type", "application/x-amz-json-1.1" if payload[:1] == b"{" else "text/xml"))
        return int(status), header_list, payload

    # -- admin API

    def _admin(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "")).rstrip("/")
        try:
            raw = _read_body(environ)
            data = json.loads(raw) if raw.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("the request body must be a JSON object")
            status, result = self._admin_route(method, path[len(ADMIN_PREFIX) :] or "/", data)
        except (ValueError, KeyError, TypeError) as exc:
            status, result = 400, {"error": str(exc)}
        body = json.dumps(result).encode()
        return _respond(start_response, status, [("Content-Type", "application/json")], body)

    def _admin_route(self, method: str, route: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        control = self.control
        if (method, route) == ("GET", "/health"):
            return 200, {"ok": True}
        if (method, route) == ("GET", "/calls"):
            stats = control.call_stats()
            totals = {
                "read": sum(s.count for s in stats if s.kind == "read"),
                "mutating": sum(s.count for s in stats if s.kind == "mutating"),
                "throttled": sum(s.throttled for s in stats),
            }
            return 200, {"calls": [asdict(s) for s in stats], "totals": totals}
        if (method, route) == ("POST", "/calls/reset"):
            control.reset_calls()
            return 200, {"ok": True}
        if (method, route) == ("GET", "/faults"):
            return 200, {"faults": [asdict(f) for f in control.faults()]}
        if (method, route) == ("POST", "/faults"):
            status = data.get("status")
            control.add_fault(
                str(data["service"]),
                str(data["action"]),
                int(data.get("count", 1)),
                code=data.get("code"),
                status=int(status) if status is not None else None,
            )
            return 200, {"ok": True}
        if (method, route) == ("DELETE", "/faults"):
            control.clear_faults()
            return 200, {"ok": True}
        if (method, route) == ("POST", "/budgets/spend"):
            spend = budgets_ext.seed_spend(
                str(data["budget_name"]),
                data["actual"],
                data.get("forecasted"),
                account_id=str(data.get("account_id", DEFAULT_ACCOUNT_ID)),
                unit=data.get("unit"),
            )
            return 200, {"CalculatedSpend": spend}
        if (method, route) == ("POST", "/budgets/refresh"):
            account = data.get("account_id")
            return 200, {"refreshed": budgets_ext.refresh_spend(str(account) if account else None)}
        if (method, route) == ("POST", "/ce/usage"):
            items = data.get("items")
            if not isinstance(items, list):
                raise ValueError("'items' (a list of line items) is required")
            count = ce_ext.seed_usage(items, account_id=str(data.get("account_id", DEFAULT_ACCOUNT_ID)))
            return 200, {"line_items": count}
        if (method, route) == ("GET", "/ce/usage"):
            return 200, {"items": ce_ext.snapshot()}
        if (method, route) == ("POST", "/reset"):
            control.reset()
            return 200, {"ok": True}
        return 404, {"error": f"no admin endpoint {method} {ADMIN_PREFIX}{route}"}


__all__ = [
    "ADMIN_PREFIX",
    "CallStats",
    "EmulatorControl",
    "EmulatorMiddleware",
    "Fault",
    "MutationEvent",
    "is_mutating",
]
