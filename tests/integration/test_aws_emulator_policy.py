"""The emulator's IAM policy evaluator and request classifier, without a server.

These are the pure parts behind SimulatePrincipalPolicy and the call counters; the HTTP
behaviour is covered in test_aws_emulator.py.
"""

from __future__ import annotations

import pytest

from hybridctl_lab.aws_emulator.iam_policy import (
    ALLOWED,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    PolicySource,
    evaluate,
    wildcard_match,
)
from hybridctl_lab.aws_emulator.paging import PageError, apply_filters, paginate
from hybridctl_lab.aws_emulator.protocol import identify, is_mutating


def source(*statements: dict[str, object]) -> PolicySource:
    return PolicySource("p", "user", {"Version": "2012-10-17", "Statement": list(statements)})


@pytest.mark.parametrize(
    ("pattern", "value", "ignore_case", "expected"),
    [
        ("ec2:Describe*", "ec2:DescribeRouteTables", True, True),
        ("ec2:describe*", "ec2:DescribeRouteTables", True, True),
        ("ec2:Describe?pcs", "ec2:DescribeVpcs", True, True),
        ("ec2:Describe*", "ec2:ReplaceRoute", True, False),
        ("arn:aws:ec2:*:*:route-table/*", "arn:aws:ec2:ap-northeast-1:1:route-table/rtb-1", False, True),
        ("arn:aws:ec2:*:*:route-table/*", "*", False, False),
        ("*", "anything:at/all", False, True),
    ],
)
def test_wildcards(pattern: str, value: str, ignore_case: bool, expected: bool) -> None:
    assert wildcard_match(pattern, value, ignore_case=ignore_case) is expected


def test_not_action_and_explicit_deny_order() -> None:
    policy = source(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:DeleteVpc", "Resource": "*"},
    )
    assert evaluate([policy], "ec2:DescribeVpcs").decision == ALLOWED
    assert evaluate([policy], "iam:CreateUser").decision == IMPLICIT_DENY
    denied = evaluate([policy], "ec2:DeleteVpc")
    assert denied.decision == EXPLICIT_DENY
    assert [m.index for m in denied.matched] == [1]


def test_conditions_missing_keys_negation_and_set_operators() -> None:
    policy = source(
        {
            "Effect": "Allow",
            "Action": "ec2:ReplaceRoute",
            "Resource": "*",
            "Condition": {
                "StringNotEquals": {"aws:RequestedRegion": "us-east-1"},
                "ForAnyValue:StringLike": {"aws:TagKeys": ["ha-*"]},
                "BoolIfExists": {"aws:MultiFactorAuthPresent": "true"},
            },
        }
    )
    ok = evaluate([policy], "ec2:ReplaceRoute", context={"aws:TagKeys": ["ha-group", "x"]})
    # a negated operator holds when its key is absent; IfExists holds when absent
    assert ok.decision == ALLOWED
    assert ok.missing_context == ["aws:RequestedRegion"]
    wrong_tags = evaluate([policy], "ec2:ReplaceRoute", context={"aws:TagKeys": ["other"]})
    assert wrong_tags.decision == IMPLICIT_DENY
    no_mfa = evaluate(
        [policy], "ec2:ReplaceRoute", context={"aws:TagKeys": ["ha-1"], "aws:MultiFactorAuthPresent": ["false"]}
    )
    assert no_mfa.decision == IMPLICIT_DENY


def test_ip_numeric_and_null_conditions() -> None:
    policy = source(
        {
            "Effect": "Allow",
            "Action": "ec2:*",
            "Resource": "*",
            "Condition": {
                "IpAddress": {"aws:SourceIp": "192.168.0.0/16"},
                "NumericLessThanEquals": {"ec2:MaxResults": "100"},
                "Null": {"aws:TokenIssueTime": "true"},
            },
        }
    )
    ctx = {"aws:SourceIp": ["192.168.20.100"], "ec2:MaxResults": ["50"]}
    assert evaluate([policy], "ec2:DescribeVpcs", context=ctx).decision == ALLOWED
    assert evaluate([policy], "ec2:DescribeVpcs", context={**ctx, "aws:SourceIp": ["10.0.0.1"]}).decision == (
        IMPLICIT_DENY
    )
    assert evaluate([policy], "ec2:DescribeVpcs", context={**ctx, "aws:TokenIssueTime": ["x"]}).decision == (
        IMPLICIT_DENY
    )


def test_permissions_boundary_caps_identity_policies() -> None:
    identity = source({"Effect": "Allow", "Action": "ec2:*", "Resource": "*"})
    boundary = [source({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"})]
    assert evaluate([identity], "ec2:ReplaceRoute", boundary=boundary).decision == IMPLICIT_DENY
    inside = evaluate([identity], "ec2:DescribeVpcs", boundary=boundary)
    assert (inside.decision, inside.allowed_by_boundary) == (ALLOWED, True)


def test_read_prefixes_classify_actions() -> None:
    assert [is_mutating(a) for a in ("DescribeVpcs", "ListRoles", "GetPolicy", "SearchTransitGatewayRoutes")] == [
        False
    ] * 4
    assert is_mutating("SimulatePrincipalPolicy") is False
    assert [is_mutating(a) for a in ("ReplaceRoute", "UpdateBudget", "CreateVpc")] == [True] * 3


def test_identify_reads_scope_target_and_form_action() -> None:
    auth = "AWS4-HMAC-SHA256 Credential=AKID/20260101/ap-northeast-1/ec2/aws4_request, SignedHeaders=host, Signature=x"
    ec2 = identify(
        {"HTTP_AUTHORIZATION": auth, "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8"},
        b"Action=ReplaceRoute&Version=2016-11-15",
    )
    assert (ec2.service, ec2.action, ec2.region, ec2.protocol) == ("ec2", "ReplaceRoute", "ap-northeast-1", "ec2")
    budgets = identify(
        {
            "HTTP_AUTHORIZATION": auth.replace("ap-northeast-1/ec2", "us-east-1/budgets"),
            "HTTP_X_AMZ_TARGET": "AWSBudgetServiceGateway.UpdateBudget",
        },
        b"{}",
    )
    assert (budgets.service, budgets.action, budgets.protocol, budgets.mutating) == (
        "budgets",
        "UpdateBudget",
        "json",
        True,
    )


def test_paginate_and_filter_helpers() -> None:
    items = list(range(12))
    first = paginate(items, 5, None, minimum=5, maximum=100)
    second = paginate(items, 5, first.next_token, minimum=5, maximum=100)
    last = paginate(items, 5, second.next_token, minimum=5, maximum=100)
    assert (first.items, second.items, last.items, last.next_token) == (
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
        [10, 11],
        None,
    )
    with pytest.raises(PageError):
        paginate(items, 4, None, minimum=5, maximum=100)
    with pytest.raises(PageError):
        paginate(items, 5, "not-a-token", minimum=5, maximum=100)
    rows = [{"name": "Hybrid-RT", "ids": ["a", "b"]}, {"name": "main", "ids": ["c"]}]
    picked = apply_filters(
        rows, {"tag:Name": ["Hybrid-*"], "id": ["b", "z"]}, lambda r, n: r["name" if n == "tag:Name" else "ids"]
    )
    assert picked == [rows[0]]
