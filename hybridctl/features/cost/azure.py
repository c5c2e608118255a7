"""Azure reads (and the few deletes) of `hybridctl cost` / `hybridctl leaks`: plain ARM calls.

No Cost Management or Compute SDK is installed (nor needed): the requests go through the
network management client's pipeline (``send_request``), built by
:class:`~hybridctl.backends.clouds.ArmClient` like every other Azure client of hybridctl (credential,
endpoint, CA bundle, retries, request counting), and failures become
:class:`~hybridctl.core.errors.RemoteError` through :func:`~hybridctl.backends.clouds.arm_call`.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from hybridctl.backends.arm_service import ArmService
from hybridctl.backends.clouds import Hints, arm_call
from hybridctl.core.errors import RemoteError

COST_API = "2023-03-01"
NETWORK_API = "2024-07-01"
COMPUTE_API = "2024-03-02"
TARGET = "azure cost"
HINTS = Hints(
    permission="give the identity Cost Management Reader and Reader on the scope "
    "(`hybridctl iam-policy` lists what cost and leaks need)",
    rerun="run the command again",
    limits="docs/cost.md",
    scope="the site's resource_group",
)
INSUFFICIENT = ("insufficientdata", "forecastnotavailable")


class AzureCostApi(ArmService):
    # Plain ARM requests through a management pipeline (arm_pipeline): no Cost Management SDK,
    # nor the network SDK, needed.
    client_class = "azure.mgmt.network.NetworkManagementClient"

    def _send(self, method: str, url: str, body: Any = None, api_version: str | None = None) -> Any:
        from azure.core.rest import HttpRequest

        params = {"api-version": api_version} if api_version else None
        pipeline = self.arm.pipeline()
        # A path goes under azure.arm_endpoint; a nextLink is absolute and stays as it is.
        request = HttpRequest(method, pipeline.format_url(url), json=body, params=params)
        response = arm_call(lambda: pipeline.send_request(request), TARGET, f"{method} {url}", HINTS)
        what = f"{method} {urlsplit(url).path}"
        arm_call(response.raise_for_status, TARGET, what, HINTS)
        return response

    def _json(self, method: str, url: str, body: Any = None, api_version: str | None = None) -> dict[str, Any]:
        response = self._send(method, url, body, api_version)
        if response.status_code == 204 or not response.content:
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {}

    # -- Cost Management -----------------------------------------------------------------------------

    def query(self, scope: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Every page of a query (a nextLink is POSTed the same body)."""
        pages = [self._json("POST", f"{scope}/providers/Microsoft.CostManagement/query", body, COST_API)]
        while (pages[-1].get("properties") or {}).get("nextLink"):
            pages.append(self._json("POST", str(pages[-1]["properties"]["nextLink"]), body))
        return pages

    def forecast(self, scope: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """A forecast, or None when Cost Management has too little history for one."""
        try:
            return self._json("POST", f"{scope}/providers/Microsoft.CostManagement/forecast", body, COST_API)
        except RemoteError as error:
            if any(code in error.message.lower() for code in INSUFFICIENT):
                return None
            raise

    # -- resources -----------------------------------------------------------------------------------

    def list(self, resource_group: str, provider_type: str, api_version: str) -> list[dict[str, Any]]:
        url = f"{self.scope(resource_group)}/providers/{provider_type}"
        page = self._json("GET", url, api_version=api_version)
        items = list(page.get("value") or [])
        while page.get("nextLink"):
            page = self._json("GET", str(page["nextLink"]))
            items += page.get("value") or []
        return items

    def get(self, resource_id: str, api_version: str) -> dict[str, Any] | None:
        from azure.core.exceptions import HttpResponseError

        try:
            return self._json("GET", resource_id, api_version=api_version)
        except RemoteError as error:
            if "404" in error.message or "NotFound" in error.message:
                return None
            raise
        except HttpResponseError:  # pragma: no cover - arm_call translates
            return None

    def delete(self, resource_id: str, api_version: str, timeout: float = 120.0) -> None:
        """DELETE and, for a long-running delete (202), poll its operation until it ends."""
        response = self._send("DELETE", resource_id, api_version=api_version)
        if response.status_code != 202:
            return
        status_url = response.headers.get("Azure-AsyncOperation") or response.headers.get("Location")
        deadline = time.monotonic() + timeout
        while status_url and time.monotonic() < deadline:
            time.sleep(self.settings.polling_interval)
            poll = self._send("GET", status_url)
            if poll.status_code == 202:
                continue
            state = str((poll.json() if poll.content else {}).get("status", "Succeeded"))
            if state.lower() in ("succeeded", "canceled", "failed"):
                if state.lower() != "succeeded":
                    raise RemoteError(TARGET, f"delete {resource_id}: the operation ended {state}", HINTS.rerun)
                return
        if status_url:
            raise RemoteError(TARGET, f"delete {resource_id}: still running after {timeout:.0f} s", HINTS.rerun)



__all__ = ["COMPUTE_API", "COST_API", "NETWORK_API", "AzureCostApi"]
