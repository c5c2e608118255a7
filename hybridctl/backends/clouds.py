"""Cloud clients, built one way for every feature (overlay backends, budgets, VIP, doctor).

AWS: one botocore session per settings (``aws.profile``; ``aws.credentials_file`` as a config
variable of that session only, so nothing in ``os.environ`` changes), one botocore ``Config``
(``aws.retry_mode``, and ``total_max_attempts = aws.max_attempts``: attempts per call with the
first one included; botocore's own ``max_attempts`` key would count retries only), clients per
(service, region, endpoint) that count every call, one pager, and one translation of failures
into :class:`AwsCallError` with a hint.

Azure: one credential (``ClientSecretCredential`` with the secret from the
:class:`~hybridctl.core.secrets.SecretStore`, else ``DefaultAzureCredential``), one set of ARM client
arguments (endpoint, token scope, CA bundle, polling interval), a pipeline policy that counts
requests, and one translation of failures into :class:`~hybridctl.core.errors.RemoteError`.

Hints come from one table per cloud; the few words that depend on the feature (which permission
to grant, what to do after a race) come from its :class:`Hints`.

boto3 and the Azure SDK are imported on first use: an inventory with one cloud only never pays
for importing the other's SDK.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hybridctl.backends.aws_lookup import name_of, split_refs, tags
from hybridctl.backends.calls import CallCounter
from hybridctl.core.errors import HybridctlError, RemoteError
from hybridctl.core.inventory.models import AzureSettings
from hybridctl.core.secrets import SecretRef, SecretStore

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

T = TypeVar("T")

OnCall = Callable[[str, bool], None]
"""Told of each API call: its action (``ec2:DescribeVpcs``, ``arm:PUT``) and whether it mutates."""

READ_PREFIXES = ("Describe", "Get", "List", "Search", "Simulate")
MUTATING_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})
PERMISSION_CODES = frozenset(
    {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure", "InvalidClientTokenId"}
)
CLIENT_SECRET = "azure/client_secret"  # the SecretRef name of azure.client_secret
ARM_DEFAULT = "https://management.azure.com"


# -- what differs by feature ----------------------------------------------------------------------


@dataclass(frozen=True)
class Hints:
    """The words of a hint that depend on the feature making the call."""

    permission: str  # a refused call; ``{action}`` becomes the IAM action (``ec2:CreateRoute``)
    rerun: str  # the cloud changed between the read and the write
    limits: str = "see the message"  # the cloud refused a value
    scope: str = "the resource group's name"  # where an Azure resource group is named


# -- AWS: errors ------------------------------------------------------------------------------------

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


# -- AWS: session, config, clients ------------------------------------------------------------------


class AwsClientSettings(Protocol):
    """What the client factory reads: the inventory's ``AwsSettings`` or the VIP's ``AwsConfig``."""

    @property
    def region(self) -> str | None: ...
    @property
    def profile(self) -> str | None: ...
    @property
    def endpoint_url(self) -> str | None: ...
    @property
    def credentials_file(self) -> str | None: ...
    @property
    def retry_mode(self) -> str: ...
    @property
    def max_attempts(self) -> int: ...


def aws_session(settings: AwsClientSettings) -> boto3.Session:
    import boto3
    import botocore.session

    # A botocore session of our own: the credentials file is a config variable of this session
    # only, so nothing in os.environ changes for the rest of the process.
    core = botocore.session.Session(profile=settings.profile)
    if settings.credentials_file:
        core.set_config_variable("credentials_file", os.path.expanduser(settings.credentials_file))
    return boto3.Session(botocore_session=core)


def aws_config(settings: AwsClientSettings, *, user_agent: str = "hybridctl", **options: Any) -> Config:
    """``options``: more botocore ``Config`` arguments (timeouts, pool size)."""
    from botocore.config import Config

    return Config(
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        user_agent_extra=user_agent,
        **options,
    )


class AwsApi:
    """Clients per (service, region, endpoint) from one session; thread-safe; every call counted.

    Every call goes through :meth:`call` or :meth:`pages`, which let botocore retry (throttling
    included), page, count calls per action and turn failures into :class:`AwsCallError`.
    ``target``: how errors name the failing side (default ``aws <region>``); ``on_call``: told of
    each call besides :attr:`log`; ``options``: more botocore ``Config`` arguments.
    """

    def __init__(
        self,
        settings: AwsClientSettings,
        *,
        hints: Hints,
        target: str | None = None,
        on_call: OnCall | None = None,
        user_agent: str = "hybridctl",
        **options: Any,
    ) -> None:
        self.settings = settings
        self.hints = hints
        self.log = CallCounter()
        self._target = target
        self._on_call = on_call
        self._config = aws_config(settings, user_agent=user_agent, **options)
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None
        self._clients: dict[tuple[str, str, str | None], Any] = {}

    # -- counting ----------------------------------------------------------------------------------

    @property
    def calls(self) -> Counter[str]:
        """Calls per action (``ec2:DescribeVpcs``)."""
        return self.log.by_action

    @property
    def reads(self) -> int:
        return self.log.reads

    @property
    def mutations(self) -> int:
        return self.log.mutations

    def _count(self, model: Any, **_: Any) -> None:
        name = str(model.name)
        action = f"{model.service_model.signing_name}:{name}"
        mutating = not name.startswith(READ_PREFIXES)
        self.log.add(action, mutating)
        if self._on_call is not None:
            self._on_call(action, mutating)

    # -- clients -------------------------------------------------------------------------------------

    def target(self, region: str) -> str:
        return self._target or f"aws {region}"

    def error(self, service: str, region: str, op: str, exc: Exception) -> AwsCallError:
        return aws_error(exc, self.target(region), service, op, self.hints)

    def session(self) -> boto3.Session:
        with self._lock:
            if self._session is None:
                self._session = aws_session(self.settings)
            return self._session

    def region(self, override: str | None = None) -> str:
        """``override``, else the settings' region, else the profile's / environment's."""
        region = override or self.settings.region or self._session_region()
        if not region:
            raise AwsCallError("aws", "no region configured", "set aws.region", "NoRegion")
        return region

    def _session_region(self) -> str | None:
        from botocore.exceptions import BotoCoreError

        try:
            return self.session().region_name
        except BotoCoreError:  # a missing profile: the client creation says so, with its hint
            return None

    def client(self, service: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        region = self.region(region)
        url = endpoint_url or self.settings.endpoint_url
        key = (service, region, url)
        session = self.session()
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                try:
                    client = session.client(service, region_name=region, endpoint_url=url, config=self._config)
                except (BotoCoreError, ClientError) as exc:
                    raise self.error(service, region, "client", exc) from None
                # before-call fires once per API call (each page included), before botocore's retries.
                client.meta.events.register(f"before-call.{client.meta.service_model.endpoint_prefix}", self._count)
                self._clients[key] = client
            return client

    # -- calls ---------------------------------------------------------------------------------------

    def call(self, service: str, op: str, region: str | None = None, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        region = self.region(region)
        client = self.client(service, region)
        try:
            result: dict[str, Any] = getattr(client, op)(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise self.error(service, region, op, exc) from None
        return result

    def pages(self, service: str, op: str, key: str, region: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item under ``key`` of every page (one call when the operation does not page)."""
        from botocore.exceptions import BotoCoreError, ClientError

        region = self.region(region)
        client = self.client(service, region)
        out: list[dict[str, Any]] = []
        try:
            if client.can_paginate(op):
                for page in client.get_paginator(op).paginate(**kwargs):
                    out.extend(page.get(key) or [])
            else:
                out.extend(getattr(client, op)(**kwargs).get(key) or [])
        except (BotoCoreError, ClientError) as exc:
            raise self.error(service, region, op, exc) from None
        return out

    def pages_by_id_or_name(
        self,
        service: str,
        op: str,
        key: str,
        region: str | None,
        refs: Iterable[str],
        *,
        id_prefix: str,
        id_filter: str,
        filters: Sequence[dict[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        """The objects ``refs`` name, each by id (``vpc-...``) or by Name tag: at most two filtered reads.

        ``filters`` narrow both reads (e.g. to one VPC).
        """
        ids, names = split_refs(refs, id_prefix)
        found: list[dict[str, Any]] = []
        for name, values in ((id_filter, ids), ("tag:Name", names)):
            if values:
                found += self.pages(service, op, key, region, Filters=[{"Name": name, "Values": values}, *filters])
        return found

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> AwsApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# -- Azure: credential and clients ------------------------------------------------------------------


def uses_service_principal(settings: AzureSettings) -> bool:
    """Whether the credential is the inventory's service principal (else the SDK's default chain)."""
    return bool(settings.tenant_id and settings.client_id and settings.client_secret)


def azure_credential(settings: AzureSettings, secrets: SecretStore, *, timeout: float | None = None) -> Any:
    """ClientSecretCredential when tenant, client and secret are set; else DefaultAzureCredential.

    ``timeout``: seconds to connect to (and, for the service principal, read from) the authority.
    """
    common: dict[str, Any] = {}
    if settings.authority:
        # A private authority (the lab, a sovereign cloud proxy) cannot answer MSAL's instance
        # discovery against login.microsoftonline.com.
        common.update(authority=settings.authority, disable_instance_discovery=True)
    if settings.ca_bundle:
        common["connection_verify"] = settings.ca_bundle
    if timeout is not None:
        common["connection_timeout"] = timeout
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    if uses_service_principal(settings):
        assert settings.tenant_id and settings.client_id and settings.client_secret
        try:
            secret = secrets.resolve(SecretRef(CLIENT_SECRET, settings.client_secret))
        except HybridctlError as error:
            raise RemoteError("azure", f"azure.client_secret: {error}", "set the secret it refers to") from None
        extra = {"read_timeout": timeout} if timeout is not None else {}
        return ClientSecretCredential(settings.tenant_id, settings.client_id, secret, **common, **extra)
    # No read_timeout here: it would reach every credential of the default chain.
    return DefaultAzureCredential(**common)


def arm_base(settings: AzureSettings) -> str:
    """The ARM base URL (``azure.arm_endpoint`` or the public cloud's)."""
    return (settings.arm_endpoint or ARM_DEFAULT).rstrip("/")


def counting_policy(on_call: OnCall) -> Any:
    """A pipeline policy that tells ``on_call`` of each ARM request once (azure-core's retries are not new calls)."""
    from azure.core.pipeline import PipelineRequest
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class _Counting(SansIOHTTPPolicy):
        def on_request(self, request: PipelineRequest) -> None:
            method = request.http_request.method.upper()
            on_call(f"arm:{method}", method in MUTATING_METHODS)

    return _Counting()


def arm_client(
    client_class: Callable[..., T],
    settings: AzureSettings,
    credential: Any,
    *,
    on_call: OnCall | None = None,
    **options: Any,
) -> T:
    """A management client (network, consumption ...) for ``azure.subscription_id``.

    ``options``: more azure-core arguments (timeouts).
    """
    kwargs: dict[str, Any] = {"polling_interval": settings.polling_interval, **options}
    if on_call is not None:
        kwargs["per_call_policies"] = [counting_policy(on_call)]
    if settings.arm_endpoint:
        base = arm_base(settings)
        kwargs.update(base_url=base, credential_scopes=[f"{base}/.default"])
    if settings.ca_bundle:
        kwargs["connection_verify"] = settings.ca_bundle
    return client_class(credential, settings.subscription_id, **kwargs)


class ArmClient:
    """One management client and its credential, made on first use; thread-safe; closes both.

    ``client_class``: dotted path of the SDK client (imported on first use), e.g.
    ``azure.mgmt.network.NetworkManagementClient``. ``credential``: use this one instead of
    :func:`azure_credential`. ``timeout``: connect/read timeout of the credential and the client.
    """

    def __init__(
        self,
        client_class: str,
        settings: AzureSettings | None,
        secrets: SecretStore,
        *,
        credential: Any | None = None,
        on_call: OnCall | None = None,
        timeout: float | None = None,
    ) -> None:
        self._class = client_class
        self._settings = settings
        self.secrets = secrets
        self._credential = credential
        self._on_call = on_call
        self._timeout = timeout
        self._client: Any | None = None
        self._lock = threading.RLock()

    @property
    def settings(self) -> AzureSettings:
        if self._settings is None:
            raise RemoteError("azure", "the inventory has no azure section", "add azure.subscription_id")
        return self._settings

    def credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                self._credential = azure_credential(self.settings, self.secrets, timeout=self._timeout)
            return self._credential

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                module, _, name = self._class.rpartition(".")
                client_class = getattr(importlib.import_module(module), name)
                options: dict[str, Any] = {}
                if self._timeout is not None:
                    options.update(connection_timeout=self._timeout, read_timeout=self._timeout)
                self._client = arm_client(
                    client_class, self.settings, self.credential(), on_call=self._on_call, **options
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            close = getattr(self._credential, "close", None)
            if callable(close):
                close()


# -- Azure: errors ----------------------------------------------------------------------------------

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


# ARM answers 409 AnotherOperationInProgress to a write while another operation runs on the
# resource (or one it depends on). azure-core's RetryPolicy does not retry a 409 (unless it
# carries Retry-After, which ARM does not send with this code), so arm_call does: a bounded
# number of times, honouring Retry-After, else with doubling delays (0.5 + 1 + 2 + 4 s at most).
BUSY_CODES = frozenset({"AnotherOperationInProgress"})
BUSY_RETRIES = 4  # attempts after the first
BUSY_BACKOFF_S = 0.5
BUSY_BACKOFF_MAX_S = 8.0


def _retry_after_s(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def arm_call(
    fn: Callable[[], T], target: str, what: str, hints: Hints, *, sleep: Callable[[float], None] = time.sleep
) -> T:
    """``fn()``, with any Azure SDK failure turned into a :class:`RemoteError` with a hint.

    ``fn`` is run again (up to :data:`BUSY_RETRIES` times) while ARM answers that another
    operation holds the resource; a long-running call is started again as a whole.
    """
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    attempt = 0
    while True:
        try:
            return fn()
        except HttpResponseError as exc:  # auth errors included
            if arm_error_code(exc) in BUSY_CODES and attempt < BUSY_RETRIES:
                delay = _retry_after_s(exc)
                sleep(min(BUSY_BACKOFF_S * 2**attempt, BUSY_BACKOFF_MAX_S) if delay is None else delay)
                attempt += 1
                continue
            error = arm_error(exc, target, what, hints)
            if attempt:
                error = RemoteError(error.target, f"{error.message} (after {attempt + 1} attempts)", error.hint)
            raise error from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise arm_error(exc, target, what, hints) from None


__all__ = [
    "ARM_HINTS",
    "AWS_HINTS",
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
    "aws_config",
    "aws_error",
    "aws_session",
    "azure_credential",
    "counting_policy",
    "name_of",
    "tags",
    "uses_service_principal",
]
