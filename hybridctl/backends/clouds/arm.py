"""Azure: one credential, one set of ARM client arguments, a counting policy, and calls retried while ARM is busy.

The credential is ``ClientSecretCredential`` with the secret from the
:class:`~hybridctl.core.secrets.SecretStore`, else ``DefaultAzureCredential``; the client
arguments carry the endpoint, token scope, CA bundle and polling interval of long-running
operations. The Azure SDK is imported on first use.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hybridctl.backends.clouds.calls import MUTATING_METHODS, OnCall
from hybridctl.backends.clouds.errors import arm_error, arm_error_code
from hybridctl.backends.clouds.hints import Hints
from hybridctl.core.errors import HybridctlError, RemoteError
from hybridctl.core.inventory.models import AzureSettings
from hybridctl.core.secrets import SecretRef, SecretStore

T = TypeVar("T")

CLIENT_SECRET = "azure/client_secret"  # the SecretRef name of azure.client_secret
ARM_DEFAULT = "https://management.azure.com"
# The API version azure-mgmt-network (constraints.txt) sends for the network resources the
# overlay reads; the plain reads (:func:`list_json`) use the same one.
# tests/integration/test_adapter_azure.py checks it against the installed SDK.
NETWORK_API_VERSION = "2026-03-01"


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


def arm_pipeline(settings: AzureSettings, credential: Any, *, on_call: OnCall | None = None, **options: Any) -> Any:
    """An ``azure.mgmt.core.ARMPipelineClient`` with the policies a management client has.

    The same pipeline as ``NetworkManagementClient``'s (request id, headers, user agent, proxy,
    content decoding, redirects, retries, ARM's challenge-aware bearer token, logging), built
    without importing a service SDK: reads that need plain ARM JSON skip ~0.5 s of imports.
    """
    from azure.core.pipeline import policies
    from azure.mgmt.core import ARMPipelineClient
    from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

    base = arm_base(settings)
    scopes = [f"{base}/.default"]
    kwargs: dict[str, Any] = {"sdk_moniker": "hybridctl", **options}
    if on_call is not None:
        kwargs["per_call_policies"] = [counting_policy(on_call)]
    if settings.ca_bundle:
        kwargs["connection_verify"] = settings.ca_bundle
    redirect = policies.RedirectPolicy(**kwargs)
    chain = [
        policies.RequestIdPolicy(**kwargs),
        policies.HeadersPolicy(**kwargs),
        policies.UserAgentPolicy(**kwargs),
        policies.ProxyPolicy(**kwargs),
        policies.ContentDecodePolicy(**kwargs),
        redirect,
        policies.RetryPolicy(**kwargs),
        ARMChallengeAuthenticationPolicy(credential, *scopes, **kwargs),
        policies.CustomHookPolicy(**kwargs),
        policies.NetworkTraceLoggingPolicy(**kwargs),
        policies.DistributedTracingPolicy(**kwargs),
        policies.SensitiveHeaderCleanupPolicy(**kwargs),
        ARMHttpLoggingPolicy(**kwargs),
    ]
    return ARMPipelineClient(base_url=base, policies=chain, **kwargs)


def list_json(pipeline: Any, path: str, api_version: str) -> list[dict[str, Any]]:
    """Every item of an ARM list (``value``, following ``nextLink``) as ARM JSON.

    Pages are requested the way the SDK's pagers do: the next link as given, with the
    ``api-version`` set again. Errors are raised as the SDK raises them (``map_error``, then
    ``HttpResponseError`` in ARM's error format), for :func:`arm_call` to translate.
    """
    from urllib.parse import parse_qs, urljoin, urlparse

    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ResourceNotModifiedError,
        map_error,
    )
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    errors = {
        401: ClientAuthenticationError,
        404: ResourceNotFoundError,
        409: ResourceExistsError,
        304: ResourceNotModifiedError,
    }
    items: list[dict[str, Any]] = []
    url = pipeline.format_url(path)
    params: dict[str, Any] = {"api-version": api_version}
    while True:
        request = HttpRequest("GET", url, params=params, headers={"Accept": "application/json"})
        response = pipeline.send_request(request)
        if response.status_code != 200:
            map_error(status_code=response.status_code, response=response, error_map=errors)
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        body = response.json()
        items.extend(item for item in body.get("value") or () if isinstance(item, dict))
        next_link = body.get("nextLink")
        if not next_link:
            return items
        parsed = urlparse(next_link)
        params = {**parse_qs(parsed.query), "api-version": api_version}
        url = pipeline.format_url(urljoin(next_link, parsed.path))


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
        self._pipeline: Any | None = None
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
                self._client = arm_client(
                    client_class, self.settings, self.credential(), on_call=self._on_call, **self._timeouts()
                )
            return self._client

    def pipeline(self) -> Any:
        """A plain ARM pipeline (:func:`arm_pipeline`) with the same credential and counting."""
        with self._lock:
            if self._pipeline is None:
                self._pipeline = arm_pipeline(
                    self.settings, self.credential(), on_call=self._on_call, **self._timeouts()
                )
            return self._pipeline

    def _timeouts(self) -> dict[str, Any]:
        """azure-core's connect and read timeouts, for the client and the pipeline alike."""
        if self._timeout is None:
            return {}
        return {"connection_timeout": self._timeout, "read_timeout": self._timeout}

    def close(self) -> None:
        with self._lock:
            for client in (self._client, self._pipeline):
                if client is not None:
                    client.close()
            self._client = self._pipeline = None
            close = getattr(self._credential, "close", None)
            if callable(close):
                close()


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
