"""The lab's AWS control-plane emulator: moto's server plus what hybridctl needs beyond it.

Start it with :class:`AwsEmulator` (or ``python -m hybridctl_lab.aws_emulator --port P``)
and point boto3 at :attr:`AwsEmulator.endpoint_url`. In-process readers use
:func:`fabric_view` / :func:`ec2_backend` (see :mod:`.backends`). docs/aws-emulator.md
describes coverage, the moto gaps fixed here and the admin API.
"""

from __future__ import annotations

from .backends import (
    DEFAULT_ACCOUNT_ID,
    STATE_LOCK,
    EniView,
    FabricView,
    RouteTableView,
    RouteView,
    SubnetView,
    VpcView,
    budgets_backend,
    ec2_backend,
    fabric_view,
    iam_backend,
    reset_state,
)
from .middleware import ADMIN_PREFIX, CallStats, Fault, MutationEvent, is_mutating
from .server import DEFAULT_HOST, DEFAULT_PORT, AwsEmulator

__all__ = [
    "ADMIN_PREFIX",
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "STATE_LOCK",
    "AwsEmulator",
    "CallStats",
    "EniView",
    "FabricView",
    "Fault",
    "MutationEvent",
    "RouteTableView",
    "RouteView",
    "SubnetView",
    "VpcView",
    "budgets_backend",
    "ec2_backend",
    "fabric_view",
    "iam_backend",
    "is_mutating",
    "reset_state",
]
