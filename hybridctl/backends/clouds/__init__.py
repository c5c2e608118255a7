"""Cloud clients, built one way for every feature (overlay backends, budgets, VIP, doctor).

AWS: one session per settings, counted clients, one pager and botocore's retries
(:mod:`~hybridctl.backends.clouds.aws_api`). Azure: one credential, one set of ARM client
arguments, a policy that counts requests, and calls retried while ARM says the resource is busy
(:mod:`~hybridctl.backends.clouds.arm`). Failures of both become
:class:`~hybridctl.core.errors.RemoteError` with a hint in one place
(:mod:`~hybridctl.backends.clouds.errors`), the hints from one table per cloud
(:mod:`~hybridctl.backends.clouds.hints`); the few words that depend on the feature (which
permission to grant, what to do after a race) come from its :class:`Hints`. Calls are counted by
:class:`~hybridctl.backends.calls.CallCounter`.

boto3 and the Azure SDK are imported on first use, inside the functions that need them: an
inventory with one cloud only never pays for importing the other's SDK, and ``plan`` imports
neither. Callers import from this package.
"""

from hybridctl.backends.aws_lookup import name_of, tags
from hybridctl.backends.clouds.arm import (
    NETWORK_API_VERSION,
    ArmClient,
    arm_base,
    arm_call,
    arm_client,
    arm_pipeline,
    azure_credential,
    counting_policy,
    list_json,
    uses_service_principal,
)
from hybridctl.backends.clouds.aws_api import AwsApi, AwsClientSettings, aws_config, aws_session
from hybridctl.backends.clouds.calls import OnCall
from hybridctl.backends.clouds.errors import (
    PERMISSION_CODES,
    AwsCallError,
    arm_error,
    arm_error_code,
    arm_error_message,
    aws_error,
)
from hybridctl.backends.clouds.hints import ARM_HINTS, AWS_HINTS, Hints, action_name, arm_hint, aws_hint

__all__ = [
    "ARM_HINTS",
    "AWS_HINTS",
    "NETWORK_API_VERSION",
    "PERMISSION_CODES",
    "ArmClient",
    "AwsApi",
    "AwsCallError",
    "AwsClientSettings",
    "Hints",
    "OnCall",
    "action_name",
    "arm_base",
    "arm_call",
    "arm_client",
    "arm_error",
    "arm_error_code",
    "arm_error_message",
    "arm_hint",
    "arm_pipeline",
    "aws_config",
    "aws_error",
    "aws_hint",
    "aws_session",
    "azure_credential",
    "counting_policy",
    "list_json",
    "name_of",
    "tags",
    "uses_service_principal",
]
