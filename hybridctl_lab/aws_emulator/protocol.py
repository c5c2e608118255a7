"""Which AWS service and action a raw HTTP request is, and AWS's throttling error for it.

The service is the SigV4 signing name from the ``Authorization`` credential scope (what
moto's dispatcher uses too). The action comes from the request itself: the
``X-Amz-Target`` header (JSON protocols), the ``Action`` form field (query and EC2
protocols) or, for REST protocols, the HTTP method and path matched against botocore's
service model.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

READ_PREFIXES = ("Describe", "List", "Get", "Search", "Simulate")

# SigV4 signing names whose botocore model has another name.
_MODEL_FOR_SIGNING_NAME = {
    "monitoring": "cloudwatch",
    "email": "ses",
    "elasticloadbalancing": "elbv2",
    "execute-api": "apigateway",
    "states": "stepfunctions",
    "cognito-idp": "cognito-idp",
    "es": "opensearch",
}

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
_model_lock = threading.Lock()


@dataclass(frozen=True)
class RequestInfo:
    service: str  # SigV4 signing name, lower case: "ec2", "iam", "budgets", ...
    action: str  # AWS operation name, e.g. "ReplaceRoute"
    region: str
    protocol: str  # "ec2" | "query" | "json" | "rest-json" | "rest-xml" | "unknown"

    @property
    def mutating(self) -> bool:
        return is_mutating(self.action)


def is_mutating(action: str) -> bool:
    """Describe*/List*/Get*/Search*/Simulate* only read; every other action may change state."""
    return not action.startswith(READ_PREFIXES)


@lru_cache(maxsize=64)
def service_model(signing_name: str) -> Any | None:
    """botocore's ServiceModel for a SigV4 signing name (cached), or None if unknown."""
    from botocore.exceptions import UnknownServiceError
    from botocore.model import ServiceModel
    from botocore.session import get_session

    name = _MODEL_FOR_SIGNING_NAME.get(signing_name, signing_name)
    with _model_lock:
        try:
            raw = get_session().get_component("data_loader").load_service_model(name, "service-2")
        except UnknownServiceError:
            return None
    return ServiceModel(raw, service_name=name)


def service_protocol(signing_name: str) -> str:
    model = service_model(signing_name)
    if model is None:
        return "unknown"
    return str(model.metadata.get("protocol", "unknown"))


@dataclass(frozen=True)
class _RestRoute:
    method: str
    path: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]  # required query keys (and values)
    headers: tuple[str, ...]  # required headers, as WSGI environ keys
    operation: str

    def matches(self, environ: dict[str, Any], method: str, path: str, query: dict[str, list[str]]) -> bool:
        if method != self.method or not self.path.match(path):
            return False
        if any(k not in query or (v is not None and v not in query[k]) for k, v in self.query):
            return False
        return all(h in environ for h in self.headers)


@lru_cache(maxsize=64)
def _rest_routes(signing_name: str) -> tuple[_RestRoute, ...]:
    model = service_model(signing_name)
    if model is None:
        return ()
    routes = []
    for op_name in model.operation_names:
        operation = model.operation_model(op_name)
        http = operation.http
        uri, _, query_part = str(http.get("requestUri", "/")).partition("?")
        pattern = re.sub(r"\\\{[^}]+?\\\+\\\}", ".+", re.escape(uri))  # greedy labels {Key+}
        pattern = re.sub(r"\\\{[^}]+?\\\}", "[^/]+", pattern)
        query = tuple(
            (k, v if sep else None) for k, sep, v in (item.partition("=") for item in query_part.split("&") if item)
        )
        # Operations sharing a path can differ by a required header (S3 CopyObject vs PutObject).
        shape = operation.input_shape
        required = set(shape.required_members) if shape is not None else set()
        headers = tuple(
            "HTTP_" + str(member.serialization["name"]).upper().replace("-", "_")
            for name, member in (shape.members.items() if shape is not None else [])
            if name in required and member.serialization.get("location") == "header"
        )
        routes.append(
            _RestRoute(str(http.get("method", "GET")).upper(), re.compile(f"^{pattern}/?$"), query, headers, op_name)
        )
    # Most specific first: more required query keys/headers, then the longer template.
    routes.sort(key=lambda r: (len(r.query) + len(r.headers), len(r.path.pattern)), reverse=True)
    return tuple(routes)


