"""The VIP feature's AWS access: one client factory and one call wrapper.

Every EC2 / IAM / STS call of :mod:`hybridctl.vip` goes through :meth:`AwsApi.call` or
:meth:`AwsApi.pages`, which let botocore retry (``aws.retry_mode`` / ``aws.max_attempts``:
throttling included), page, count calls per action and turn failures into
:class:`~hybridctl.errors.RemoteError` with a hint. Settings come from the inventory's ``aws``
section. (The overlay's adapter in ``hybridctl/adapters/aws.py`` has its own; the two should
be merged into one factory once both have settled.)
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from hybridctl.errors import RemoteError

READ_PREFIXES = ("Describe", "Get", "List", "Search", "Simulate")
PERMISSION_CODES = frozenset(
    {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure", "InvalidClientTokenId"}
)

_HINTS: dict[str, str] = {
    "UnauthorizedOperation": "allow {action} for this identity (`hybridctl iam-policy` prints the policy)",
    "AccessDenied": "allow {action} for this identity (`hybridctl iam-policy` prints the policy)",
    "AccessDeniedException": "allow {action} for this identity (`hybridctl iam-policy` prints the policy)",
    "AuthFailure": "the credentials were refused: check aws.profile / aws.credentials_file or the instance role",
    "InvalidClientTokenId": "the access key is unknown: check aws.profile / aws.credentials_file",
    "SignatureDoesNotMatch": "the secret key is wrong: check aws.profile / aws.credentials_file",
    "ExpiredToken": "the session token expired: refresh the credentials",
    "RequestLimitExceeded": "EC2 kept throttling past aws.max_attempts; raise it or set aws.retry_mode: adaptive",
    "Throttling": "the API kept throttling past aws.max_attempts; raise it or set aws.retry_mode: adaptive",
    "RouteAlreadyExists": "the route appeared since it was read; run the command again",
    "RouteLimitExceeded": "the route table is full: raise the routes-per-table quota",
    "InvalidParameterValue": "see the message: a target of another VPC, or a malformed value",
}


@dataclass(frozen=True)
class AwsConfig:
    """What the client factory needs; built from the inventory's ``aws`` section."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    credentials_file: str | None = None
    retry_mode: str = "standard"
    max_attempts: int = 8
    connect_timeout: float = 10.0
    read_timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any | None, **overrides: Any) -> AwsConfig:
        """From an ``AwsSettings`` (or ``None``: the SDK's defaults, e.g. an instance role)."""
        values: dict[str, Any] = {}
        if settings is not None:
            for name in ("region", "profile", "endpoint_url", "credentials_file", "retry_mode", "max_attempts"):
                values[name] = getattr(settings, name, None)
        values = {k: v for k, v in values.items() if v is not None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def action_name(service: str, op: str) -> str:
    """``ec2:ReplaceRoute`` for ``("ec2", "replace_route")``."""
    return f"{service}:" + "".join(part.capitalize() for part in op.split("_"))


def error_code(error: BaseException) -> str | None:
    """The AWS error code a :class:`RemoteError` from :meth:`AwsApi.call` carries, if any."""
    return getattr(error, "code", None)


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


class AwsApi:
    """Clients per (service, region) from one botocore session; thread-safe; counts calls."""

    def __init__(self, config: AwsConfig) -> None:
        self.config = config
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None
        self._clients: dict[tuple[str, str, str | None], Any] = {}

    def region(self, override: str | None = None) -> str:
        region = override or self.config.region or self._session_region()
        if not region:
            raise AwsCallError("aws", "no region configured", "set aws.region (or the VIP's region)", "NoRegion")
        return region

    def _session_region(self) -> str | None:
        try:
            return self._boto_session().region_name
        except RemoteError:
            return None

    def _boto_session(self) -> boto3.Session:
        with self._lock:
            if self._session is None:
                try:
                    # Our own botocore session: the credentials file is a setting of this session
                    # only, so nothing in os.environ changes for the rest of the process.
                    core = botocore.session.Session(profile=self.config.profile)
                    if self.config.credentials_file:
                        core.set_config_variable("credentials_file", os.path.expanduser(self.config.credentials_file))
                    self._session = boto3.Session(botocore_session=core)
                except ProfileNotFound as exc:
                    raise AwsCallError("aws", str(exc), "set aws.profile to a profile that exists", None) from None
            return self._session

    def client(self, service: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
        region = self.region(region)
        url = endpoint_url or self.config.endpoint_url
        key = (service, region, url)
        session = self._boto_session()
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                config = Config(
                    retries={"mode": self.config.retry_mode, "total_max_attempts": self.config.max_attempts},
                    connect_timeout=self.config.connect_timeout,
                    read_timeout=self.config.read_timeout,
                    # Parallel repointing uses one client from many threads.
                    max_pool_connections=64,
                    user_agent_extra="hybridctl-vip",
                )
                try:
                    client = session.client(service, region_name=region, endpoint_url=url, config=config)
                except (BotoCoreError, ClientError) as exc:
                    raise self._translate(service, region, "client", exc) from None
                client.meta.events.register(f"before-call.{client.meta.service_model.endpoint_prefix}", self._count)
                self._clients[key] = client
            return client

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.signing_name}:{model.name}"] += 1

    @property
    def reads(self) -> int:
        return sum(n for k, n in self.calls.items() if k.split(":", 1)[1].startswith(READ_PREFIXES))

    @property
    def mutations(self) -> int:
        return sum(self.calls.values()) - self.reads

    def _translate(self, service: str, region: str, op: str, exc: Exception) -> AwsCallError:
        target = f"aws {region}"
        action = action_name(service, op)
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            hint = _HINTS.get(code, "see the AWS error above").format(action=action)
            if code.endswith(".NotFound") and code not in _HINTS:
                hint = "the object changed or vanished since it was read; check the inventory's names"
            return AwsCallError(target, f"{action}: {code}: {error.get('Message', '')}", hint, code)
        if isinstance(exc, ProfileNotFound):
            return AwsCallError(target, str(exc), "set aws.profile to a profile that exists", None)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return AwsCallError(
                target, str(exc), "attach an instance role, or set aws.profile / aws.credentials_file", "NoCredentials"
            )
        if isinstance(exc, NoRegionError):
            return AwsCallError(target, str(exc), "set aws.region", "NoRegion")
        if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
            return AwsCallError(
                target,
                f"{action}: {exc}",
                "the EC2 API is unreachable: check the path to it (internet/NAT or the VPC endpoint) "
                "and aws.endpoint_url",
                "Unreachable",
            )
        return AwsCallError(target, f"{action}: {exc}", "see the botocore error above", None)

    def call(self, service: str, op: str, region: str | None = None, **kwargs: Any) -> dict[str, Any]:
        region = self.region(region)
        client = self.client(service, region)
        try:
            result: dict[str, Any] = getattr(client, op)(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(service, region, op, exc) from None
        return result

    def pages(self, service: str, op: str, key: str, region: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
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
            raise self._translate(service, region, op, exc) from None
        return out

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> AwsApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def tags(obj: dict[str, Any]) -> dict[str, str]:
    # DescribeNetworkInterfaces calls the list TagSet; every other Describe calls it Tags.
    return {t["Key"]: t["Value"] for t in (obj.get("Tags") or obj.get("TagSet") or [])}


def name_of(obj: dict[str, Any]) -> str | None:
    return tags(obj).get("Name")
