"""The price table `hybridctl leaks` estimates monthly costs from, dated and sourced.

Public on-demand list prices in USD, read from the vendors' pricing pages on the date below:
AWS "Amazon EC2 On-Demand Pricing" (public IPv4 addresses), "Amazon EBS pricing", "Amazon VPC
pricing" (NAT gateways), "Elastic Load Balancing pricing"; Azure "IP Addresses pricing" and
"Managed Disks pricing" (pay-as-you-go). A month is 730 hours, as both vendors' calculators count.
Estimates, not bills: taxes, free tiers, savings plans and data charges are not included, and an
Azure bill is in the subscription's billing currency (these figures stay in USD). Regions not
in the table use the ``default`` row (us-east-1 / eastus prices) and say so.
"""

from __future__ import annotations

from decimal import Decimal

AS_OF = "2026-11-01"
HOURS_PER_MONTH = Decimal(730)
SOURCE = f"hybridctl price table {AS_OF} (vendor list prices, USD)"

# item -> region -> USD, per hour (``*_hour``) or per GB-month (``*_gb``)
AWS: dict[str, dict[str, Decimal]] = {
    "public_ipv4_hour": {"default": Decimal("0.005")},
    "ebs_gp3_gb": {"default": Decimal("0.08"), "ap-northeast-1": Decimal("0.096"), "eu-west-1": Decimal("0.088")},
    "ebs_gp2_gb": {"default": Decimal("0.10"), "ap-northeast-1": Decimal("0.12"), "eu-west-1": Decimal("0.11")},
    "ebs_io1_gb": {"default": Decimal("0.125"), "ap-northeast-1": Decimal("0.142")},
    "ebs_io2_gb": {"default": Decimal("0.125"), "ap-northeast-1": Decimal("0.142")},
    "ebs_st1_gb": {"default": Decimal("0.045"), "ap-northeast-1": Decimal("0.054")},
    "ebs_sc1_gb": {"default": Decimal("0.015"), "ap-northeast-1": Decimal("0.018")},
    "ebs_standard_gb": {"default": Decimal("0.05"), "ap-northeast-1": Decimal("0.08")},
    "ebs_snapshot_gb": {"default": Decimal("0.05"), "ap-northeast-1": Decimal("0.05")},
    "nat_gateway_hour": {"default": Decimal("0.045"), "ap-northeast-1": Decimal("0.062")},
    "alb_hour": {"default": Decimal("0.0225"), "ap-northeast-1": Decimal("0.0243")},
    "nlb_hour": {"default": Decimal("0.0225"), "ap-northeast-1": Decimal("0.0243")},
    # AWS PrivateLink: an interface endpoint, per AZ it is in ("AWS PrivateLink pricing").
    "vpc_endpoint_hour": {"default": Decimal("0.01"), "ap-northeast-1": Decimal("0.014")},
}
AZURE: dict[str, dict[str, Decimal]] = {
    "public_ip_standard_hour": {"default": Decimal("0.005")},
    "public_ip_basic_hour": {"default": Decimal("0.004")},
    "disk_premium_gb": {"default": Decimal("0.135"), "japaneast": Decimal("0.165")},
    "disk_standardssd_gb": {"default": Decimal("0.075"), "japaneast": Decimal("0.09")},
    "disk_standard_gb": {"default": Decimal("0.045"), "japaneast": Decimal("0.05")},
}


def _lookup(table: dict[str, dict[str, Decimal]], item: str, region: str) -> tuple[Decimal, str]:
    rows = table[item]
    if region in rows:
        return rows[region], SOURCE
    return rows["default"], f"{SOURCE}; {region} not in the table, default region's price"


def aws_monthly(item: str, region: str, size_gb: int | float = 0) -> tuple[Decimal, str]:
    """Monthly USD of one AWS item (``size_gb`` for per-GB items) and where the price came from."""
    price, source = _lookup(AWS, item, region)
    if item.endswith("_hour"):
        return (price * HOURS_PER_MONTH).quantize(Decimal("0.01")), source
    return (price * Decimal(str(size_gb))).quantize(Decimal("0.01")), source


def azure_monthly(item: str, location: str, size_gb: int | float = 0) -> tuple[Decimal, str]:
    price, source = _lookup(AZURE, item, location)
    if item.endswith("_hour"):
        return (price * HOURS_PER_MONTH).quantize(Decimal("0.01")), source
    return (price * Decimal(str(size_gb))).quantize(Decimal("0.01")), source


def ebs_item(volume_type: str) -> str:
    item = f"ebs_{volume_type.lower()}_gb"
    return item if item in AWS else "ebs_gp3_gb"


def azure_disk_item(sku: str) -> str:
    low = sku.lower()
    if low.startswith("premium"):
        return "disk_premium_gb"
    if low.startswith("standardssd"):
        return "disk_standardssd_gb"
    return "disk_standard_gb"


__all__ = ["AS_OF", "AWS", "AZURE", "SOURCE", "aws_monthly", "azure_disk_item", "azure_monthly", "ebs_item"]
