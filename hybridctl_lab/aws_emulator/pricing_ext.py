"""AWS Price List Query API (``pricing:GetProducts``), which moto does not serve.

A small catalog of the products `hybridctl leaks` prices, in the Price List's own shape: each
``PriceList`` item is a JSON *string* holding ``product`` (``productFamily``, ``attributes``) and
``terms.OnDemand.<offer>.priceDimensions.<rate>`` with ``unit`` and ``pricePerUnit.USD``.
``Filters`` of type ``TERM_MATCH`` match product attributes (``productFamily`` included);
``MaxResults`` / ``NextToken`` page. Prices are AWS's published on-demand list prices for the
regions below (``PUBLICATION``); a product or region not in the catalog matches nothing, as the
real API answers an empty list.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import BaseResponse

PUBLICATION = "2026-11-01T00:00:00Z"
REGIONS = {"us-east-1": "US East (N. Virginia)", "ap-northeast-1": "Asia Pacific (Tokyo)"}

# (service code, product family, extra attributes, unit, {region: USD})
_CATALOG: list[tuple[str, str, dict[str, str], str, dict[str, str]]] = [
    ("AmazonEC2", "Storage", {"volumeApiName": "gp3"}, "GB-Mo", {"us-east-1": "0.08", "ap-northeast-1": "0.096"}),
    ("AmazonEC2", "Storage", {"volumeApiName": "gp2"}, "GB-Mo", {"us-east-1": "0.10", "ap-northeast-1": "0.12"}),
    ("AmazonEC2", "Storage", {"volumeApiName": "io1"}, "GB-Mo", {"us-east-1": "0.125", "ap-northeast-1": "0.142"}),
    ("AmazonEC2", "Storage", {"volumeApiName": "st1"}, "GB-Mo", {"us-east-1": "0.045", "ap-northeast-1": "0.054"}),
    ("AmazonEC2", "Storage", {"volumeApiName": "sc1"}, "GB-Mo", {"us-east-1": "0.015", "ap-northeast-1": "0.018"}),
    ("AmazonEC2", "Storage", {"volumeApiName": "standard"}, "GB-Mo", {"us-east-1": "0.05", "ap-northeast-1": "0.08"}),
    ("AmazonEC2", "Storage Snapshot", {}, "GB-Mo", {"us-east-1": "0.05", "ap-northeast-1": "0.05"}),
    ("AmazonEC2", "NAT Gateway", {}, "Hrs", {"us-east-1": "0.045", "ap-northeast-1": "0.062"}),
    (
        "AmazonVPC",
        "VPC Public IPv4 Address",
        {"group": "VPCPublicIPv4Address"},
        "Hrs",
        {"us-east-1": "0.005", "ap-northeast-1": "0.005"},
    ),
    (
        "AmazonVPC",
        "VpcEndpoint",
        {"group": "VpcEndpoint-Hour"},
        "Hrs",
        {"us-east-1": "0.01", "ap-northeast-1": "0.014"},
    ),
    ("AWSELB", "Load Balancer-Application", {}, "Hrs", {"us-east-1": "0.0225", "ap-northeast-1": "0.0243"}),
    ("AWSELB", "Load Balancer-Network", {}, "Hrs", {"us-east-1": "0.0225", "ap-northeast-1": "0.0243"}),
]


class InvalidParameterException(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterException", message)


def _products(service_code: str) -> list[dict[str, Any]]:
    out = []
    for index, (code, family, extra, unit, by_region) in enumerate(_CATALOG):
        if code != service_code:
            continue
        for region, price in by_region.items():
            sku = f"HL{index:03d}{region.replace('-', '').upper()}"
            attributes = {"regionCode": region, "location": REGIONS[region], "servicecode": code, **extra}
            out.append(
                {
                    "product": {"productFamily": family, "attributes": attributes, "sku": sku},
                    "serviceCode": code,
                    "terms": {
                        "OnDemand": {
                            f"{sku}.JRTCKXETXF": {
                                "offerTermCode": "JRTCKXETXF",
                                "sku": sku,
                                "effectiveDate": PUBLICATION,
                                "priceDimensions": {
                                    f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                        "unit": unit,
                                        "pricePerUnit": {"USD": price},
                                        "description": f"${price} per {unit} for {family} in {REGIONS[region]}",
                                    }
                                },
                            }
                        }
                    },
                    "version": PUBLICATION,
                    "publicationDate": PUBLICATION,
                }
            )
    return out


def _matches(product: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    fields = {"productFamily": product["product"]["productFamily"], **product["product"]["attributes"]}
    for flt in filters:
        if flt.get("Type") != "TERM_MATCH":
            raise InvalidParameterException(f"Filter type {flt.get('Type')!r} is not supported; use TERM_MATCH")
        if str(fields.get(str(flt.get("Field")), "")).lower() != str(flt.get("Value", "")).lower():
            return False
    return True


class PricingResponse(BaseResponse):
    def __init__(self) -> None:
        super().__init__(service_name="pricing")

    def get_products(self) -> str:
        params = json.loads(self.body or "{}")
        code = params.get("ServiceCode")
        if not code:
            raise InvalidParameterException("ServiceCode is required")
        found = [p for p in _products(str(code)) if _matches(p, list(params.get("Filters") or []))]
        size = int(params.get("MaxResults") or 100)
        start = int(params.get("NextToken") or 0)
        page = found[start : start + size]
        body: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": [json.dumps(p) for p in page]}
        if start + size < len(found):
            body["NextToken"] = str(start + size)
        return json.dumps(body)


OVERRIDDEN_ACTIONS = frozenset({"GetProducts"})
