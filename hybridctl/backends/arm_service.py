"""What every Azure feature adapter (budgets, costs) starts from: settings, a counter, one ARM client.

Both adapters count every request in a :class:`~hybridctl.backends.calls.CallCounter` (the
session's, or their own) through the client's pipeline, build one
:class:`~hybridctl.backends.clouds.ArmClient` of their SDK client class, and address ARM by
scope ids under the inventory's subscription.
"""

from __future__ import annotations

from typing import Any

from hybridctl.backends.calls import CallCounter
from hybridctl.backends.clouds import ArmClient
from hybridctl.core.inventory.models import AzureSettings
from hybridctl.core.secrets import SecretStore


class ArmService:
    """An Azure adapter's ARM access. ``client_class``: dotted path of its SDK client."""

    client_class: str

    def __init__(
        self,
        settings: AzureSettings,
        secrets: SecretStore,
        counter: CallCounter | None = None,
        *,
        credential: Any | None = None,
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        self.counter = counter or CallCounter()
        self.arm = ArmClient(self.client_class, settings, secrets, credential=credential, on_call=self.counter.add)

    @property
    def subscription(self) -> str:
        """The subscription's scope id, ``/subscriptions/<id>``."""
        return f"/subscriptions/{self.settings.subscription_id}"

    def scope(self, resource_group: str | None = None) -> str:
        """The scope id of a resource group of the subscription, or of the subscription itself."""
        return f"{self.subscription}/resourceGroups/{resource_group}" if resource_group else self.subscription

    def close(self) -> None:
        self.arm.close()


__all__ = ["ArmService"]
