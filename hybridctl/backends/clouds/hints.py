"""Hints: what to do about a failed cloud call, one table per cloud.

The few words that depend on the feature making the call (which permission to grant, what to do
after a race) come from its :class:`Hints`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hints:
    """The words of a hint that depend on the feature making the call."""

    permission: str  # a refused call; ``{action}`` becomes the IAM action (``ec2:CreateRoute``)
    rerun: str  # the cloud changed between the read and the write
    limits: str = "see the message"  # the cloud refused a value
    scope: str = "the resource group's name"  # where an Azure resource group is named


# -- AWS ---------------------------------------------------------------------------------------------

# {permission} / {rerun} / {limits} come from the caller's Hints.
AWS_HINTS: dict[str, str] = {
    "UnauthorizedOperation": "{permission}",
    "AccessDenied": "{permission}",
    "AccessDeniedException": "{permission}",
    "AuthFailure": "the credentials were refused: check aws.profile / aws.credentials_file or the instance role",
    "InvalidClientTokenId": "the access key is unknown: check aws.profile / aws.credentials_file",
    "SignatureDoesNotMatch": "the secret key is wrong: check aws.profile / aws.credentials_file",
    "ExpiredToken": "the session token expired: refresh the credentials",
    "RequestLimitExceeded": "EC2 kept throttling past aws.max_attempts; raise it or set aws.retry_mode: adaptive",
    "Throttling": "the API kept throttling past aws.max_attempts; raise it or set aws.retry_mode: adaptive",
    "ThrottlingException": "the API kept throttling past aws.max_attempts; raise it or set aws.retry_mode: adaptive",
    "RouteAlreadyExists": "another route for this prefix appeared since the read; {rerun}",
    "RouteLimitExceeded": "the route table is full: raise the routes-per-table quota (and aws.route_limit), "
    "or summarize",
    "RulesPerSecurityGroupLimitExceeded": "the security group is full: raise the rules-per-group quota",
    "InvalidPermission.Duplicate": "the rule appeared since the read; {rerun}",
    "InvalidPermission.NotFound": "the rule is already gone; {rerun}",
    "InvalidRoute.NotFound": "the route is already gone; {rerun}",
    "InvalidParameterValue": "see the message: a target of another VPC, or a malformed value",
    "InvalidParameterException": "AWS refused a value; {limits}",
    "NotFoundException": "the object changed or vanished since it was read; {rerun}",
    "DuplicateRecordException": "it appeared since the read; {rerun}",
    "CreationLimitExceededException": "the account's budget or notification quota is used up",
}
_AWS_VANISHED = "the object changed or vanished since it was read; {rerun}"  # any other *.NotFound


def action_name(service: str, op: str) -> str:
    """``ec2:ReplaceRoute`` for ``("ec2", "replace_route")``."""
    return f"{service}:" + "".join(part.capitalize() for part in op.split("_"))


def aws_hint(code: str, action: str, hints: Hints) -> str:
    text = AWS_HINTS.get(code) or (_AWS_VANISHED if code.endswith(".NotFound") else "see the AWS error above")
    return text.format(permission=hints.permission.format(action=action), rerun=hints.rerun, limits=hints.limits)


# -- Azure -------------------------------------------------------------------------------------------

# (HTTP statuses, error codes, hint), first match wins; {permission} / {rerun} / {limits} / {scope}
# come from the caller's Hints.
ARM_HINTS: tuple[tuple[frozenset[int], frozenset[str], str], ...] = (
    (frozenset({403}), frozenset({"AuthorizationFailed", "LinkedAuthorizationFailed"}), "{permission}"),
    (frozenset({412}), frozenset({"PreconditionFailed"}), "the object changed since it was read; {rerun}"),
    (frozenset(), frozenset({"ResourceGroupNotFound"}), "the resource group does not exist: create it or fix {scope}"),
    (frozenset(), frozenset({"SubscriptionNotFound"}), "check azure.subscription_id"),
    (frozenset({429}), frozenset(), "ARM kept throttling past the client's retries; wait and run again"),
    (
        frozenset({409}),
        frozenset({"AnotherOperationInProgress", "RetryableError", "Conflict"}),
        "another operation holds the resource; run again",
    ),
    (frozenset({404}), frozenset(), "the object vanished since it was read; {rerun}"),
    (frozenset({400}), frozenset(), "Azure refused a value; {limits}"),
)


def arm_hint(status: int | None, code: str, hints: Hints) -> str:
    for statuses, codes, text in ARM_HINTS:
        if status in statuses or code in codes:
            return text.format(permission=hints.permission, rerun=hints.rerun, limits=hints.limits, scope=hints.scope)
    return "see the ARM error above"
