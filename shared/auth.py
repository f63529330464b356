"""Bearer-token (JWT) validation: HS256 with a shared secret, or RS256/ES256 keys from a JWKS endpoint.

Every bad token is `Unauthorized` (401) with a short message that never repeats the token; a JWKS
endpoint that cannot be reached is `Unavailable` (503), since the caller's token may well be fine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKSetError, PyJWTError
from jwt.types import Options

from shared.errors import Unauthorized, Unavailable
from shared.recent import Recent
from shared.settings import Settings, SettingsError

HMAC_ALGORITHMS = ("HS256",)
# Asymmetric only: an HS256 token "signed" with a published public key must never verify.
JWKS_ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 30
MIN_SECRET_BYTES = 32
MAX_SUBJECT_LENGTH = 256
MAX_TOKEN_LENGTH = 8192  # far above any real token; bounds the work an anonymous caller can cause
BUDGET_CLAIM = "dev8_monthly_budget"  # a per-user monthly budget in USD, set by the identity provider
JWKS_CACHE_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 5.0
# A token verified once is taken on trust for at most a minute (never past its own expiry): a
# dashboard sends the same token with every request, and verifying it again found the same
# caller. A signing key removed from the JWKS stops working no later than it does anyway (the
# key set itself is cached for JWKS_CACHE_SECONDS). Only tokens that verified are kept.
VERIFIED_SECONDS = 60
VERIFIED_TOKENS = 1024  # least recently used first out: at most MAX_TOKEN_LENGTH bytes each


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. Only what the API needs: never the raw token."""

    subject: str
    issuer: str | None
    expires_at: datetime
    monthly_budget: float | None = None  # the `dev8_monthly_budget` claim (USD), when the IdP sets one


