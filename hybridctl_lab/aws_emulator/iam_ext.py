"""IAM policy simulation (``SimulatePrincipalPolicy``, ``SimulateCustomPolicy``), absent from moto.

The principal's policies are read from moto's IAM backend: for a user its inline and
attached managed policies plus those of its groups; for a role its inline and attached
policies and its permissions boundary; for a group its own. Evaluation is
:mod:`.iam_policy`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from moto.core.responses import ActionResult
from moto.iam.exceptions import InvalidInput, MalformedPolicyDocument, NoSuchEntity
from moto.iam.responses import IamResponse

from .iam_policy import Evaluation, PolicySource, evaluate


def _document(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    text = str(raw)
    for candidate in (text, unquote(text)):
        try:
            doc = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    raise MalformedPolicyDocument("The policy document is not valid JSON.")


def _managed_sources(managed: dict[str, Any]) -> list[PolicySource]:
    sources = []
    for arn, policy in managed.items():
        default = next((v for v in policy.versions if v.is_default), policy.versions[0])
        kind = "aws-managed" if ":aws:policy/" in arn else "user-managed"
        sources.append(PolicySource(policy.name, kind, _document(default.document)))
    return sources


def _inline_sources(policies: dict[str, Any], kind: str) -> list[PolicySource]:
    return [PolicySource(name, kind, _document(doc)) for name, doc in policies.items()]


def principal_sources(backend: Any, arn: str) -> tuple[list[PolicySource], list[PolicySource]]:
    """(identity policies, permissions boundary) of the user, role or group named by ``arn``."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or "/" not in parts[5]:
        raise InvalidInput(f"Invalid ARN: {arn}")
    kind, _, path_and_name = parts[5].partition("/")
    name = path_and_name.rsplit("/", 1)[-1]
    if kind == "user":
        user = backend.get_user(name)  # NoSuchEntity like AWS
        sources = _inline_sources(user.policies, "user") + _managed_sources(user.managed_policies)
        for group in backend.groups.values():
            if user in group.users:
                sources += _inline_sources(group.policies, "group") + _managed_sources(group.managed_policies)
        return sources, []
    if kind == "role":
        role = next((r for r in backend.get_roles() if r.name == name), None)
        if role is None:
            raise NoSuchEntity(f"The role with name {name} cannot be found.")
        sources = _inline_sources(role.policies, "role") + _managed_sources(role.managed_policies)
        boundary: list[PolicySource] = []
        if role.permissions_boundary_arn:
            policy = backend.managed_policies.get(role.permissions_boundary_arn) or next(
                (p for p in backend.aws_managed_policies if p.arn == role.permissions_boundary_arn), None
            )
            if policy is not None:
                boundary = _managed_sources({policy.arn: policy})
        return sources, boundary
    if kind == "group":
        group = backend.groups.get(name)
        if group is None:
            raise NoSuchEntity(f"The group with name {name} cannot be found.")
        return _inline_sources(group.policies, "group") + _managed_sources(group.managed_policies), []
    raise InvalidInput(f"Invalid ARN: {arn}. Only users, groups and roles can be simulated.")


def _context(entries: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {str(e["ContextKeyName"]): [str(v) for v in e.get("ContextKeyValues", [])] for e in entries}


def _render(result: Evaluation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "EvalActionName": result.action,
        "EvalResourceName": result.resource,
        "EvalDecision": result.decision,
        "MatchedStatements": [
            {"SourcePolicyId": m.policy_id, "SourcePolicyType": m.policy_type} for m in result.matched
        ],
        "MissingContextValues": result.missing_context,
    }
    if result.allowed_by_boundary is not None:
        out["PermissionsBoundaryDecisionDetail"] = {"AllowedByPermissionsBoundary": result.allowed_by_boundary}
    return out


class ExtIamResponse(IamResponse):
    def _simulate(self, sources: list[PolicySource], boundary: list[PolicySource]) -> ActionResult:
        extra = [
            PolicySource(f"PolicyInputList.{i}", "none", _document(doc))
            for i, doc in enumerate(self._get_param("PolicyInputList", []) or [], start=1)
        ]
        boundary = boundary + [
            PolicySource(f"PermissionsBoundaryPolicyInputList.{i}", "none", _document(doc))
            for i, doc in enumerate(self._get_param("PermissionsBoundaryPolicyInputList", []) or [], start=1)
        ]
        actions = self._get_param("ActionNames", []) or []
        resources = self._get_param("ResourceArns", []) or ["*"]
        context = _context(self._get_param("ContextEntries", []) or [])
        results = [
            _render(evaluate(sources + extra, action, resource, context, boundary or None))
            for action in actions
            for resource in resources
        ]
        marker = str(self._get_param("Marker") or "0")
        if not marker.isdigit() or int(marker) > len(results):
            raise InvalidInput(f"Invalid Marker: {marker}")
        start = int(marker)
        max_items = self._get_int_param("MaxItems") or len(results) or 1
        page = results[start : start + max_items]
        body: dict[str, Any] = {"EvaluationResults": page, "IsTruncated": start + max_items < len(results)}
        if body["IsTruncated"]:
            body["Marker"] = str(start + max_items)
        return ActionResult(body)

    def simulate_principal_policy(self) -> ActionResult:
        sources, boundary = principal_sources(self.backend, self._get_param("PolicySourceArn"))
        return self._simulate(sources, boundary)

    def simulate_custom_policy(self) -> ActionResult:
        return self._simulate([], [])


OVERRIDDEN_ACTIONS = frozenset({"SimulatePrincipalPolicy", "SimulateCustomPolicy"})
