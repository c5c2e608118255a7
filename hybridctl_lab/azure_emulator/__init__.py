"""Azure Resource Manager + Entra token endpoint emulator for the lab and the tests.

The real azure-identity, azure-mgmt-network and azure-mgmt-consumption SDKs talk to it
unchanged: only the base URL, the authority and the CA bundle differ from Azure. See
``docs/azure-emulator.md``.
"""

from .admin import Fault, FaultInjector, RequestLog
from .arm import API_VERSIONS, ArmConfig, ArmService
from .errors import ArmError
from .server import AzureEmulator
from .store import Store, StoreChange

__all__ = [
    "API_VERSIONS",
    "ArmConfig",
    "ArmError",
    "ArmService",
    "AzureEmulator",
    "Fault",
    "FaultInjector",
    "RequestLog",
    "Store",
    "StoreChange",
]
