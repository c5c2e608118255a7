"""ARM error responses: ``{"error": {"code": ..., "message": ...}}`` with an HTTP status."""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """Raised anywhere in request handling; the server renders it as an ARM error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


def bad_request(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


def invalid_format(message: str) -> ArmError:
    # The network RP answers malformed bodies with this code and a short generic message;
    # we keep the code but say what is wrong, which costs nothing and helps debugging.
    return ArmError(400, "InvalidRequestFormat", f"Cannot parse the request. {message}".strip())
