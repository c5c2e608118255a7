"""AWS: one botocore session per settings, one ``Config``, counted clients, one pager, one error path.

``aws.credentials_file`` is a config variable of that session only, so nothing in ``os.environ``
changes; ``aws.retry_mode`` and ``total_max_attempts = aws.max_attempts`` (attempts per call with
the first one included; botocore's own ``max_attempts`` key would count retries only) let
botocore retry throttling. boto3 is imported on first use.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from hybridctl.backends.aws_lookup import split_refs
from hybridctl.backends.calls import CallCounter
from hybridctl.backends.clouds.calls import READ_PREFIXES, OnCall
from hybridctl.backends.clouds.errors import AwsCallError, aws_error
from hybridctl.backends.clouds.hints import Hints

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config


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
        # botocore's Config is built with the first client: importing botocore takes ~35 ms of
        # CPU, which the engine spends better connecting to hosts meanwhile.
        self._config_args: dict[str, Any] = {"user_agent": user_agent, **options}
        self._config: Config | None = None
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
                if self._config is None:
                    self._config = aws_config(self.settings, **self._config_args)
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
