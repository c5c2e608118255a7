"""Monthly prices from the AWS Price List Query API (``pricing:GetProducts``), the table as fallback.

One query per (item, region), cached for the run. The first refused or failed call (no
``pricing:GetProducts`` permission, no route to the API's us-east-1 endpoint) switches the run to
the dated table of :mod:`hybridctl.features.cost.prices`, and every price then says so in its source.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from hybridctl.backends.clouds import AwsCallError
from hybridctl.features.cost import prices

if TYPE_CHECKING:
    from hybridctl.features.cost.aws import AwsCostApi

PRICING_REGION = "us-east-1"  # the Query API's endpoint (also ap-south-1, eu-central-1)
# item -> (service code, product attributes to match, the priced unit)
QUERIES: dict[str, tuple[str, dict[str, str], str]] = {
    **{
        f"ebs_{kind}_gb": ("AmazonEC2", {"productFamily": "Storage", "volumeApiName": kind}, "GB-Mo")
        for kind in ("gp3", "gp2", "io1", "io2", "st1", "sc1", "standard")
    },
    "ebs_snapshot_gb": ("AmazonEC2", {"productFamily": "Storage Snapshot"}, "GB-Mo"),
    "nat_gateway_hour": ("AmazonEC2", {"productFamily": "NAT Gateway"}, "Hrs"),
    "public_ipv4_hour": ("AmazonVPC", {"group": "VPCPublicIPv4Address"}, "Hrs"),
    "vpc_endpoint_hour": ("AmazonVPC", {"group": "VpcEndpoint-Hour"}, "Hrs"),
    "alb_hour": ("AWSELB", {"productFamily": "Load Balancer-Application"}, "Hrs"),
    "nlb_hour": ("AWSELB", {"productFamily": "Load Balancer-Network"}, "Hrs"),
}
SOURCE = "AWS Price List API (on-demand, USD)"


def parse_price(price_list: Iterable[str], unit: str) -> Decimal | None:
    """The on-demand USD price per ``unit`` of the first product that has one (pure)."""
    for raw in price_list:
        try:
            product = json.loads(raw)
        except ValueError:
            continue
        for offer in ((product.get("terms") or {}).get("OnDemand") or {}).values():
            for dimension in (offer.get("priceDimensions") or {}).values():
                if str(dimension.get("unit", "")).lower() != unit.lower():
                    continue
                try:
                    value = Decimal(str((dimension.get("pricePerUnit") or {}).get("USD")))
                except InvalidOperation:
                    continue
                if value > 0:
                    return value
    return None


class PriceBook:
    """``monthly(item, region, size_gb)`` as :func:`prices.aws_monthly`, asking the Price List first."""

    def __init__(self, api: AwsCostApi | None) -> None:
        self.api = api
        self.fallback_reason: str | None = None if api is not None else "no AWS client"
        self._cache: dict[tuple[str, str], Decimal | None] = {}

    def _unit_price(self, item: str, region: str) -> Decimal | None:
        if self.api is None or self.fallback_reason is not None or item not in QUERIES:
            return None
        key = (item, region)
        if key not in self._cache:
            code, attributes, unit = QUERIES[item]
            filters = [
                {"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in {**attributes, "regionCode": region}.items()
            ]
            try:
                answer = self.api.call(
                    "pricing",
                    "get_products",
                    PRICING_REGION,
                    ServiceCode=code,
                    Filters=filters,
                    FormatVersion="aws_v1",
                    MaxResults=100,
                )
            except AwsCallError as error:
                self.fallback_reason = f"Price List API unavailable ({error.code or 'error'})"
                return None
            self._cache[key] = parse_price(answer.get("PriceList") or [], unit)
        return self._cache[key]

    def monthly(self, item: str, region: str, size_gb: int | float = 0) -> tuple[Decimal, str]:
        price = self._unit_price(item, region)
        if price is None:
            value, source = prices.aws_monthly(item, region, size_gb)
            if self.fallback_reason:
                source = f"{source}; {self.fallback_reason}"
            elif item in QUERIES and self.api is not None:
                source = f"{source}; the Price List has no {item} in {region}"
            return value, source
        if item.endswith("_hour"):
            return (price * prices.HOURS_PER_MONTH).quantize(Decimal("0.01")), SOURCE
        return (price * Decimal(str(size_gb))).quantize(Decimal("0.01")), SOURCE


__all__ = ["QUERIES", "PriceBook", "parse_price"]
