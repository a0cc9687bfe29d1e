"""Local stand-in for the API's Cognito authorizer: HS256 test tokens and their claims.

In AWS, API Gateway verifies the user pool's ID token and passes its claims to the
function in ``requestContext.authorizer.claims``; the function never checks a token. The
local API server does the same with tokens signed here with a shared local secret, so tests
and the demo can act as any user, or as an admin.

A token is a JWT (``header.payload.signature``, base64url without padding) signed with
HMAC-SHA256. Its payload has the claims of a Cognito ID token that the product reads:
``sub`` (the user id), ``cognito:groups`` (a JSON list), ``token_use``, ``iss``, ``iat`` and
``exp``. The claims reach the function as API Gateway's Cognito authorizer delivers them:
every value a string, the groups joined by commas, the times as dates.

The secret is not a secret: it only has to match between the minting and the checking side
of one machine, and no deployed API accepts these tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

LOCAL_SECRET = b"recsys-local-stack-test-secret"
ISSUER = "recsys-local"
DEFAULT_TTL_S = 3600
ADMIN_GROUP = "admin"
MAX_TOKEN_CHARS = 8192

_HEADER = {"alg": "HS256", "typ": "JWT"}
# How API Gateway writes a claim that holds a time.
_CLAIM_TIME_FORMAT = "%a %b %d %H:%M:%S UTC %Y"


class InvalidTokenError(ValueError):
    """A token that is missing, malformed, wrongly signed or expired; answers 401."""


def _encode(part: bytes) -> str:
    return base64.urlsafe_b64encode(part).rstrip(b"=").decode("ascii")


def _decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidTokenError("token part is not base64url") from None


def _signature(signing_input: str, secret: bytes) -> str:
    return _encode(hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest())


def mint_token(
    sub: str,
    groups: Iterable[str] = (),
    ttl_s: float = DEFAULT_TTL_S,
    secret: bytes = LOCAL_SECRET,
    *,
    now: float | None = None,
) -> str:
    """Sign a test token for ``sub``, a member of ``groups``, valid for ``ttl_s`` seconds.

    A negative ``ttl_s`` gives a token that has already expired.
    """
    issued_at = int(time.time() if now is None else now)
    payload: dict[str, Any] = {"sub": sub}
    # Cognito leaves the claim out for a user in no group.
    if memberships := list(groups):
        payload["cognito:groups"] = memberships
    payload.update(token_use="id", iss=ISSUER, iat=issued_at, exp=issued_at + int(ttl_s))
    header = _encode(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _encode(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}"
    return f"{signing_input}.{_signature(signing_input, secret)}"


def verify_token(
    token: str, secret: bytes = LOCAL_SECRET, *, now: float | None = None
) -> dict[str, Any]:
    """Check a token's form, algorithm, signature and expiry; return its payload.

    Raises
    ------
    InvalidTokenError
        Naming what is wrong, for anything but a valid, unexpired token signed with
        ``secret``.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidTokenError("token is too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidTokenError("token is not three dot-separated parts")
    header_part, payload_part, signature = parts

    try:
        header = json.loads(_decode(header_part))
        payload = json.loads(_decode(payload_part))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidTokenError("token header or payload is not JSON") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidTokenError("token is not signed with HS256")

    expected = _signature(f"{header_part}.{payload_part}", secret)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        raise InvalidTokenError("token signature does not match")

    if not isinstance(payload, dict) or not isinstance(payload.get("sub"), str):
        raise InvalidTokenError("token has no sub claim")
    expires_at = payload.get("exp")
    if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
        raise InvalidTokenError("token has no exp claim")
    if expires_at <= (time.time() if now is None else now):
        raise InvalidTokenError("token has expired")
    return payload


def bearer_token(header_value: str | None) -> str:
    """The token of an ``Authorization`` header, with or without the ``Bearer`` scheme.

    Raises
    ------
    InvalidTokenError
        If the header is missing or empty.
    """
    if not header_value or not header_value.strip():
        raise InvalidTokenError("no Authorization header")
    scheme, _, rest = header_value.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else header_value.strip()


def authorizer_claims(payload: dict[str, Any]) -> dict[str, str]:
    """A verified payload's claims, as API Gateway's Cognito authorizer passes them on."""
    claims: dict[str, str] = {}
    for name, value in payload.items():
        if name in ("iat", "exp", "auth_time") and isinstance(value, int | float):
            moment = datetime.fromtimestamp(value, tz=UTC)
            claims[name] = moment.strftime(_CLAIM_TIME_FORMAT)
        elif isinstance(value, list):
            claims[name] = ",".join(str(item) for item in value)
        elif isinstance(value, str):
            claims[name] = value
        else:
            claims[name] = json.dumps(value)
    return claims


def auth_header(sub: str, *, admin: bool = False, secret: bytes = LOCAL_SECRET) -> dict[str, str]:
    """``{"Authorization": "Bearer ..."}`` for ``sub``, in the admin group if ``admin``."""
    groups = (ADMIN_GROUP,) if admin else ()
    return {"Authorization": f"Bearer {mint_token(sub, groups, secret=secret)}"}
