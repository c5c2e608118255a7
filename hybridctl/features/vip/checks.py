"""One result type for safety checks and `doctor`: pass, warn or fail, with the fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from hybridctl.core.errors import PreconditionError


class Status(StrEnum):
    ok = "ok"
    warn = "warn"
    fail = "fail"


@dataclass(frozen=True)
class Check:
    """One verdict. ``id`` is stable (scripts and the OCF agent key on it); ``subject`` says on what."""

    id: str
    subject: str
    status: Status
    message: str
    fix: str = ""
    details: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "subject": self.subject,
            "status": str(self.status),
            "message": self.message,
            "fix": self.fix,
            "details": list(self.details),
        }


def ok(id: str, subject: str, message: str, *details: str) -> Check:
    return Check(id, subject, Status.ok, message, "", tuple(details))


def warn(id: str, subject: str, message: str, fix: str, *details: str) -> Check:
    return Check(id, subject, Status.warn, message, fix, tuple(details))


def fail(id: str, subject: str, message: str, fix: str, *details: str) -> Check:
    return Check(id, subject, Status.fail, message, fix, tuple(details))


def worst(checks: list[Check]) -> Status:
    if any(c.status is Status.fail for c in checks):
        return Status.fail
    if any(c.status is Status.warn for c in checks):
        return Status.warn
    return Status.ok


@dataclass
class UnsafeError(PreconditionError):
    """A safety check failed before any change was made; ``checks`` are the failed ones."""

    vip: str
    checks: list[Check] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"vip {self.vip}: refused, nothing was changed"]
        for check in self.checks:
            lines.append(f"  {check.id}: {check.message} (fix: {check.fix})")
            lines.extend(f"    {d}" for d in check.details)
        return "\n".join(lines)

    @property
    def ids(self) -> set[str]:
        return {c.id for c in self.checks}
