"""What the VIP operations return: per-table outcomes, the move / ensure result, the status.

Plain dataclasses with ``as_dict`` for ``-o json``; the CLI renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hybridctl.features.vip.checks import Check


@dataclass
class TableOutcome:
    table_id: str
    label: str
    op: str
    destination: str
    before: str
    after: str = ""
    ok: bool = False
    error: str = ""
    seconds: float = 0.0
    code: str | None = None  # the AWS error code when the write failed

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class TgwOutcome:
    route_table_id: str
    attachment_id: str
    before: str
    op: str  # "none" | "create" | "replace"
    ok: bool
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class MoveResult:
    vip: str
    node: str
    eni_id: str
    region: str
    vpc_id: str
    tables: list[TableOutcome] = field(default_factory=list)
    onprem: list[TableOutcome] = field(default_factory=list)
    tgw: TgwOutcome | None = None
    source_dest_check: dict[str, str] = field(default_factory=dict)  # eni -> "disabled" / error
    checks: list[Check] = field(default_factory=list)
    read_seconds: float = 0.0
    write_seconds: float = 0.0  # first write sent -> every route verified: the traffic switch
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            all(t.ok for t in self.tables + self.onprem)
            and (self.tgw is None or self.tgw.ok)
            and all(v == "disabled" for v in self.source_dest_check.values())
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "vip": self.vip,
            "node": self.node,
            "eni": self.eni_id,
            "region": self.region,
            "vpc": self.vpc_id,
            "ok": self.ok,
            "tables": [t.as_dict() for t in self.tables],
            "onprem_routes": [t.as_dict() for t in self.onprem],
            "transit_gateway": self.tgw.as_dict() if self.tgw else None,
            "source_dest_check": self.source_dest_check,
            "checks": [c.as_dict() for c in self.checks],
            "read_seconds": round(self.read_seconds, 4),
            "write_seconds": round(self.write_seconds, 4),
            "calls": self.calls,
        }


@dataclass(frozen=True)
class TableStatus:
    table_id: str
    name: str | None
    main: bool
    wanted: bool
    target: str  # "" when the table does not route the VIP
    node: str | None
    state: str

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class VipStatus:
    vip: str
    address: str
    region: str
    vpc_id: str
    active_node: str | None
    tables: list[TableStatus]
    checks: list[Check]
    tgw: dict[str, object] | None
    calls: dict[str, int]

    @property
    def in_sync(self) -> bool:
        """Every declared table holds the VIP, every holder points at one node, and it is active."""
        if self.active_node is None:
            return False
        for table in self.tables:
            if table.wanted and not table.target:
                return False
            if table.target and (table.node != self.active_node or table.state != "active"):
                return False
        return self.tgw is None or bool(self.tgw.get("ok"))

    def as_dict(self) -> dict[str, object]:
        return {
            "vip": self.vip,
            "address": self.address,
            "region": self.region,
            "vpc": self.vpc_id,
            "active_node": self.active_node,
            "in_sync": self.in_sync,
            "tables": [t.as_dict() for t in self.tables],
            "transit_gateway": self.tgw,
            "checks": [c.as_dict() for c in self.checks],
            "calls": self.calls,
        }
