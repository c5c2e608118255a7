"""Fault injection and request counting, shared by the HTTP admin API and in-process callers."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

MUTATING = frozenset({"PUT", "PATCH", "POST", "DELETE"})

_DEFAULT_ERRORS = {
    429: (
        "SubscriptionRequestsThrottled",
        "Number of requests for subscription actually exceeded the limit for time interval '01:00:00'. "
        "Please try again after '{retry_after}' seconds.",
    ),
    500: (
        "InternalServerError",
        "Encountered internal server error. Diagnostic information: tracking id '{request_id}'.",
    ),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again later."),
    # What ARM answers a write while another operation runs on the resource (azure-core does
    # not retry 409: its RetryPolicy retries 408, 429 and 5xx).
    409: (
        "AnotherOperationInProgress",
        "Another operation on this or dependent resource is in progress. Retry the request once it completes.",
    ),
}
# How an injected long-running operation ends instead of Succeeded (Azure-AsyncOperation status).
OPERATION_STATUSES = ("Failed", "Canceled")
_OPERATION_ERRORS = {
    "Failed": ("InternalServerError", "An error occurred while processing the operation (injected)."),
    "Canceled": ("Canceled", "The operation was canceled (injected)."),
}


@dataclass
class Fault:
    """Answer the next ``remaining`` requests matching ``method`` + ``path_regex`` with ``status``."""

    id: str
    method: str | None
    path_regex: str
    status: int
    remaining: int
    retry_after: int | None
    code: str
    message: str
    hits: int = 0
    # Set: the request is accepted as usual, and its long-running operation ends with this
    # status (Failed / Canceled) and the error ``code`` / ``message`` instead of Succeeded.
    operation_status: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path_regex": self.path_regex,
            "status": self.status,
            "remaining": self.remaining,
            "retry_after": self.retry_after,
            "code": self.code,
            "message": self.message,
            "hits": self.hits,
            "operation_status": self.operation_status,
        }


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[tuple[Fault, re.Pattern[str]]] = []

    def add(
        self,
        method: str | None = None,
        path_regex: str = ".*",
        status: int = 429,
        count: int = 1,
        retry_after: int | None = None,
        code: str | None = None,
        message: str | None = None,
        operation_status: str | None = None,
    ) -> Fault:
        """Queue a fault. ``path_regex`` is searched (case-insensitively, as ARM paths are)
        in the decoded request path; ``retry_after`` defaults to 1 s for 429 and 503.

        ``operation_status`` (``Failed`` or ``Canceled``): instead of an error answer, the next
        matching write starts its long-running operation as usual and that operation ends with
        this status and the error; ``status`` is then ignored.
        """
        if operation_status is not None:
            canonical = [s for s in OPERATION_STATUSES if s.lower() == str(operation_status).lower()]
            if not canonical:
                raise ValueError(f"operation_status must be one of {', '.join(OPERATION_STATUSES)}")
            operation_status = canonical[0]
        elif not 400 <= int(status) <= 599:
            raise ValueError("fault status must be an HTTP error status (400-599)")
        if int(count) < 1:
            raise ValueError("fault count must be at least 1")
        pattern = re.compile(path_regex, re.IGNORECASE)
        if retry_after is None and status in (429, 503) and operation_status is None:
            retry_after = 1
        default_code, default_message = (
            _OPERATION_ERRORS[operation_status]
            if operation_status is not None
            else _DEFAULT_ERRORS.get(
                int(status), ("InjectedFault", "This error was injected by the emulator's admin API.")
            )
        )
        fault = Fault(
            id=str(uuid.uuid4()),
            method=method.upper() if method else None,
            path_regex=path_regex,
            status=int(status),
            remaining=int(count),
            retry_after=retry_after,
            code=code or default_code,
            message=message or default_message,
            operation_status=operation_status,
        )
        with self._lock:
            self._faults.append((fault, pattern))
        return fault

    def take(self, method: str, path: str, operation: bool = False) -> Fault | None:
        """The first matching fault with uses left (consuming one use), or None.

        ``operation``: look only at faults that end a long-running operation (else only at the others).
        """
        with self._lock:
            for fault, pattern in self._faults:
                if fault.remaining <= 0 or (fault.operation_status is not None) != operation:
                    continue
                if fault.method and fault.method != method.upper():
                    continue
                if not pattern.search(path):
                    continue
                fault.remaining -= 1
                fault.hits += 1
                return Fault(**fault.as_dict())
        return None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f, _ in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    kind: str  # "mutating", "read" or "auth" (token endpoint / OIDC discovery)
    status: int


class RequestLog:
    """Every non-admin request the server answered (faulted ones included)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []
        self._limit = limit

    @staticmethod
    def kind_of(method: str, is_auth: bool) -> str:
        if is_auth:
            return "auth"
        return "mutating" if method.upper() in MUTATING else "read"

    def record(self, method: str, path: str, kind: str, status: int) -> None:
        with self._lock:
            self._entries.append(LoggedRequest(method.upper(), path, kind, status))
            if len(self._entries) > self._limit:
                del self._entries[: len(self._entries) - self._limit]

    def entries(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        kind: str | None = None,
    ) -> list[LoggedRequest]:
        pattern = re.compile(path_regex, re.IGNORECASE) if path_regex else None
        with self._lock:
            return [
                e
                for e in self._entries
                if (method is None or e.method == method.upper())
                and (kind is None or e.kind == kind)
                and (pattern is None or pattern.search(e.path))
            ]

    def count(
        self, method: str | None = None, path_regex: str | None = None, kind: str | None = None
    ) -> int:
        return len(self.entries(method, path_regex, kind))

    def summary(self, method: str | None = None, path_regex: str | None = None,
                kind: str | None = None) -> dict[str, Any]:
        entries = self.entries(method, path_regex, kind)
        by_method: dict[str, int] = {}
        by_kind = {"mutating": 0, "read": 0, "auth": 0}
        by_status: dict[str, int] = {}
        for entry in entries:
            by_method[entry.method] = by_method.get(entry.method, 0) + 1
            by_kind[entry.kind] = by_kind.get(entry.kind, 0) + 1
            by_status[str(entry.status)] = by_status.get(str(entry.status), 0) + 1
        return {"total": len(entries), "by_method": by_method, "by_status": by_status, **by_kind}

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
