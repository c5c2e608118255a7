"""One translation of cloud failures into :class:`~hybridctl.core.errors.RemoteError` with a hint.

botocore's and azure-core's exceptions are imported inside the functions that need them: an
inventory with one cloud only never imports the other's SDK.
"""

from __future__ import annotations

import json
from typing import Any

from hybridctl.backends.clouds.hints import Hints, action_name, arm_hint, aws_hint
from hybridctl.core.errors import RemoteError

PERMISSION_CODES = frozenset(
    {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure", "InvalidClientTokenId"}
)


# -- AWS ---------------------------------------------------------------------------------------------


class AwsCallError(RemoteError):
    """A :class:`RemoteError` that remembers the AWS error code (``None``: not an API answer)."""

    def __init__(self, target: str, message: str, hint: str | None, code: str | None) -> None:
        super().__init__(target, message, hint)
        self.code = code

    @property
    def permission(self) -> bool:
        return self.code in PERMISSION_CODES

    @property
    def unreachable(self) -> bool:
        return self.code == "Unreachable"


def aws_error(exc: Exception, target: str, service: str, op: str, hints: Hints) -> AwsCallError:
    """The :class:`AwsCallError` for a botocore failure of ``service.op``."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )

    action = action_name(service, op)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = f"{action}: {code}: {error.get('Message', '')}"
        return AwsCallError(target, message, aws_hint(code, action, hints), code)
    if isinstance(exc, ProfileNotFound):
        return AwsCallError(target, str(exc), "set aws.profile to a profile of the credentials/config file", None)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        hint = "set aws.profile / aws.credentials_file, or attach an instance role"
        return AwsCallError(target, str(exc), hint, "NoCredentials")
    if isinstance(exc, NoRegionError):
        return AwsCallError(target, str(exc), "set aws.region", "NoRegion")
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        hint = "the API is unreachable: check aws.endpoint_url and the path to it (internet/NAT or a VPC endpoint)"
        return AwsCallError(target, f"{action}: {exc}", hint, "Unreachable")
    return AwsCallError(target, f"{action}: {exc}", "see the botocore error above", None)


# -- Azure -------------------------------------------------------------------------------------------


def _arm_error_body(exc: Any) -> dict[str, Any]:
    """The ARM error object ({"code", "message"}) of a response, when its body has one."""
    if exc.response is None:
        return {}
    try:
        data = json.loads(exc.response.text())
    except ValueError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def arm_error_code(exc: Any) -> str:
    """The ARM error code of an ``HttpResponseError`` (its status when the body has none)."""
    if exc.error is not None and exc.error.code:
        return str(exc.error.code)
    return str(_arm_error_body(exc).get("code") or exc.status_code)


def arm_error_message(exc: Any) -> str:
    if exc.error is not None and exc.error.message:
        return str(exc.error.message)
    return str(_arm_error_body(exc).get("message") or exc.message)


def arm_error(exc: Exception, target: str, what: str, hints: Hints) -> RemoteError:
    """The :class:`RemoteError` for an Azure SDK failure of ``what``."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ClientAuthenticationError):
        return RemoteError(
            target,
            f"{what}: authentication failed: {exc.message}",
            "check azure.tenant_id / client_id / client_secret and azure.authority",
        )
    if isinstance(exc, HttpResponseError):
        code = arm_error_code(exc)
        return RemoteError(target, f"{what}: {code}: {arm_error_message(exc)}", arm_hint(exc.status_code, code, hints))
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return RemoteError(target, f"{what}: {exc}", "check azure.arm_endpoint, azure.ca_bundle and the network")
    return RemoteError(target, f"{what}: {exc}", "see the Azure error above")
