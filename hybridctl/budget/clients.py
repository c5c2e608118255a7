"""Cloud clients for budgets, configured from the inventory's ``aws`` / ``azure`` sections.

DUPLICATION NOTE (for the lead): this repeats what ``hybridctl/adapters/aws.py``
(``AwsBackend._boto_session`` / ``client``) and ``hybridctl/adapters/azure.py``
(``AzureBackend.credential`` / ``client`` / ``_CountingPolicy``) do for EC2 and the network RP,
because those files were being written at the same time. Once merged, both should take their
clients from one factory like this one (session per settings, one retry config, one credential).
One difference on purpose: botocore's ``max_attempts`` retry key counts *retries*, while
``aws.max_attempts`` is documented as attempts per call, so this uses ``total_max_attempts``.

Without an inventory (flags only) the settings come from the environment, see
:func:`settings_from_env`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from hybridctl.errors import HybridctlError, RemoteError
from hybridctl.inventory.models import AwsSettings, AzureSettings
from hybridctl.secrets import SecretRef, SecretStore

CLIENT_SECRET = "azure/client_secret"  # same secret name as the Azure adapter
MUTATING_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})
READ_PREFIXES = ("Describe", "Get", "List", "Search")
# Budgets is a global service: AWS serves it from us-east-1 whatever the caller's region.
BUDGETS_REGION = "us-east-1"


class CallCounter:
    """Calls made (each page and each retry-free request once), read vs mutating."""

    def __init__(self) -> None:
        self.read = 0
        self.mutating = 0
        self.by_action: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, action: str, mutating: bool) -> None:
        with self._lock:
            if mutating:
                self.mutating += 1
            else:
                self.read += 1
            self.by_action[action] = self.by_action.get(action, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "mutating": self.mutating, "by_action": dict(sorted(self.by_action.items()))}


# -- AWS ------------------------------------------------------------------------------------------


def aws_session(settings: AwsSettings) -> boto3.Session:
    # A botocore session of our own: the credentials file is a config variable of this session
    # only, so nothing in os.environ changes for the rest of the process.
    core = botocore.session.Session(profile=settings.profile)
    if settings.credentials_file:
        core.set_config_variable("credentials_file", os.path.expanduser(settings.credentials_file))
    return boto3.Session(botocore_session=core)


def aws_config(settings: AwsSettings) -> Config:
    return Config(
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        user_agent_extra="hybridctl",
    )


def aws_client(session: boto3.Session, settings: AwsSettings, service: str, region: str, counter: CallCounter) -> Any:
    client = session.client(
        service, region_name=region, endpoint_url=settings.endpoint_url, config=aws_config(settings)
    )

    def count(model: Any, **_: Any) -> None:
        name = str(model.name)
        counter.add(f"{service}:{name}", not name.startswith(READ_PREFIXES))

    # before-call fires once per API call (each page included), before botocore's retries.
    client.meta.events.register(f"before-call.{client.meta.service_model.endpoint_prefix}", count)
    return client


# -- Azure ----------------------------------------------------------------------------------------


def azure_credential(settings: AzureSettings, secrets: SecretStore) -> Any:
    """ClientSecretCredential when tenant, client and secret are set; else DefaultAzureCredential."""
    common: dict[str, Any] = {}
    if settings.authority:
        # A private authority (the lab, a sovereign cloud proxy) cannot answer MSAL's instance
        # discovery against login.microsoftonline.com.
        common.update(authority=settings.authority, disable_instance_discovery=True)
    if settings.ca_bundle:
        common["connection_verify"] = settings.ca_bundle
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    if settings.tenant_id and settings.client_id and settings.client_secret:
        try:
            secret = secrets.resolve(SecretRef(CLIENT_SECRET, settings.client_secret))
        except HybridctlError as error:
            raise RemoteError("azure", f"azure.client_secret: {error}", "set the secret it refers to") from None
        return ClientSecretCredential(settings.tenant_id, settings.client_id, secret, **common)
    return DefaultAzureCredential(**common)


def azure_counting_policy(counter: CallCounter) -> Any:
    from azure.core.pipeline import PipelineRequest
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class _Counting(SansIOHTTPPolicy):
        """Counts each ARM request once (azure-core's retries are not new calls)."""

        def on_request(self, request: PipelineRequest) -> None:
            method = request.http_request.method.upper()
            counter.add(f"arm:{method}", method in MUTATING_METHODS)

    return _Counting()


def consumption_client(settings: AzureSettings, credential: Any, counter: CallCounter) -> Any:
    from azure.mgmt.consumption import ConsumptionManagementClient

    kwargs: dict[str, Any] = {"per_call_policies": [azure_counting_policy(counter)]}
    if settings.arm_endpoint:
        base = settings.arm_endpoint.rstrip("/")
        kwargs.update(base_url=base, credential_scopes=[f"{base}/.default"])
    if settings.ca_bundle:
        kwargs["connection_verify"] = settings.ca_bundle
    return ConsumptionManagementClient(credential, settings.subscription_id, **kwargs)


# -- settings without an inventory ----------------------------------------------------------------


def settings_from_env(environ: dict[str, str] | None = None) -> tuple[AwsSettings, AzureSettings | None]:
    """AWS: botocore's own chain (AWS_PROFILE, AWS_ENDPOINT_URL, AWS_SHARED_CREDENTIALS_FILE...).

    Azure: AZURE_SUBSCRIPTION_ID (required for Azure), AZURE_TENANT_ID, AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET (read from the environment at call time, never copied), AZURE_AUTHORITY_HOST,
    HYBRIDCTL_ARM_ENDPOINT and REQUESTS_CA_BUNDLE.
    """
    env = dict(os.environ if environ is None else environ)
    aws = AwsSettings.model_validate({})
    subscription = env.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        return aws, None
    azure = AzureSettings.model_validate(
        {
            "subscription_id": subscription,
            "tenant_id": env.get("AZURE_TENANT_ID") or None,
            "client_id": env.get("AZURE_CLIENT_ID") or None,
            "client_secret": "env:AZURE_CLIENT_SECRET" if env.get("AZURE_CLIENT_SECRET") else None,
            "authority": env.get("AZURE_AUTHORITY_HOST") or None,
            "arm_endpoint": env.get("HYBRIDCTL_ARM_ENDPOINT") or None,
            "ca_bundle": env.get("REQUESTS_CA_BUNDLE") or None,
        }
    )
    return aws, azure
