"""JWT validation: every refusal is a 401 with WWW-Authenticate: Bearer; JWKS from a real local server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from api.errors import HEADERS, status_of
from shared import auth as auth_module
from shared.auth import Principal, TokenVerifier, mint_token
from shared.errors import Unauthorized, Unavailable
from shared.settings import SettingsError, load_settings

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
OTHER_SECRET = "another-secret-that-is-also-long-enough-9876543210"
ISSUER = "https://issuer.test"
AUDIENCE = "dev8-api"


def now() -> int:
    return int(time.time())


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 600}
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def hs256(payload: dict[str, Any], secret: str = SECRET, **kwargs: Any) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", **kwargs)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], sign: Any = None) -> str:
    """A token built without PyJWT, for the attacks PyJWT refuses to encode."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64url(signature)}"


def assert_unauthorized(verifier: TokenVerifier, header: str | None) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(header)
    error = caught.value
    assert status_of(error) == (401, "UNAUTHORIZED")
    assert HEADERS[type(error)]["WWW-Authenticate"].startswith("Bearer")
    for part in (header or "").split()[1:]:  # whatever was sent as the token is never echoed
        assert part not in error.message
        assert part not in str(error)
    return error


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(secret=SECRET, issuer=ISSUER, audience=AUDIENCE)


# --- HS256: refusals ----------------------------------------------------------------------------


def test_missing_header_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, None)


def test_empty_header_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, "   ")


def test_other_scheme_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Basic {hs256(claims())}")


def test_bearer_without_token_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, "Bearer")


def test_bearer_with_extra_parts_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Bearer {hs256(claims())} extra")


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "a.b", "....", "x" * 9000])
def test_garbage_token_is_refused(verifier: TokenVerifier, garbage: str) -> None:
    assert_unauthorized(verifier, f"Bearer {garbage}")


def test_expired_token_is_refused(verifier: TokenVerifier) -> None:
    error = assert_unauthorized(verifier, f"Bearer {hs256(claims(iat=now() - 3600, exp=now() - 300))}")
    assert "expired" in error.message


@pytest.mark.parametrize("exp", [1e300, 10**20, -(10**20)])
def test_an_expiry_no_clock_can_hold_is_refused_not_a_crash(verifier: TokenVerifier, exp: float) -> None:
    """Issue 12: a validly signed token with exp 1e300 used to overflow into a 500."""
    assert_unauthorized(verifier, f"Bearer {hs256(claims(exp=exp))}")


def test_token_not_yet_valid_by_nbf_is_refused(verifier: TokenVerifier) -> None:
    error = assert_unauthorized(verifier, f"Bearer {hs256(claims(nbf=now() + 300))}")
    assert "not valid yet" in error.message


def test_token_issued_in_the_future_is_refused(verifier: TokenVerifier) -> None:
    error = assert_unauthorized(verifier, f"Bearer {hs256(claims(iat=now() + 300, exp=now() + 900))}")
    assert "not valid yet" in error.message


def test_wrong_issuer_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Bearer {hs256(claims(iss='https://evil.test'))}")