def identify(environ: dict[str, Any], body: bytes) -> RequestInfo:
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    match = _SCOPE.search(auth)
    service = match.group("service").lower() if match else "unknown"
    region = match.group("region") if match else "us-east-1"
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        if service == "unknown":
            service = target.split(".", 1)[0].split("_", 1)[0].lower()
        return RequestInfo(service, target.rsplit(".", 1)[-1], region, "json")

    content_type = str(environ.get("CONTENT_TYPE", ""))
    fields: dict[str, list[str]] = {}
    if body and content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(body.decode("utf-8", "replace"))
    elif environ.get("QUERY_STRING"):
        fields = parse_qs(str(environ["QUERY_STRING"]))
    if fields.get("Action"):
        protocol = "ec2" if service == "ec2" else "query"
        return RequestInfo(service, fields["Action"][0], region, protocol)

    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    path = str(environ.get("PATH_INFO", "/")) or "/"
    query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    protocol = service_protocol(service)
    for route in _rest_routes(service):
        if route.matches(environ, method, path, query):
            return RequestInfo(service, route.operation, region, protocol)
    return RequestInfo(service, f"{method} {path}", region, protocol)


# --------------------------------------------------------------------------- throttling


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def throttle_error(info: RequestInfo, code: str | None = None, status: int | None = None) -> ErrorResponse:
    """The error AWS answers a throttled request with, in the request's protocol."""
    if info.protocol == "ec2":
        return _ec2_error(code or "RequestLimitExceeded", "Request limit exceeded.", status or 503)
    if info.protocol == "query":
        return _query_error(info, code or "Throttling", "Rate exceeded", status or 400)
    if info.protocol == "json":
        return _json_error(code or "ThrottlingException", "Rate exceeded", status or 400, "application/x-amz-json-1.1")
    if info.protocol == "rest-xml":
        return _rest_xml_error(code or "SlowDown", "Please reduce your request rate.", status or 503)
    return _json_error(code or "ThrottlingException", "Rate exceeded", status or 429, "application/json")


def internal_error(info: RequestInfo, message: str) -> ErrorResponse:
    """A 500 in the request's protocol (botocore retries InternalError like AWS's own)."""
    if info.protocol == "ec2":
        return _ec2_error("InternalError", message, 500)
    if info.protocol == "query":
        return _query_error(info, "InternalFailure", message, 500, sender=False)
    if info.protocol == "rest-xml":
        return _rest_xml_error("InternalError", message, 500)
    return _json_error("InternalFailure", message, 500, "application/x-amz-json-1.1")


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _request_id() -> str:
    return str(uuid.uuid4())


def _ec2_error(code: str, message: str, status: int) -> ErrorResponse:
    rid = _request_id()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{_xml_escape(code)}</Code><Message>{_xml_escape(message)}"
        f"</Message></Error></Errors><RequestID>{rid}</RequestID></Response>"
    ).encode()
    return ErrorResponse(status, [("Content-Type", "text/xml;charset=UTF-8"), ("x-amzn-RequestId", rid)], body)


def _query_error(info: RequestInfo, code: str, message: str, status: int, *, sender: bool = True) -> ErrorResponse:
    rid = _request_id()
    model = service_model(info.service)
    namespace = model.metadata.get("xmlNamespace") if model is not None else None
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    body = (
        f"<ErrorResponse{xmlns}><Error><Type>{'Sender' if sender else 'Receiver'}</Type>"
        f"<Code>{_xml_escape(code)}</Code><Message>{_xml_escape(message)}</Message></Error>"
        f"<RequestId>{rid}</RequestId></ErrorResponse>"
    ).encode()
    return ErrorResponse(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body)


def _json_error(code: str, message: str, status: int, content_type: str) -> ErrorResponse:
    rid = _request_id()
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = [("Content-Type", content_type), ("x-amzn-RequestId", rid), ("x-amzn-ErrorType", code)]
    return ErrorResponse(status, headers, body)


def _rest_xml_error(code: str, message: str, status: int) -> ErrorResponse:
    rid = _request_id()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{_xml_escape(code)}</Code><Message>{_xml_escape(message)}</Message>"
        f"<RequestId>{rid}</RequestId></Error>"
    ).encode()
    return ErrorResponse(status, [("Content-Type", "application/xml"), ("x-amz-request-id", rid)], body)
