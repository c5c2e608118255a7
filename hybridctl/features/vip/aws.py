"""The VIP feature's AWS access: :class:`hybridctl.backends.clouds.AwsApi` with the VIP's settings and hints.

Every EC2 / IAM / STS call of :mod:`hybridctl.features.vip` goes through :meth:`AwsApi.call` or
:meth:`AwsApi.pages` (botocore retries with ``aws.retry_mode`` / ``aws.max_attempts``, paging,
calls counted per action, failures as :class:`AwsCallError` with a hint). Settings come from the
inventory's ``aws`` section, with the timeouts the VIP's callers choose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hybridctl.backends import clouds
from hybridctl.backends.clouds import PERMISSION_CODES, AwsCallError, action_name, name_of, tags

HINTS = clouds.Hints(
    permission="allow {action} for this identity (`hybridctl iam-policy` prints the policy)",
    rerun="run the command again",
)


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


def error_code(error: BaseException) -> str | None:
    """The AWS error code a :class:`RemoteError` from :meth:`AwsApi.call` carries, if any."""
    return getattr(error, "code", None)


class AwsApi(clouds.AwsApi):
    """Clients per (service, region) from one botocore session; thread-safe; counts calls."""

    def __init__(self, config: AwsConfig) -> None:
        super().__init__(
            config,
            hints=HINTS,
            user_agent="hybridctl-vip",
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            # Parallel repointing uses one client from many threads.
            max_pool_connections=64,
        )
        self.config = config

    def __enter__(self) -> AwsApi:
        return self


__all__ = ["PERMISSION_CODES", "AwsApi", "AwsCallError", "AwsConfig", "action_name", "error_code", "name_of", "tags"]
