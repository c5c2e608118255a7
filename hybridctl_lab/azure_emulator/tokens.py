"""Access tokens the emulator's token endpoint issues and its ARM front door checks.

Tokens are JWTs signed with HS256 and a key kept in the emulator's state, so a token cached
by a client stays valid across emulator restarts (as a real Entra token would). Real Entra
tokens are RS256; no Azure SDK validates the access token it receives, so the algorithm is
invisible to clients.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TOKEN_LIFETIME_S = 3599


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TokenCheck:
    """Outcome of checking a bearer token: ``code`` is None when it is valid."""

    code: str | None
    message: str
    claims: dict[str, Any]


class TokenIssuer:
    def __init__(self, key: bytes, tenant_id: str) -> None:
        self._key = key
        self._tenant_id = tenant_id

    def issue(self, client_id: str, audience: str, lifetime_s: int = TOKEN_LIFETIME_S) -> str:
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{self._tenant_id}/",
            "iat": now,
            "nbf": now - 300,
            "exp": now + lifetime_s,
            "appid": client_id,
            "appidacr": "1",
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{client_id}")),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{client_id}")),
            "tid": self._tenant_id,
            "uti": uuid.uuid4().hex,
            "ver": "1.0",
        }
        header = {"typ": "JWT", "alg": "HS256", "kid": "hybridctl-emulator"}
        signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        signature = hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return signing_input + "." + _b64(signature)

    def check(self, token: str, allowed_audience: Callable[[str], bool]) -> TokenCheck:
        parts = token.split(".")
        if len(parts) != 3:
            return TokenCheck("InvalidAuthenticationToken", "The access token is invalid.", {})
        signing_input = parts[0] + "." + parts[1]
        expected = hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest()
        try:
            signature = _unb64(parts[2])
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, json.JSONDecodeError):
            return TokenCheck("InvalidAuthenticationToken", "The access token is invalid.", {})
        if not hmac.compare_digest(signature, expected) or not isinstance(claims, dict):
            return TokenCheck(
                "InvalidAuthenticationToken",
                "The access token is invalid: its signature could not be verified.",
                {},
            )
        if int(claims.get("exp", 0)) < time.time():
            return TokenCheck(
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
                claims,
            )
        if claims.get("tid") != self._tenant_id:
            return TokenCheck(
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer '{claims.get('iss')}'. It must match the "
                f"tenant 'https://sts.windows.net/{self._tenant_id}/' associated with this subscription.",
                claims,
            )
        audience = str(claims.get("aud", ""))
        if not allowed_audience(audience):
            return TokenCheck(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{audience}'. It should "
                "exactly match with one of the allowed audiences 'https://management.core.windows.net/',"
                "'https://management.core.windows.net','https://management.azure.com/',"
                "'https://management.azure.com' or this emulator's base URL.",
                claims,
            )
        return TokenCheck(None, "", claims)

