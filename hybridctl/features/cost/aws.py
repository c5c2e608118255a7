"""AWS reads (and the few deletes) of `hybridctl cost` / `hybridctl leaks`, through hybridctl.backends.clouds.

Cost Explorer is global: its endpoint is in us-east-1 whatever the overlay's region, and it
answers in USD. Every call goes through :class:`~hybridctl.backends.clouds.AwsApi` (retries, counting,
error translation with a hint naming the IAM action to grant).
"""

from __future__ import annotations

from typing import Any

from hybridctl.backends.calls import CallCounter
from hybridctl.backends.clouds import AwsApi, AwsCallError, Hints
from hybridctl.core.inventory.models import AwsSettings

CE_REGION = "us-east-1"
HINTS = Hints(
    permission="grant {action} to the identity (read-only; `hybridctl iam-policy` lists what cost and leaks need)",
    rerun="run the command again",
    limits="docs/cost.md",
)


class AwsCostApi:
    """Cost Explorer, EC2 and ELBv2 reads for one account."""

    def __init__(self, settings: AwsSettings, counter: CallCounter | None = None) -> None:
        self.counter = counter or CallCounter()
        self.api = AwsApi(settings, hints=HINTS, on_call=self.counter.add)
        self.settings = settings

    # -- Cost Explorer ---------------------------------------------------------------------------

    def _ce_pages(self, op: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every page of a Cost Explorer read (they page with NextPageToken, no boto3 paginator)."""
        pages = []
        token: str | None = None
        while True:
            answer = self.api.call("ce", op, CE_REGION, **params, **({"NextPageToken": token} if token else {}))
            pages.append(answer)
            token = answer.get("NextPageToken")
            if not token:
                return pages

    def usage(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._ce_pages("get_cost_and_usage", params)

    def usage_with_resources(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._ce_pages("get_cost_and_usage_with_resources", params)

    def forecast(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """GetCostForecast; None when Cost Explorer has too little history to forecast."""
        try:
            return self.api.call("ce", "get_cost_forecast", CE_REGION, **params)
        except AwsCallError as error:
            if error.code == "DataUnavailableException":
                return None
            raise

    # -- EC2 / ELBv2 ------------------------------------------------------------------------------

    def ec2(self, op: str, key: str, region: str, **kwargs: Any) -> list[dict[str, Any]]:
        return self.api.pages("ec2", op, key, region, **kwargs)

    def elbv2(self, op: str, key: str, region: str, **kwargs: Any) -> list[dict[str, Any]]:
        return self.api.pages("elbv2", op, key, region, **kwargs)

    def call(self, service: str, op: str, region: str, **kwargs: Any) -> dict[str, Any]:
        return self.api.call(service, op, region, **kwargs)

    def region(self) -> str:
        return self.api.region()

    def close(self) -> None:
        self.api.close()


__all__ = ["CE_REGION", "HINTS", "AwsCostApi"]
