"""The HTTPS server: Entra token endpoint, ARM front door (auth, faults, counting), admin API.

:class:`AzureEmulator` is the public entry point. It serves in background threads; the lab
daemon and tests start it in-process and may read its :attr:`AzureEmulator.store` directly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import logging
import os
import secrets
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .admin import FaultInjector, RequestLog
from .arm import ArmConfig, ArmService, Request, Response
from .certs import ensure_tls_files
from .errors import ArmError
from .store import RESOURCE_GROUP_TYPE, Store
from .tokens import TOKEN_LIFETIME_S, TokenIssuer

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
ENV_FILE = "azure.env"
ARM_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")
# api-versions the seeding helpers use (any supported one would do).
SEED_API_VERSIONS = {
    "microsoft.resources": "2021-04-01",
    "microsoft.network": "2024-07-01",
    "microsoft.consumption": "2024-08-01",
}


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: AzureEmulator, context: ssl.SSLContext) -> None:
        self.emulator = emulator
        self.context = context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so one slow or broken
        # client cannot stall the accept loop.
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        with self.connections_lock:
            self.connections.add(tls)
        try:
            _Handler(tls, client_address, self)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError):
            pass  # the client went away; nothing to answer
        finally:
            with self.connections_lock:
                self.connections.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def close_connections(self) -> None:
        """Cut kept-alive connections so a stopped emulator answers nothing more."""
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections are closed after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]!s}"
        request = Request(
            method=self.command,
            path=unquote(split.path),
            raw_path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base_url=f"https://{host}",
        )
        response = self.server.emulator._serve(request, self.client_address[0])
        payload = b"" if response.body is None else json.dumps(response.body).encode("utf-8")
        self.send_response(response.status)
        request_id = str(uuid.uuid4())
        headers = {
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": request.headers.get("x-ms-correlation-request-id", request_id),
            "x-ms-routing-request-id": f"LOCAL:{request_id}",
        }
        if "x-ms-client-request-id" in request.headers:
            headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
        if payload:
            headers["Content-Type"] = "application/json; charset=utf-8"
        headers.update(response.headers)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)


class AzureEmulator:
    """An HTTPS Azure Resource Manager + Entra token endpoint for the lab and tests.

    ``port=0`` picks a free port (read :attr:`port` / :attr:`base_url` after :meth:`start`).
    Identity (subscription, tenant, client id and secret) and the token signing key are made
    on first use and kept in ``state_dir/state.json``, unless given explicitly.
    """

    def __init__(
        self,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int = 5512,
        *,
        subscription_id: str | None = None,
        tenant_id: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        config: ArmConfig | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)  # the state holds the client secret and signing key
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.store = Store(self.state_dir / STATE_FILE)
        with self.store.transaction() as tx:
            meta = tx.meta
            given = {
                "subscription_id": subscription_id,
                "tenant_id": tenant_id,
                "client_id": client_id,
                "client_secret": client_secret,
            }
            for key, value in given.items():
                if value is not None:
                    meta[key] = value
                elif key not in meta:
                    meta[key] = secrets.token_urlsafe(32) if key == "client_secret" else str(uuid.uuid4())
            meta.setdefault("signing_key", secrets.token_hex(32))
            tx.touch()
        state_file = self.state_dir / STATE_FILE
        if state_file.exists():
            os.chmod(state_file, 0o600)
        meta = self.store.meta
        self._identity = {k: str(meta[k]) for k in ("subscription_id", "tenant_id", "client_id", "client_secret")}
        self._issuer = TokenIssuer(bytes.fromhex(str(meta["signing_key"])), self.tenant_id)
        self.arm = ArmService(self.store, self.subscription_id, self.tenant_id, config)
        self.faults = FaultInjector()
        self.arm.faults = self.faults  # operation-ending faults are taken when an operation starts
        self.requests = RequestLog()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sweeper: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- identity and endpoints ---------------------------------------------------------------

    @property
    def subscription_id(self) -> str:
        return self._identity["subscription_id"]

    @property
    def tenant_id(self) -> str:
        return self._identity["tenant_id"]

    @property
    def client_id(self) -> str:
        return self._identity["client_id"]

    @property
    def client_secret(self) -> str:
        return self._identity["client_secret"]

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the Azure emulator is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}"

    @property
    def authority(self) -> str:
        """What ``authority=`` / ``AZURE_AUTHORITY_HOST`` must be (the tenant is appended by msal)."""
        return self.base_url

    @property
    def ca_bundle(self) -> str:
        return str(self.state_dir / "tls" / "ca.pem")

    @property
    def config(self) -> ArmConfig:
        return self.arm.config

    def configure(self, **changes: Any) -> ArmConfig:
        """Change :class:`ArmConfig` knobs at run time (``lro_polls``, ``page_size``, ...)."""
        return self.arm.configure(**changes)

    def credential_env(self) -> dict[str, str]:
        """Environment variables for ``DefaultAzureCredential`` / ``EnvironmentCredential``."""
        return {
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_CLIENT_SECRET": self.client_secret,
            "AZURE_AUTHORITY_HOST": self.authority,
            "AZURE_SUBSCRIPTION_ID": self.subscription_id,
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
            "SSL_CERT_FILE": self.ca_bundle,
        }

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Serve in background threads; returns once the listening socket accepts connections."""
        if self._server is not None:
            return
        tls = ensure_tls_files(self.state_dir / "tls")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(tls.cert), str(tls.key))
        server = _Server((self.host, self._requested_port), self, context)
        self._port = int(server.server_address[1])
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="azure-emulator", daemon=True
        )
        self._thread.start()
        self._sweeper = threading.Thread(target=self._sweep, name="azure-emulator-lro", daemon=True)
        self._sweeper.start()
        self._write_env_file()
        log.info("Azure emulator serving on %s", self.base_url)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        for thread in (self._thread, self._sweeper):
            if thread is not None:
                thread.join(timeout=5)
        self._thread = self._sweeper = None

    def __enter__(self) -> AzureEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _sweep(self) -> None:
        # Operations nobody polls (polling=False, a crashed client) still finish, as in Azure.
        while not self._stopping.wait(0.25):
            try:
                self.arm.complete_due()
            except Exception:
                log.exception("completing due operations failed")

    def _write_env_file(self) -> None:
        path = self.state_dir / ENV_FILE
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for key, value in self.credential_env().items():
                handle.write(f"{key}={value}\n")
        os.replace(tmp, path)

    # -- request handling ---------------------------------------------------------------------

    def _serve(self, request: Request, client: str) -> Response:
        try:
            if request.path.startswith("/_emulator/") or request.path == "/_emulator":
                if not _is_loopback(client):
                    raise ArmError(403, "Forbidden", "The emulator admin API only answers loopback clients.")
                return self._admin(request)
            return self._serve_public(request)
        except ArmError as exc:
            return Response(exc.status, exc.body(), dict(exc.headers))
        except Exception as exc:  # the SDK must see a well-formed 500, never a dropped connection
            log.exception("Azure emulator failed on %s %s", request.method, request.path)
            return Response(500, {"error": {"code": "InternalServerError", "message": str(exc)}})

    def _serve_public(self, request: Request) -> Response:
        segments = [s.lower() for s in request.path.split("/") if s]
        is_auth = len(segments) >= 2 and segments[0] != "subscriptions" and segments[1] in (
            "v2.0", "oauth2", ".well-known"
        )
        kind = RequestLog.kind_of(request.method, is_auth)
        fault = self.faults.take(request.method, request.path)
        if fault is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            message = fault.message.replace("{retry_after}", str(fault.retry_after)).replace(
                "{request_id}", str(uuid.uuid4())
            )
            response = Response(fault.status, {"error": {"code": fault.code, "message": message}}, headers)
        else:
            try:
                if segments[:2] == ["metadata", "endpoints"] and len(segments) == 2:
                    response = self._cloud_metadata(request)
                else:
                    response = self._identity_endpoint(request, segments) if is_auth else self._arm(request)
            except ArmError as exc:
                response = Response(exc.status, exc.body(), dict(exc.headers))
        self.requests.record(request.method, request.path, kind, response.status)
        return response

    def _arm(self, request: Request) -> Response:
        self._authenticate(request)
        response = self.arm.handle(request)
        remaining = "11999" if request.method in ("GET", "HEAD") else "1199"
        header = "reads" if request.method in ("GET", "HEAD") else "writes"
        response.headers.setdefault(f"x-ms-ratelimit-remaining-subscription-{header}", remaining)
        return response

    def _audience_ok(self, audience: str) -> bool:
        aud = audience.rstrip("/")
        if aud.lower() in ARM_AUDIENCES:
            return True
        split = urlsplit(aud)
        return split.scheme == "https" and (
            split.hostname in ("localhost", self.host) or _is_loopback(split.hostname or "")
        )

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        challenge = f'Bearer authorization_uri="{request.base_url}/{self.tenant_id}", error="invalid_token"'
        if not header:
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                {"WWW-Authenticate": challenge + ', error_description="The authentication failed because of '
                 'missing \'Authorization\' header."'},
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                {"WWW-Authenticate": challenge},
            )
        check = self._issuer.check(token.strip(), self._audience_ok)
        if check.code is not None:
            raise ArmError(401, check.code, check.message, {"WWW-Authenticate": challenge})

    # -- cloud discovery ----------------------------------------------------------------------

    def _cloud_metadata(self, request: Request) -> Response:
        """``GET /metadata/endpoints``: ARM's cloud discovery, which answers without a token.

        ``az cloud register --endpoint-resource-manager`` and Terraform's ``metadata_host`` read
        it before they have any credential. 2022-09-01 (and 2020-06-01) answer this cloud as one
        object; 2019-05-01 a list of clouds; 2015-01-01 the old flat shape.
        """
        if request.method not in ("GET", "HEAD"):
            raise ArmError(405, "MethodNotAllowed", f"The requested method {request.method} is not allowed.")
        base = request.base_url
        audiences = [f"{base}/", "https://management.core.windows.net/", "https://management.azure.com/"]
        cloud: dict[str, Any] = {
            "name": "HybridctlEmulator",
            "portal": base,
            "resourceManager": f"{base}/",
            "authentication": {
                "loginEndpoint": f"{self.authority}/",
                "audiences": audiences,
                "tenant": self.tenant_id,
                "identityProvider": "AAD",
            },
            "media": "https://rest.media.azure.net",
            "graphAudience": "https://graph.windows.net/",
            "graph": "https://graph.windows.net/",
            "batch": "https://batch.core.windows.net/",
            "sqlManagement": "https://management.core.windows.net:8443/",
            "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/master/"
            "arm-compute/quickstart-templates/aliases.json",
            "activeDirectoryDataLake": "https://datalake.azure.net/",
            "microsoftGraphResourceId": "https://graph.microsoft.com/",
            "appInsightsResourceId": "https://api.applicationinsights.io",
            "appInsightsTelemetryChannelResourceId": "https://dc.applicationinsights.azure.com/v2/track",
            "attestationResourceId": "https://attest.azure.net",
            "synapseAnalyticsResourceId": "https://dev.azuresynapse.net",
            "logAnalyticsResourceId": "https://api.loganalytics.io",
            "ossrDbmsResourceId": "https://ossrdbms-aad.database.windows.net",
            "suffixes": {
                "storage": "core.windows.net",
                "keyVaultDns": "vault.azure.net",
                "sqlServerHostname": "database.windows.net",
                "acrLoginServer": "azurecr.io",
                "storageSyncEndpointSuffix": "afs.azure.net",
                "mhsmDns": "managedhsm.azure.net",
                "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
                "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
                "attestationEndpoint": "attest.azure.net",
                "synapseAnalytics": "dev.azuresynapse.net",
            },
        }
        version = request.api_version
        if not version:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if version in ("2022-09-01", "2020-06-01"):
            return Response(200, cloud)
        if version == "2019-05-01":
            return Response(200, [cloud])
        if version == "2015-01-01":
            return Response(200, {
                "galleryEndpoint": "", "graphEndpoint": "https://graph.windows.net/", "portalEndpoint": base,
                "authentication": {"loginEndpoint": f"{self.authority}/", "audiences": audiences},
            })
        raise ArmError(400, "InvalidApiVersionParameter",
                       f"The api-version '{version}' is invalid. The supported versions are "
                       "'2022-09-01,2020-06-01,2019-05-01,2015-01-01'.")

    # -- Entra (Azure AD) endpoints -----------------------------------------------------------

    def _aad_error(self, status: int, error: str, number: int, description: str, base: str) -> Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return Response(
            status,
            {
                "error": error,
                "error_description": f"AADSTS{number}: {description} Trace ID: {trace} "
                f"Correlation ID: {correlation} Timestamp: {stamp}",
                "error_codes": [number],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"{base}/error?code={number}",
            },
        )

    def _identity_endpoint(self, request: Request, segments: list[str]) -> Response:
        tenant = segments[0]
        base = request.base_url
        if tenant != self.tenant_id.lower():
            return self._aad_error(
                400,
                "invalid_tenant" if segments[-1] == "openid-configuration" else "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
                base,
            )
        if request.method == "GET" and segments[-2:] == [".well-known", "openid-configuration"]:
            v2 = "v2.0" in segments
            prefix = f"{base}/{self.tenant_id}"
            token_endpoint = f"{prefix}/oauth2/v2.0/token" if v2 else f"{prefix}/oauth2/token"
            return Response(
                200,
                {
                    "token_endpoint": token_endpoint,
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                              "client_secret_basic"],
                    "jwks_uri": f"{prefix}/discovery/v2.0/keys",
                    "response_modes_supported": ["query", "fragment", "form_post"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "issuer": f"{prefix}/v2.0" if v2 else f"https://sts.windows.net/{self.tenant_id}/",
                    "request_uri_parameter_supported": False,
                    "userinfo_endpoint": f"{base}/oidc/userinfo",
                    "authorization_endpoint": f"{prefix}/oauth2/v2.0/authorize" if v2
                    else f"{prefix}/oauth2/authorize",
                    "device_authorization_endpoint": f"{prefix}/oauth2/v2.0/devicecode",
                    "http_logout_supported": True,
                    "frontchannel_logout_supported": True,
                    "end_session_endpoint": f"{prefix}/oauth2/v2.0/logout",
                    "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver"],
                    "tenant_region_scope": "NA",
                    "cloud_instance_name": "microsoftonline.com",
                    "cloud_graph_host_name": "graph.windows.net",
                    "msgraph_host": "graph.microsoft.com",
                    "rbac_url": "https://pas.windows.net",
                },
            )
        if request.method == "POST" and segments[1:] in (["oauth2", "v2.0", "token"], ["oauth2", "token"]):
            return self._token(request, base, v2=segments[2] == "v2.0")
        return self._aad_error(
            404, "invalid_request", 900561, "The endpoint only accepts POST requests.", base
        )

    def _token(self, request: Request, base: str, v2: bool) -> Response:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            return self._aad_error(
                400, "unsupported_grant_type", 70003,
                f"The app requested an unsupported grant type '{form.get('grant_type', '')}'.", base,
            )
        client_id = form.get("client_id", "")
        if client_id != self.client_id:
            return self._aad_error(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory '{self.tenant_id}'. "
                "This can happen if the application has not been installed by the administrator of the tenant "
                "or consented to by any user in the tenant. You may have sent your authentication request to "
                "the wrong tenant.",
                base,
            )
        secret = form.get("client_secret")
        if not secret:
            return self._aad_error(
                401, "invalid_client", 7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' "
                "grant type.",
                base,
            )
        if not secrets.compare_digest(secret.encode(), self.client_secret.encode()):
            return self._aad_error(
                401, "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{self.client_id}'.",
                base,
            )
        if v2:
            scopes = form.get("scope", "").split()
            if not scopes:
                return self._aad_error(
                    400, "invalid_request", 900144,
                    "The request body must contain the following parameter: 'scope'.", base,
                )
            resource_scopes = [s for s in scopes if s.endswith("/.default")]
            if not resource_scopes:
                return self._aad_error(
                    400, "invalid_scope", 1002012,
                    f"The provided value for scope {scopes[0]} is not valid. Client credential flows must have "
                    "a scope value with /.default suffixed to the resource identifier (application ID URI).",
                    base,
                )
            audience = resource_scopes[0][: -len("/.default")]
        else:
            audience = form.get("resource", "")
        now = int(time.time())
        return Response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_S,
                "ext_expires_in": TOKEN_LIFETIME_S,
                **({} if v2 else {"expires_on": str(now + TOKEN_LIFETIME_S), "resource": audience}),
                "access_token": self._issuer.issue(self.client_id, audience),
            },
        )

    # -- admin API ----------------------------------------------------------------------------

    def _admin(self, request: Request) -> Response:
        route = request.path[len("/_emulator"):].strip("/")
        method = request.method
        payload: dict[str, Any] = {}
        if request.body:
            try:
                loaded = json.loads(request.body)
            except json.JSONDecodeError as exc:
                raise ArmError(400, "InvalidRequestContent", f"Admin request body is not JSON: {exc}") from None
            if not isinstance(loaded, dict):
                raise ArmError(400, "InvalidRequestContent", "Admin request body must be a JSON object.")
            payload = loaded
        try:
            if route == "health" and method == "GET":
                return Response(200, {
                    "status": "ok",
                    "base_url": request.base_url,
                    "subscription_id": self.subscription_id,
                    "tenant_id": self.tenant_id,
                    "client_id": self.client_id,
                    "ca_bundle": self.ca_bundle,
                })
            if route == "state" and method == "GET":
                return Response(200, self.store.snapshot())
            if route == "config":
                if method == "GET":
                    return Response(200, self.arm.config.as_dict())
                if method in ("POST", "PATCH", "PUT"):
                    return Response(200, self.arm.configure(**payload).as_dict())
            if route == "faults":
                if method == "GET":
                    return Response(200, {"value": self.faults.list()})
                if method == "POST":
                    fault = self.faults.add(
                        method=payload.get("method"),
                        path_regex=str(payload.get("path_regex", ".*")),
                        status=int(payload.get("status", 429)),
                        count=int(payload.get("count", 1)),
                        retry_after=None if payload.get("retry_after") is None else int(payload["retry_after"]),
                        code=payload.get("code"),
                        message=payload.get("message"),
                        operation_status=payload.get("operation_status"),
                    )
                    return Response(201, fault.as_dict())
                if method == "DELETE":
                    self.faults.clear()
                    return Response(204, None)
            if route == "requests":
                if method == "GET":
                    return Response(200, self.requests.summary(
                        method=request.query.get("method") or None,
                        path_regex=request.query.get("path_regex") or None,
                        kind=request.query.get("kind") or None,
                    ))
                if method == "DELETE":
                    self.requests.reset()
                    return Response(204, None)
            if route == "requests/reset" and method == "POST":
                self.requests.reset()
                return Response(204, None)
            if route == "spend" and method == "POST":
                budget_id = payload.get("budget_id")
                if not isinstance(budget_id, str):
                    raise ArmError(400, "InvalidRequestContent", "'budget_id' (the budget's ARM id) is required.")
                return Response(200, self.arm.set_spend(
                    budget_id,
                    current=payload.get("current_spend"),
                    forecast=payload.get("forecast_spend"),
                    unit=payload.get("unit"),
                ))
            if route == "permissions" and method in ("POST", "PUT"):
                # {"resource_group": name or null, "permissions": [{"actions": [...], "notActions": [...]}]}
                blocks = payload.get("permissions")
                if not isinstance(blocks, list):
                    raise ArmError(400, "InvalidRequestContent", "'permissions' (a list of blocks) is required.")
                self.arm.permissions.set(blocks, payload.get("resource_group"))
                return Response(204, None)
            if route == "operations/complete" and method == "POST":
                self.arm.complete_all()
                return Response(204, None)
            if route == "reset" and method == "POST":
                self.reset()
                return Response(204, None)
        except (ValueError, TypeError) as exc:
            raise ArmError(400, "InvalidRequestContent", str(exc)) from None
        raise ArmError(404, "NotFound", f"No admin endpoint {method} /_emulator/{route}.")

    # -- in-process helpers (lab seeding) -----------------------------------------------------

    def reset(self) -> None:
        """Forget every resource and operation (identity and TLS material stay)."""
        with self.store.transaction() as tx:
            for record in list(tx.records()):
                tx.delete(str(record["id"]))
            tx.operations.clear()
            tx.touch()
        self.arm.permissions.reset()

    def request(self, method: str, path: str, body: Any = None, api_version: str | None = None) -> Response:
        """Run one ARM request in-process (no auth, no faults, not counted)."""
        segments = [s.lower() for s in path.split("/") if s]
        namespace = "microsoft.resources"
        if "providers" in segments and segments.index("providers") + 1 < len(segments):
            namespace = segments[segments.index("providers") + 1]
        base = self.base_url if self._port is not None else "https://127.0.0.1"
        request = Request(
            method=method.upper(),
            path=path,
            raw_path=quote(path),
            query={"api-version": api_version or SEED_API_VERSIONS.get(namespace, "")},
            headers={},
            body=b"" if body is None else json.dumps(body).encode(),
            base_url=base,
        )
        return self.arm.handle(request)

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or update a resource synchronously (its operation completes at once).

        Raises :class:`ArmError` exactly as the HTTP API would answer.
        """
        response = self.request("PUT", path, body)
        self.arm.complete_all()
        if response.status >= 400:  # pragma: no cover - handle() raises instead
            raise ArmError(response.status, "Error", json.dumps(response.body))
        rendered = self.get(str(response.body["id"])) if isinstance(response.body, dict) else None
        return rendered if rendered is not None else dict(response.body or {})

    def get(self, resource_id: str) -> dict[str, Any] | None:
        """A resource (top-level or child) as an ARM GET shows it, or None."""
        try:
            response = self.request("GET", resource_id)
        except ArmError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(response.body) if isinstance(response.body, dict) else None

    def delete(self, path: str) -> None:
        """Delete a resource (or resource group, with its contents) synchronously."""
        self.request("DELETE", path)
        self.arm.complete_all()

    def resource_group_id(self, name: str) -> str:
        return self.arm.rg_id(name)

    def network_id(self, resource_group: str, resource_type: str, name: str) -> str:
        return f"{self.arm.rg_id(resource_group)}/providers/Microsoft.Network/{resource_type}/{name}"

    def create_resource_group(self, name: str, location: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"location": location}
        if tags:
            body["tags"] = tags
        return self.put(self.resource_group_id(name), body)

    def create_virtual_network(
        self,
        resource_group: str,
        name: str,
        location: str,
        address_prefixes: list[str],
        subnets: dict[str, str] | None = None,
        route_tables: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """``subnets`` maps subnet name -> prefix; ``route_tables`` maps subnet name -> route table id."""
        entries = []
        for subnet, prefix in (subnets or {}).items():
            props: dict[str, Any] = {"addressPrefix": prefix}
            if route_tables and subnet in route_tables:
                props["routeTable"] = {"id": route_tables[subnet]}
            entries.append({"name": subnet, "properties": props})
        body = {
            "location": location,
            "properties": {"addressSpace": {"addressPrefixes": address_prefixes}, "subnets": entries},
        }
        return self.put(self.network_id(resource_group, "virtualNetworks", name), body)

    def create_network_interface(
        self,
        resource_group: str,
        name: str,
        location: str,
        subnet_id: str,
        private_ip: str | None = None,
        enable_ip_forwarding: bool = False,
    ) -> dict[str, Any]:
        ipconfig: dict[str, Any] = {"subnet": {"id": subnet_id}}
        if private_ip:
            ipconfig.update({"privateIPAllocationMethod": "Static", "privateIPAddress": private_ip})
        body = {
            "location": location,
            "properties": {
                "enableIPForwarding": enable_ip_forwarding,
                "ipConfigurations": [{"name": "ipconfig1", "properties": ipconfig}],
            },
        }
        return self.put(self.network_id(resource_group, "networkInterfaces", name), body)

    def create_route_table(
        self, resource_group: str, name: str, location: str, routes: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """``routes``: ``[{"name", "addressPrefix", "nextHopType", "nextHopIpAddress"?}]``."""
        entries = [
            {"name": r["name"], "properties": {k: v for k, v in r.items() if k != "name"}} for r in routes or []
        ]
        body = {"location": location, "properties": {"routes": entries}}
        return self.put(self.network_id(resource_group, "routeTables", name), body)

    def create_network_security_group(
        self, resource_group: str, name: str, location: str, rules: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        entries = [
            {"name": r["name"], "properties": {k: v for k, v in r.items() if k != "name"}} for r in rules or []
        ]
        body = {"location": location, "properties": {"securityRules": entries}}
        return self.put(self.network_id(resource_group, "networkSecurityGroups", name), body)

    def create_budget(self, scope: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
        """``scope``: ``/subscriptions/{id}`` or ``/subscriptions/{id}/resourceGroups/{rg}``."""
        return self.put(f"{scope.rstrip('/')}/providers/Microsoft.Consumption/budgets/{name}",
                        {"properties": properties})

    def set_spend(
        self, budget_id: str, current: float | None = None, forecast: float | None = None, unit: str | None = None
    ) -> dict[str, Any]:
        return self.arm.set_spend(budget_id, current, forecast, unit)

    def resource_groups(self) -> list[dict[str, Any]]:
        return self.store.list(RESOURCE_GROUP_TYPE)
