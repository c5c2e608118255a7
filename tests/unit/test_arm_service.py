"""The ARM access the Azure budget and cost adapters share: one counter, one client, scope ids."""

from __future__ import annotations

from pathlib import Path

from hybridctl.backends.arm_service import ArmService
from hybridctl.backends.calls import CallCounter
from hybridctl.core.inventory.models import AzureSettings
from hybridctl.core.secrets import SecretStore
from hybridctl.features.budget.azure import AzureBudgets
from hybridctl.features.cost.azure import AzureCostApi

SUBSCRIPTION = "405ba590-1a21-4de3-a484-8e4fcbb40f0a"


def _settings() -> AzureSettings:
    return AzureSettings.model_validate({"subscription_id": SUBSCRIPTION})


def test_budgets_and_costs_address_the_same_scopes(tmp_path: Path) -> None:
    secrets = SecretStore(tmp_path / "secrets.json")
    budgets = AzureBudgets(_settings(), secrets)
    costs = AzureCostApi(_settings(), secrets)
    sub = f"/subscriptions/{SUBSCRIPTION}"
    assert budgets.scope_id("subscription") == costs.scope(None) == sub
    assert budgets.scope_id("resource-group:hybrid-rg") == costs.scope("hybrid-rg") == f"{sub}/resourceGroups/hybrid-rg"
    # A malformed group scope stays a group scope: it must never widen to the subscription.
    assert budgets.scope_id("resource-group:") == f"{sub}/resourceGroups/"


def test_each_adapter_has_its_own_client_class_and_counter(tmp_path: Path) -> None:
    secrets = SecretStore(tmp_path / "secrets.json")
    budgets = AzureBudgets(_settings(), secrets)
    costs = AzureCostApi(_settings(), secrets)
    assert isinstance(budgets, ArmService) and isinstance(costs, ArmService)
    assert budgets.client_class.endswith("ConsumptionManagementClient")
    assert costs.client_class.endswith("NetworkManagementClient")
    assert budgets.counter is not costs.counter


def test_a_session_counter_is_shared(tmp_path: Path) -> None:
    # `hybridctl cost` passes one counter to both clouds' adapters and reports its totals.
    secrets = SecretStore(tmp_path / "secrets.json")
    counter = CallCounter()
    budgets = AzureBudgets(_settings(), secrets, counter)
    costs = AzureCostApi(_settings(), secrets, counter)
    assert budgets.counter is counter and costs.counter is counter
    budgets.arm.close()  # nothing was built (the client comes on first use): closing is a no-op
    costs.close()