def test_missing_issuer_is_refused_when_configured(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Bearer {hs256(claims(iss=None))}")


def test_wrong_audience_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Bearer {hs256(claims(aud='someone-else'))}")


def test_missing_audience_is_refused_when_configured(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Bearer {hs256(claims(aud=None))}")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(verifier: TokenVerifier, alg: str) -> None:
    assert_unauthorized(verifier, f"Bearer {hand_made({'alg': alg, 'typ': 'JWT'}, claims())}")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_hs512_token_is_refused_in_hs256_mode(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Bearer {jwt.encode(claims(), SECRET, algorithm='HS512')}")


def test_rs256_token_is_refused_in_hs256_mode(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    assert_unauthorized(verifier, f"Bearer {jwt.encode(claims(), rsa_key, algorithm='RS256')}")


def test_wrong_secret_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Bearer {hs256(claims(), OTHER_SECRET)}")


def test_tampered_payload_is_refused(verifier: TokenVerifier) -> None:
    header, _, signature = hs256(claims(sub="user-1")).split(".")
    forged = b64url(json.dumps(claims(sub="admin")).encode())
    assert_unauthorized(verifier, f"Bearer {header}.{forged}.{signature}")


def test_missing_sub_is_refused(verifier: TokenVerifier) -> None:
    error = assert_unauthorized(verifier, f"Bearer {hs256(claims(sub=None))}")
    assert "sub" in error.message


@pytest.mark.parametrize("subject", ["", "   ", "x" * 257, "bad\nsubject"])
def test_unusable_sub_is_refused(verifier: TokenVerifier, subject: str) -> None:
    assert_unauthorized(verifier, f"Bearer {hs256(claims(sub=subject))}")


def test_non_string_sub_is_refused(verifier: TokenVerifier) -> None:
    token = hand_made(
        {"alg": "HS256", "typ": "JWT"},
        claims(sub=12345),
        lambda data: hmac.new(SECRET.encode(), data, hashlib.sha256).digest(),
    )
    assert_unauthorized(verifier, f"Bearer {token}")


def test_missing_exp_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Bearer {hs256(claims(exp=None))}")


def test_missing_iat_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Bearer {hs256(claims(iat=None))}")


# --- HS256: acceptance and leeway ---------------------------------------------------------------


def test_valid_hs256_token_gives_the_principal(verifier: TokenVerifier) -> None:
    expires = now() + 600
    principal = verifier.verify(f"Bearer {hs256(claims(sub='auth0|abc', exp=expires))}")
    assert principal == Principal(
        subject="auth0|abc", issuer=ISSUER, expires_at=datetime.fromtimestamp(expires, UTC)
    )
    assert {field.name for field in fields(Principal)} == {
        "subject",
        "issuer",
        "expires_at",
        "monthly_budget",
    }
    assert principal.monthly_budget is None


@pytest.mark.parametrize(
    ("claim", "budget"),
    [
        (25, 25.0),
        (0.5, 0.5),
        (0, 0.0),  # a budget of nothing, not the absence of one
        (-3, None),
        (-0.01, None),
        ("25", None),
        (True, None),
        (1e9, None),
        (None, None),
    ],
)
def test_a_monthly_budget_claim_is_taken_only_as_a_sensible_number(
    verifier: TokenVerifier, claim: object, budget: float | None
) -> None:
    token = hs256({**claims(sub="u", exp=now() + 600), "dev8_monthly_budget": claim})
    assert verifier.verify(f"Bearer {token}").monthly_budget == budget


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_scheme_is_case_insensitive(verifier: TokenVerifier, scheme: str) -> None:
    assert verifier.verify(f"{scheme} {hs256(claims())}").subject == "user-1"


def test_expired_within_leeway_is_accepted(verifier: TokenVerifier) -> None:
    token = hs256(claims(iat=now() - 600, exp=now() - 10))
    assert verifier.verify(f"Bearer {token}").subject == "user-1"


def test_expired_beyond_leeway_is_refused(verifier: TokenVerifier) -> None:
    assert_unauthorized(verifier, f"Bearer {hs256(claims(iat=now() - 600, exp=now() - 60))}")


def test_issuer_and_audience_are_optional_when_not_configured() -> None:
    plain = TokenVerifier(secret=SECRET)
    assert plain.verify(f"Bearer {hs256(claims(iss=None, aud=None))}").issuer is None
    assert plain.verify(f"Bearer {hs256(claims())}").issuer == ISSUER


def test_minted_token_is_accepted(verifier: TokenVerifier) -> None:
    token = mint_token(SECRET, "dev-user", ISSUER, AUDIENCE, ttl_seconds=120)
    assert verifier.verify(f"Bearer {token}").subject == "dev-user"


def test_minted_token_honours_now_and_ttl() -> None:
    issued = datetime(2030, 1, 1, tzinfo=UTC)
    token = mint_token(SECRET, "dev-user", None, None, ttl_seconds=60, now=issued)
    payload = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert payload == {"sub": "dev-user", "iat": int(issued.timestamp()), "exp": int(issued.timestamp()) + 60}


def test_mint_token_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        mint_token("short", "dev-user", None, None, 60)


def test_verifier_refuses_a_short_secret() -> None:
    with pytest.raises(SettingsError, match="DEV8_JWT_SECRET"):
        TokenVerifier(secret="short")


# --- settings -----------------------------------------------------------------------------------


@pytest.fixture
def base_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [name for name in os.environ if name.startswith("DEV8_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DEV8_TABLES_CONNECTION", "UseDevelopmentStorage=true")
    monkeypatch.setenv("DEV8_SECRETS_KEY", base64.b64encode(bytes(range(32))).decode())
    return monkeypatch


def test_short_secret_is_refused_at_settings_load(base_env: pytest.MonkeyPatch) -> None:
    base_env.setenv("DEV8_JWT_SECRET", "x" * 31)
    with pytest.raises(SettingsError, match="DEV8_JWT_SECRET"):
        load_settings()


def test_verifier_from_settings_uses_hs256(base_env: pytest.MonkeyPatch) -> None:
    base_env.setenv("DEV8_JWT_SECRET", SECRET)
    base_env.setenv("DEV8_JWT_ISSUER", ISSUER)
    built = TokenVerifier.from_settings(load_settings())
    assert built.algorithms == ("HS256",)
    assert built.verify(f"Bearer {hs256(claims(aud=None))}").subject == "user-1"
    assert_unauthorized(built, f"Bearer {hs256(claims(iss='https://evil.test'))}")


def test_verifier_from_settings_refuses_both_modes(base_env: pytest.MonkeyPatch) -> None:
    base_env.setenv("DEV8_JWT_SECRET", SECRET)
    base_env.setenv("DEV8_JWT_JWKS_URL", "http://127.0.0.1:1/jwks")
    with pytest.raises(SettingsError, match="only one of"):
        load_settings()  # refused at start-up, before a verifier is built


# --- JWKS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class JwksServer:
    url: str
    hits: list[str]
    body: dict[str, Any]
    status: int = 200
    delay: float = 0.0  # seconds before each answer


@pytest.fixture
def jwks(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> Iterator[JwksServer]:
    rsa_jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True) | {
        "kid": "rsa-1",
        "alg": "RS256",
        "use": "sig",
    }
    ec_jwk = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True) | {
        "kid": "ec-1",
        "alg": "ES256",
        "use": "sig",
    }
    state = JwksServer(url="", hits=[], body={"keys": [rsa_jwk, ec_jwk]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            time.sleep(state.delay)
            data = json.dumps(state.body).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def jwks_verifier(jwks: JwksServer) -> TokenVerifier:
    return TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=AUDIENCE)


def rs256(payload: dict[str, Any], key: rsa.RSAPrivateKey, kid: str = "rsa-1") -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def test_jwks_rs256_token_is_accepted(jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    assert jwks_verifier.verify(f"Bearer {rs256(claims(sub='rsa-user'), rsa_key)}").subject == "rsa-user"


def test_jwks_es256_token_is_accepted(
    jwks_verifier: TokenVerifier, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    token = jwt.encode(claims(sub="ec-user"), ec_key, algorithm="ES256", headers={"kid": "ec-1"})
    assert jwks_verifier.verify(f"Bearer {token}").subject == "ec-user"


def test_jwks_is_fetched_once_for_many_verifications(
    jwks: JwksServer,
    jwks_verifier: TokenVerifier,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    for index in range(10):
        assert (
            jwks_verifier.verify(f"Bearer {rs256(claims(sub=f'r{index}'), rsa_key)}").subject == f"r{index}"
        )
        token = jwt.encode(claims(sub=f"e{index}"), ec_key, algorithm="ES256", headers={"kid": "ec-1"})
        assert jwks_verifier.verify(f"Bearer {token}").subject == f"e{index}"
    assert len(jwks.hits) == 1


def test_jwks_hs256_signed_with_the_public_key_is_refused(
    jwks: JwksServer, jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    # The classic confusion attack: HMAC keyed with the published public key.
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
        claims(),
        lambda data: hmac.new(public_pem, data, hashlib.sha256).digest(),
    )
    assert_unauthorized(jwks_verifier, f"Bearer {token}")
    assert jwks.hits == []  # refused on its header, before any key lookup


def test_jwks_alg_none_is_refused(jwks: JwksServer, jwks_verifier: TokenVerifier) -> None:
    assert_unauthorized(jwks_verifier, f"Bearer {hand_made({'alg': 'none', 'kid': 'rsa-1'}, claims())}")
    assert jwks.hits == []


def test_jwks_rs256_header_on_an_ec_key_is_refused(
    jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    # An allowed alg, but not the alg bound to the key the kid names.
    assert_unauthorized(jwks_verifier, f"Bearer {rs256(claims(), rsa_key, kid='ec-1')}")


def test_jwks_wrong_key_is_refused(jwks_verifier: TokenVerifier) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_unauthorized(jwks_verifier, f"Bearer {rs256(claims(), stranger)}")


def test_jwks_unknown_kid_is_refused(jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    error = assert_unauthorized(jwks_verifier, f"Bearer {rs256(claims(), rsa_key, kid='rotated-away')}")
    assert "unknown key" in error.message


def test_jwks_token_without_kid_is_refused(
    jwks: JwksServer, jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert_unauthorized(jwks_verifier, f"Bearer {jwt.encode(claims(), rsa_key, algorithm='RS256')}")
    assert jwks.hits == []


def test_jwks_tampered_payload_is_refused(jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    header, _, signature = rs256(claims(), rsa_key).split(".")
    forged = b64url(json.dumps(claims(sub="admin")).encode())
    assert_unauthorized(jwks_verifier, f"Bearer {header}.{forged}.{signature}")


def test_jwks_expired_token_is_refused(jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    assert_unauthorized(jwks_verifier, f"Bearer {rs256(claims(iat=now() - 900, exp=now() - 120), rsa_key)}")


def test_jwks_endpoint_error_is_unavailable(
    jwks: JwksServer, jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks.status = 500
    with pytest.raises(Unavailable) as caught:
        jwks_verifier.verify(f"Bearer {rs256(claims(), rsa_key)}")
    assert status_of(caught.value)[0] == 503


def test_jwks_endpoint_unreachable_is_unavailable(rsa_key: rsa.RSAPrivateKey) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    verifier = TokenVerifier(jwks_url=f"http://127.0.0.1:{port}/jwks", jwks_timeout_seconds=2)
    with pytest.raises(Unavailable) as caught:
        verifier.verify(f"Bearer {rs256(claims(), rsa_key)}")
    assert status_of(caught.value) == (503, "UNAVAILABLE")


def test_jwks_verifier_from_settings(
    base_env: pytest.MonkeyPatch, jwks: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    base_env.setenv("DEV8_JWT_JWKS_URL", jwks.url)
    base_env.setenv("DEV8_JWT_AUDIENCE", AUDIENCE)
    built = TokenVerifier.from_settings(load_settings())
    assert built.algorithms == ("RS256", "ES256")
    assert built.verify(f"Bearer {rs256(claims(), rsa_key)}").subject == "user-1"
    assert_unauthorized(built, f"Bearer {hs256(claims())}")


def test_may_fetch_says_when_verifying_would_call_the_jwks_endpoint(
    jwks: JwksServer, jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    header = f"Bearer {rs256(claims(), rsa_key)}"
    assert jwks_verifier.may_fetch(header)  # no key set cached yet
    assert not jwks.hits  # asking fetches nothing
    jwks_verifier.verify(header)
    assert not jwks_verifier.may_fetch(header)  # its key is cached
    assert jwks_verifier.may_fetch(f"Bearer {rs256(claims(), rsa_key, kid='rotated-2')}")  # not in the set
    assert not jwks_verifier.may_fetch("Bearer not-a-token")  # refused before any key lookup
    assert not jwks_verifier.may_fetch(f"Bearer {jwt.encode(claims(), rsa_key, algorithm='RS256')}")  # no kid
    assert len(jwks.hits) == 1


def test_a_shared_secret_never_fetches(verifier: TokenVerifier) -> None:
    assert not verifier.may_fetch(f"Bearer {hs256(claims())}")


def test_an_event_loop_goes_on_while_a_tokens_keys_are_fetched(
    base_env: pytest.MonkeyPatch, jwks: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The GET of one environment verifies its token on the worker's event loop: a JWKS fetch
    (first request, rotated key) must not hold every other request of the process meanwhile."""
    import azure.functions as func

    from api.http import principal_of_async
    from shared import wiring

    jwks.delay = 0.3
    base_env.setenv("DEV8_JWT_JWKS_URL", jwks.url)
    base_env.setenv("DEV8_JWT_AUDIENCE", AUDIENCE)
    wiring.reset()
    token = rs256(claims(sub="loop-user"), rsa_key)
    request = func.HttpRequest(
        "GET", "http://localhost/api/v1/environments", headers={"Authorization": f"Bearer {token}"}, body=b""
    )

    async def verify_twice() -> tuple[Principal, Principal, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        first = await principal_of_async(request)  # the keys are fetched, on a thread
        during = ticks
        second = await principal_of_async(request)  # from the cache, on the loop
        ticker.cancel()
        return first, second, during

    try:
        first, second, ticks = asyncio.run(verify_twice())
    finally:
        wiring.reset()
    assert first.subject == second.subject == "loop-user"
    assert ticks >= 1  # verified inline, the fetch would have held the loop: no tick at all
    assert len(jwks.hits) == 1


# --- Tokens already verified ----------------------------------------------------------------------


class Clock:
    """shared.auth's clock, moved by hand (PyJWT keeps its own: the real one)."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(auth_module, "time", moved)
    return moved


def test_a_retired_signing_key_stops_a_token_seen_before_within_a_minute(
    jwks: JwksServer, jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    header = f"Bearer {rs256(claims(sub='seen'), rsa_key)}"
    assert jwks_verifier.verify(header).subject == "seen"
    jwks.body = {"keys": [key for key in jwks.body["keys"] if key["kid"] != "rsa-1"]}  # retired
    assert jwks_verifier._jwks is not None
    jwks_verifier._jwks.jwk_set_cache = None  # the key set's own cache has run out too
    clock.now += auth_module.VERIFIED_SECONDS - 1
    assert jwks_verifier.verify(header).subject == "seen"  # remembered: no key needed
    assert not jwks_verifier.may_fetch(header)
    clock.now += 2
    error = assert_unauthorized(jwks_verifier, header)  # verified again, against today's keys
    assert "unknown key" in error.message


def test_a_remembered_token_still_expires_on_time() -> None:
    verifier = TokenVerifier(secret=SECRET, leeway_seconds=0)
    expires = int(time.time()) + 1
    header = f"Bearer {hs256(claims(iss=None, aud=None, exp=expires))}"
    assert verifier.verify(header).subject == "user-1"
    while time.time() < expires + 0.05:
        time.sleep(0.05)
    error = assert_unauthorized(verifier, header)
    assert "expired" in error.message


def test_only_tokens_that_verified_are_remembered(verifier: TokenVerifier) -> None:
    token = hs256(claims())
    assert verifier.verify(f"Bearer {token}").subject == "user-1"
    head, payload, signature = token.split(".")
    forged_payload = b64url(json.dumps(claims(sub="someone-else")).encode())
    for forged in (f"{head}.{forged_payload}.{signature}", f"{head}.{payload}.{signature[:-2]}AA"):
        for _ in range(2):  # refused again: a refusal is never remembered as a caller
            assert_unauthorized(verifier, f"Bearer {forged}")
    assert verifier.verify(f"bearer   {token}").subject == "user-1"


def test_the_remembered_tokens_are_bounded(verifier: TokenVerifier) -> None:
    first = f"Bearer {hs256(claims(sub='first'))}"
    verifier.verify(first)
    for index in range(auth_module.VERIFIED_TOKENS):
        verifier.verify(f"Bearer {hs256(claims(sub=f'user-{index}'))}")
    remembered = verifier._verified._tokens
    assert len(remembered) == auth_module.VERIFIED_TOKENS
    assert first.split()[1] not in remembered  # the least recently used went first
    assert verifier.verify(first).subject == "first"  # and verifies as any token does
