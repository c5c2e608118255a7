"""IAM identity-policy evaluation, as ``iam:SimulatePrincipalPolicy`` does it.

Pure logic (no moto, no I/O) so it can be unit-tested on its own. It follows the
documented evaluation order for identity-based policies:

1. an applicable ``Deny`` statement anywhere wins (``explicitDeny``);
2. otherwise an applicable ``Allow`` statement allows (``allowed``), unless a
   permissions boundary exists and does not also allow it (``implicitDeny``);
3. otherwise the request is denied by default (``implicitDeny``).

A statement applies when its ``Action``/``NotAction`` matches the action name
(case-insensitive, ``*`` and ``?`` wildcards), its ``Resource``/``NotResource``
matches the resource string (case-sensitive, same wildcards; the simulator's
default resource is the literal ``*``), and every ``Condition`` holds for the
given context. Condition keys absent from the context make a condition false
(true for the negated operators, as AWS documents) and are reported as missing.

Not modelled: resource-based policies, SCPs, session policies and policy
variables (``${aws:username}`` is compared literally).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ALLOWED = "allowed"
EXPLICIT_DENY = "explicitDeny"
IMPLICIT_DENY = "implicitDeny"


@dataclass(frozen=True)
class PolicySource:
    """One policy document and where it came from (for ``MatchedStatements``)."""

    policy_id: str
    policy_type: str  # user | group | role | aws-managed | user-managed | none
    document: Mapping[str, Any]


@dataclass(frozen=True)
class MatchedStatement:
    policy_id: str
    policy_type: str
    index: int


@dataclass
class Evaluation:
    action: str
    resource: str
    decision: str
    matched: list[MatchedStatement] = field(default_factory=list)
    missing_context: list[str] = field(default_factory=list)
    allowed_by_boundary: bool | None = None


@lru_cache(maxsize=2048)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: '*' any run of characters (including ':' and '/'), '?' one character.
    parts: list[str] = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("^" + "".join(parts) + "$", flags)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).match(value) is not None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _action_matches(stmt: Mapping[str, Any], action: str) -> bool:
    if "Action" in stmt:
        return any(wildcard_match(str(p), action, ignore_case=True) for p in _as_list(stmt["Action"]))
    if "NotAction" in stmt:
        return not any(wildcard_match(str(p), action, ignore_case=True) for p in _as_list(stmt["NotAction"]))
    return False


def _resource_matches(stmt: Mapping[str, Any], resource: str) -> bool:
    if "Resource" in stmt:
        return any(wildcard_match(str(p), resource) for p in _as_list(stmt["Resource"]))
    if "NotResource" in stmt:
        return not any(wildcard_match(str(p), resource) for p in _as_list(stmt["NotResource"]))
    # Identity policies must name a resource; moto's validator enforces it. Treat a
    # statement without one as not applying rather than as applying everywhere.
    return False


_NEGATED = {
    "stringnotequals",
    "stringnotequalsignorecase",
    "stringnotlike",
    "arnnotequals",
    "arnnotlike",
    "numericnotequals",
    "notipaddress",
    "datenotequals",
}


def _compare(op: str, actual: str, expected: str) -> bool | None:
    """One value against one value; None when the operator is not supported."""
    if op in ("stringequals", "stringnotequals"):
        return actual == expected
    if op in ("stringequalsignorecase", "stringnotequalsignorecase"):
        return actual.lower() == expected.lower()
    if op in ("stringlike", "stringnotlike", "arnlike", "arnnotlike"):
        return wildcard_match(expected, actual)
    if op in ("arnequals", "arnnotequals"):
        return wildcard_match(expected, actual)
    if op == "bool":
        return actual.lower() == expected.lower()
    if op.startswith("numeric"):
        try:
            a, e = float(actual), float(expected)
        except ValueError:
            return False
        return {
            "numericequals": a == e,
            "numericnotequals": a == e,
            "numericlessthan": a < e,
            "numericlessthanequals": a <= e,
            "numericgreaterthan": a > e,
            "numericgreaterthanequals": a >= e,
        }.get(op)
    if op in ("ipaddress", "notipaddress"):
        try:
            return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
        except ValueError:
            return False
    return None


def _condition_holds(
    raw_op: str, key: str, expected: Sequence[str], context: Mapping[str, Sequence[str]], missing: set[str]
) -> bool:
    op = raw_op
    qualifier = ""
    if ":" in op:
        qualifier, op = op.split(":", 1)
        qualifier = qualifier.lower()
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    op = op.lower()
    actual = context.get(key.lower())

    if op == "null":
        # Null: "true" means the key must be absent.
        want_absent = any(str(v).lower() == "true" for v in expected)
        return (actual is None) == want_absent
    if actual is None:
        if if_exists:
            return True
        missing.add(key)
        return op in _NEGATED
    negated = op in _NEGATED

    def one(value: str) -> bool:
        results = [_compare(op, value, str(e)) for e in expected]
        if any(r is None for r in results):
            return False  # unsupported operator: never let it grant access
        hit = any(bool(r) for r in results)
        return not hit if negated else hit

    values = [str(v) for v in actual]
    if qualifier == "forallvalues":
        return all(one(v) for v in values)
    if qualifier == "foranyvalue":
        return any(one(v) for v in values)
    # Single-valued operator on a key: AWS compares each value; any match counts.
    return any(one(v) for v in values) if values else negated


def _conditions_hold(stmt: Mapping[str, Any], context: Mapping[str, Sequence[str]], missing: set[str]) -> bool:
    condition = stmt.get("Condition") or {}
    if not isinstance(condition, Mapping):
        return False
    ok = True
    for op, pairs in condition.items():
        if not isinstance(pairs, Mapping):
            return False
        for key, expected in pairs.items():
            # Keep evaluating after a failure so every missing key gets reported.
            if not _condition_holds(str(op), str(key), [str(e) for e in _as_list(expected)], context, missing):
                ok = False
    return ok


def _applicable(
    sources: Iterable[PolicySource],
    action: str,
    resource: str,
    context: Mapping[str, Sequence[str]],
    missing: set[str],
) -> tuple[list[MatchedStatement], list[MatchedStatement]]:
    allows: list[MatchedStatement] = []
    denies: list[MatchedStatement] = []
    for src in sources:
        for index, stmt in enumerate(statements(src.document)):
            if not _action_matches(stmt, action) or not _resource_matches(stmt, resource):
                continue
            if not _conditions_hold(stmt, context, missing):
                continue
            hit = MatchedStatement(src.policy_id, src.policy_type, index)
            if str(stmt.get("Effect", "")).lower() == "deny":
                denies.append(hit)
            elif str(stmt.get("Effect", "")).lower() == "allow":
                allows.append(hit)
    return allows, denies


def evaluate(
    sources: Sequence[PolicySource],
    action: str,
    resource: str = "*",
    context: Mapping[str, Sequence[str]] | None = None,
    boundary: Sequence[PolicySource] | None = None,
) -> Evaluation:
    """Evaluate identity policies (and an optional permissions boundary) for one request."""
    ctx = {k.lower(): list(v) for k, v in (context or {}).items()}
    missing: set[str] = set()
    allows, denies = _applicable(sources, action, resource, ctx, missing)
    result = Evaluation(action=action, resource=resource, decision=IMPLICIT_DENY)
    if denies:
        result.decision = EXPLICIT_DENY
        result.matched = denies
    elif allows:
        result.decision = ALLOWED
        result.matched = allows
    if boundary:
        b_allows, b_denies = _applicable(boundary, action, resource, ctx, missing)
        result.allowed_by_boundary = bool(b_allows) and not b_denies
        if result.decision == ALLOWED and not result.allowed_by_boundary:
            result.decision = EXPLICIT_DENY if b_denies else IMPLICIT_DENY
            result.matched = b_denies
    result.missing_context = sorted(missing)
    return result
