"""The one place that names the cloud objects hybridctl creates (Azure routes, NSG rules, AWS rule marks).

Azure's rule for routes, route tables, network security groups and their security rules
(learn.microsoft.com, azure-resource-manager/management/resource-name-rules, Microsoft.Network):
1-80 characters; alphanumerics, underscores, periods and hyphens; start with an alphanumeric;
end with an alphanumeric or an underscore ("alphanumeric" there is ASCII a-z, A-Z, 0-9).

Every name is ``hybridctl-`` + its parts joined by ``-``. A name that already fits is used as it
is, so short names stay readable and never change. One that does not fit (too long: a 64-character
site and network make 144; or ending in ``-`` / ``.``) keeps a readable head and ends in
``-`` + 8 hex digits of the SHA-256 of the full name: stable across runs and machines, and
distinct for distinct inputs (barring a 32-bit collision).
"""

from __future__ import annotations

import hashlib
import re
from ipaddress import IPv4Network, IPv6Network

NAME_PREFIX = "hybridctl-"
AZURE_NAME_MAX = 80
_HASH_CHARS = 8
AZURE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.-]")


def valid_azure_name(name: str) -> bool:
    """Whether ARM accepts ``name`` for a route, route table, NSG or security rule."""
    return len(name) <= AZURE_NAME_MAX and AZURE_NAME.fullmatch(name) is not None


def object_name(*parts: str) -> str:
    """``hybridctl-<parts>``, always a valid Azure child name (see the module doc)."""
    full = NAME_PREFIX + "-".join(parts)
    if valid_azure_name(full):
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_HASH_CHARS]
    head = _NOT_ALLOWED.sub("-", full)[: AZURE_NAME_MAX - _HASH_CHARS - 1].rstrip("-.")
    return f"{head}-{digest}"


def azure_route_name(prefix: IPv4Network | IPv6Network) -> str:
    """The name of the route hybridctl writes for ``prefix`` (``hybridctl-192-168-1-0-24``)."""
    return object_name(str(prefix).replace(".", "-").replace("/", "-"))


def rule_name(*parts: str) -> str:
    """The name of a security rule hybridctl writes (``hybridctl-from-Hybrid_Subnet``)."""
    return object_name(*parts)


__all__ = ["AZURE_NAME", "AZURE_NAME_MAX", "NAME_PREFIX", "azure_route_name", "object_name", "rule_name",
           "valid_azure_name"]
