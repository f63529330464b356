"""Agent tokens: the credential an environment's activity agent uses to report activity.

A token is minted when an environment is provisioned, handed to the workspace as a secure value
(DEV8_AGENT_TOKEN, beside DEV8_ACTIVITY_URL) and stored only as `digest(token)` on the record
(`Environment.agent_token_hash`). It is valid for that one environment's activity route and its
snapshot agent's report route only.

Shape: `d8a.<base64url(owner)>.<environment id>.<32 random bytes, base64url>` (no padding). The
owner and environment id are in clear so that the API finds the record with one point read
(PartitionKey = owner, RowKey = environment) before it compares digests; they are not secret and
not trusted: a token whose owner or id was changed no longer matches the digest stored on the
record it now names. Base64url and the id have no '.', so the three dots split it unambiguously,
and a JWT (two dots) never parses as one.

The API must check, in this order: `parse` succeeds, the claim's environment id equals the route's,
the record exists for the claim's owner, `matches(token, record.agent_token_hash)`.

Pure: no I/O, no clock; `mint` reads the OS random source only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from shared.domain.environment import ENVIRONMENT_ID

# The names of the variables the workspace gets (the token as a secure value; the URL in clear).
AGENT_TOKEN_VARIABLE = "DEV8_AGENT_TOKEN"  # noqa: S105 - a variable name, not a token
ACTIVITY_URL_VARIABLE = "DEV8_ACTIVITY_URL"
REPORT_URL_VARIABLE = "DEV8_SNAPSHOT_REPORT_URL"

PREFIX = "d8a"
SECRET_BYTES = 32  # 256 bits from the OS CSPRNG
MAX_OWNER_LENGTH = 256  # as shared.auth bounds a JWT `sub`
# 256 characters of up to 4 UTF-8 bytes each, base64url-encoded, plus the rest: about 1,450.
MAX_TOKEN_LENGTH = 1600
_B64URL = r"[A-Za-z0-9_-]"
_SHAPE = re.compile(
    rf"^{PREFIX}\.({_B64URL}{{2,{MAX_TOKEN_LENGTH}}})\.(env-[0-9a-f]{{16}})\.({_B64URL}{{43}})$"
)


@dataclass(frozen=True, slots=True)
class AgentClaim:
    """Who a well-formed token says it belongs to. Not proof: check `matches` against the record."""

    owner: str
    environment_id: str


def mint(owner: str, environment_id: str) -> str:
    """A new token for one environment. Store only `digest(token)`; hand the token to the workspace."""
    if not _valid_owner(owner):
        raise ValueError(f"owner must be 1-{MAX_OWNER_LENGTH} printable characters")
    if not ENVIRONMENT_ID.fullmatch(environment_id):
        raise ValueError("environment_id must look like env-<16 hex digits>")
    random_part = _b64encode(secrets.token_bytes(SECRET_BYTES))
    return f"{PREFIX}.{_b64encode(owner.encode())}.{environment_id}.{random_part}"


def parse(token: str) -> AgentClaim | None:
    """The owner and environment a well-formed token names; None for anything else (never raises)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    # fullmatch (not $, which accepts a trailing newline) on a string already bounded in length.
    shape = _SHAPE.fullmatch(token)
    if shape is None:
        return None
    encoded_owner, environment_id, random_part = shape.groups()
    raw_owner = _b64decode(encoded_owner)
    if raw_owner is None or _b64decode(random_part) is None:
        return None
    try:
        owner = raw_owner.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
    if not _valid_owner(owner):
        return None
    return AgentClaim(owner=owner, environment_id=environment_id)


def digest(token: str) -> str:
    """What the record stores: SHA-256 of the token, hex.

    Unkeyed and fast on purpose. The token carries 256 bits from the CSPRNG, so the digest of a
    leaked row cannot be reversed or guessed: there is no dictionary to try, which is what a key
    (pepper) or a slow KDF would defend against for human passwords. A slow hash would only add
    CPU to every call of a route that anonymous callers can reach.
    """
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


def matches(token: str, stored_digest: str | None) -> bool:
    """True when `token` is the one whose digest the record stores (constant-time comparison)."""
    if not stored_digest or parse(token) is None:
        return False
    # Bytes, so that a corrupt non-ASCII stored value is a mismatch rather than a TypeError.
    return hmac.compare_digest(digest(token).encode(), stored_digest.encode("utf-8", errors="replace"))


def activity_url(api_base_url: str, environment_id: str) -> str:
    """DEV8_ACTIVITY_URL for an environment, from the API's public base URL (scheme and host)."""
    if not ENVIRONMENT_ID.fullmatch(environment_id):
        raise ValueError("environment_id must look like env-<16 hex digits>")
    return f"{api_base_url.rstrip('/')}/api/v1/environments/{environment_id}/activity"


def snapshot_report_url(api_base_url: str, environment_id: str) -> str:
    """DEV8_SNAPSHOT_REPORT_URL: where the workspace's snapshot agent reports its snapshots."""
    return activity_url(api_base_url, environment_id).removesuffix("/activity") + "/snapshots/report"


def _valid_owner(owner: str) -> bool:
    return isinstance(owner, str) and 0 < len(owner) <= MAX_OWNER_LENGTH and owner.isprintable()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Decode unpadded base64url; None unless `text` is the one canonical encoding of its bytes
    (unused low bits set would give a second spelling of the same token)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64encode(raw) == text else None