class TokenVerifier:
    """Verifies `Authorization: Bearer <jwt>` headers. Build one per process and share it."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway_seconds: int = LEEWAY_SECONDS,
        jwks_timeout_seconds: float = JWKS_TIMEOUT_SECONDS,
    ) -> None:
        if (secret is None) == (jwks_url is None):
            raise SettingsError("set exactly one of DEV8_JWT_SECRET and DEV8_JWT_JWKS_URL")
        if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(
                f"setting DEV8_JWT_SECRET is invalid: must be at least {MIN_SECRET_BYTES} bytes"
            )
        self._secret = secret
        self._jwks: PyJWKClient | None = None
        if jwks_url is not None:
            try:
                # One client per verifier: its JWK-set cache spares the endpoint a fetch per request.
                # Per-kid caching (cache_keys) stays off: it never expires, so a key removed from
                # the JWKS would keep verifying tokens.
                self._jwks = PyJWKClient(
                    jwks_url, cache_jwk_set=True, lifespan=JWKS_CACHE_SECONDS, timeout=jwks_timeout_seconds
                )
            except PyJWKClientError as exc:
                raise SettingsError(f"setting DEV8_JWT_JWKS_URL is invalid: {exc}") from None
        self._algorithms = list(JWKS_ALGORITHMS if self._jwks is not None else HMAC_ALGORITHMS)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        required = ["exp", "iat", "sub"]
        required += ["iss"] if issuer is not None else []
        required += ["aud"] if audience is not None else []
        self._options: Options = {
            "require": required,
            # Without a configured audience a token's `aud` is not ours to judge, so it is not refused.
            "verify_aud": audience is not None,
            "verify_iss": issuer is not None,
            "enforce_minimum_key_length": True,
        }
        self._verified = _Verified()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        return cls(
            secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret is not None else None,
            jwks_url=settings.jwt_jwks_url or None,
            issuer=settings.jwt_issuer or None,
            audience=settings.jwt_audience or None,
        )

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self._algorithms)

    def verify(self, authorization_header: str | None) -> Principal:
        token = _bearer_token(authorization_header)
        now = time.time()  # PyJWT's clock: exp and nbf are judged against it
        known = self._verified.get(token, now)
        if known is not None:
            return known
        key = self._key_for(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                options=self._options,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the bearer token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the bearer token is not valid yet") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the bearer token has the wrong issuer") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the bearer token has the wrong audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"the bearer token lacks the {exc.claim!r} claim") from None
        except (PyJWTError, ValueError, TypeError):
            raise Unauthorized("the bearer token is invalid") from None
        principal = _principal(claims)
        # Until it would expire for PyJWT too: exp is accepted up to the leeway past it.
        self._verified.put(token, principal, min(now + VERIFIED_SECONDS, int(claims["exp"]) + self._leeway))
        return principal

    def may_fetch(self, authorization_header: str | None) -> bool:
        """Whether verifying this header may call the JWKS endpoint (no key set cached, or none
        with the token's kid): an event loop verifies such a header on a thread, any other inline."""
        if self._jwks is None:
            return False  # a shared secret: nothing to fetch
        if self._remembered(authorization_header):
            return False
        cache = self._jwks.jwk_set_cache
        cached = cache.get() if cache is not None else None
        if cached is None:
            return True
        try:
            kid = jwt.get_unverified_header(_bearer_token(authorization_header)).get("kid")
        except (Unauthorized, PyJWTError, ValueError, TypeError):
            return False  # refused before any key is looked up
        return isinstance(kid, str) and PyJWKClient.match_kid(cached.keys, kid) is None  # else refused

    def _remembered(self, authorization_header: str | None) -> bool:
        try:
            return self._verified.get(_bearer_token(authorization_header), time.time()) is not None
        except Unauthorized:
            return False

    def _key_for(self, token: str) -> str | PyJWK:
        if self._jwks is None:
            assert self._secret is not None
            return self._secret
        kid = _checked_header(token, self._algorithms)
        try:
            keys = self._jwks.get_signing_keys()  # served from the cache after the first fetch
        except (PyJWKClientError, PyJWKSetError, ValueError):
            raise Unavailable("the token signing keys cannot be fetched; try again shortly") from None
        key = PyJWKClient.match_kid(keys, kid)
        if key is not None:
            return key
        try:
            # Unknown kid: perhaps a rotated key. The client refetches at most once per cooldown.
            return self._jwks.get_signing_key(kid)
        except PyJWKClientConnectionError:
            raise Unavailable("the token signing keys cannot be fetched; try again shortly") from None
        except (PyJWKClientError, PyJWKSetError, ValueError):
            raise Unauthorized("the bearer token is signed with an unknown key") from None


class _Verified:
    """Tokens that verified, each with its caller, until a time (least recently used evicted)."""

    def __init__(self) -> None:
        self._tokens: Recent[str, tuple[Principal, float]] = Recent(VERIFIED_TOKENS)

    def get(self, token: str, now: float) -> Principal | None:
        found = self._tokens.get(token)
        return found[0] if found is not None and now < found[1] else None  # past it: verified again

    def put(self, token: str, principal: Principal, until: float) -> None:
        self._tokens.put(token, (principal, until))


def _bearer_token(header: str | None) -> str:
    if not header or not header.strip():
        raise Unauthorized("a bearer token is required")
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    token = parts[1]
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise Unauthorized("the bearer token is malformed")
    return token


def _checked_header(token: str, algorithms: list[str]) -> str:
    """Refuse a bad alg or a missing kid before any key lookup, so junk never reaches the JWKS endpoint."""
    try:
        header = jwt.get_unverified_header(token)
    except (PyJWTError, ValueError, TypeError):
        raise Unauthorized("the bearer token is malformed") from None
    if header.get("alg") not in algorithms:
        raise Unauthorized("the bearer token uses an algorithm that is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthorized("the bearer token names no signing key")
    return kid


def _principal(claims: dict[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise Unauthorized("the bearer token has an empty subject")
    if len(subject) > MAX_SUBJECT_LENGTH or not subject.isprintable():
        raise Unauthorized("the bearer token has an invalid subject")
    issuer = claims.get("iss")
    try:
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (OverflowError, OSError, ValueError):  # far past what a datetime holds (e.g. 1e300)
        raise Unauthorized("the bearer token has an invalid expiry") from None
    budget = claims.get(BUDGET_CLAIM)
    # 0 is a budget (the user may spend nothing), not its absence; anything but a number in range
    # is no claim at all, and the deployment's budget applies.
    if not (isinstance(budget, int | float) and not isinstance(budget, bool) and 0 <= budget <= 1e6):
        budget = None
    return Principal(
        subject=subject,
        issuer=issuer if isinstance(issuer, str) else None,
        expires_at=expires_at,
        monthly_budget=float(budget) if budget is not None else None,  # else the deployment's budget
    )


def mint_token(
    secret: str,
    sub: str,
    issuer: str | None = None,
    audience: str | None = None,
    ttl_seconds: int = 3600,
    now: datetime | None = None,
) -> str:
    """An HS256 token the verifier accepts, for the local dev host and tests (never used in Azure)."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret must be at least {MIN_SECRET_BYTES} bytes")
    if not sub or len(sub) > MAX_SUBJECT_LENGTH:
        raise ValueError(f"sub must be 1-{MAX_SUBJECT_LENGTH} characters")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    issued = now if now is not None else datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": sub,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_seconds)).timestamp()),
    }
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
