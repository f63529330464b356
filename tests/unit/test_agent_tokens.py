"""shared.agent_tokens: mint, parse, digest and matches, including tampered and hostile input."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from shared import agent_tokens
from shared.agent_tokens import AgentClaim, digest, matches, mint, parse

ENV = "env-0123456789abcdef"
OTHER_ENV = "env-fedcba9876543210"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_round_trip_names_owner_and_environment() -> None:
    token = mint("alice", ENV)
    assert parse(token) == AgentClaim(owner="alice", environment_id=ENV)
    assert matches(token, digest(token))
    prefix, owner, environment, random_part = token.split(".")
    assert (prefix, base64.urlsafe_b64decode(owner + "=="), environment) == ("d8a", b"alice", ENV)
    assert len(base64.urlsafe_b64decode(random_part + "=")) == 32
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)  # safe in a header and in curl's config syntax


def test_tokens_are_random_and_the_digest_is_sha256_hex() -> None:
    first, second = mint("alice", ENV), mint("alice", ENV)
    assert first != second
    assert not matches(first, digest(second))
    assert digest(first) == hashlib.sha256(first.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest(first))
    assert first not in repr(parse(first))  # the claim never carries the secret part


@pytest.mark.parametrize(
    "owner",
    [
        "auth0|5f1a2b3c",
        "user@example.com",
        "Ünïcødé 用户 🙂",
        "a.b.c",  # dots in the owner cannot split the token wrongly: they are encoded
        "x" * agent_tokens.MAX_OWNER_LENGTH,
        "🙂" * agent_tokens.MAX_OWNER_LENGTH,  # the longest owner in bytes
        "-",
    ],
)
def test_owners_with_odd_characters_round_trip(owner: str) -> None:
    token = mint(owner, ENV)
    assert len(token) <= agent_tokens.MAX_TOKEN_LENGTH
    assert parse(token) == AgentClaim(owner=owner, environment_id=ENV)
    assert matches(token, digest(token))


@pytest.mark.parametrize("owner", ["", "x" * (agent_tokens.MAX_OWNER_LENGTH + 1), "bad\nline", "tab\there"])
def test_mint_refuses_owners_the_api_would_never_have(owner: str) -> None:
    with pytest.raises(ValueError, match="owner"):
        mint(owner, ENV)


@pytest.mark.parametrize("environment_id", ["", "env-XYZ", "env-0123456789ABCDEF", "../env", f"{ENV}.x"])
def test_mint_refuses_bad_environment_ids(environment_id: str) -> None:
    with pytest.raises(ValueError, match="environment_id"):
        mint("alice", environment_id)


def test_tampering_with_any_part_breaks_the_match() -> None:
    token = mint("alice", ENV)
    stored = digest(token)
    prefix, owner, environment, random_part = token.split(".")
    flipped = random_part[:-2] + ("A" if random_part[-2] != "A" else "B") + random_part[-1]
    tampered = [
        f"{prefix}.{b64(b'mallory')}.{environment}.{random_part}",  # another owner
        f"{prefix}.{owner}.{OTHER_ENV}.{random_part}",  # another environment
        f"{prefix}.{owner}.{environment}.{flipped}",  # another secret
    ]
    for candidate in tampered:
        assert parse(candidate) is not None  # still well-formed...
        assert not matches(candidate, stored)  # ...but not the token the record knows


def test_a_token_for_another_environment_claims_that_environment() -> None:
    # The API compares the claim with the route's id and the digest with that record's: both fail.
    token = mint("alice", OTHER_ENV)
    claim = parse(token)
    assert claim is not None and claim.environment_id != ENV
    assert not matches(token, digest(mint("alice", ENV)))


def test_a_non_canonical_spelling_of_the_same_bytes_is_refused() -> None:
    token = mint("ab", ENV)  # b"ab" encodes to 3 characters whose last has 2 unused bits
    prefix, owner, environment, random_part = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other_spelling = owner[:-1] + alphabet[alphabet.index(owner[-1]) + 1]
    assert base64.urlsafe_b64decode(other_spelling + "=") == b"ab"  # same bytes, another string
    assert parse(f"{prefix}.{other_spelling}.{environment}.{random_part}") is None
    last = random_part[-1]  # 32 bytes leave 2 unused bits in the last character too
    odd_random = random_part[:-1] + alphabet[alphabet.index(last) + 1]
    assert base64.urlsafe_b64decode(odd_random + "=") == base64.urlsafe_b64decode(random_part + "=")
    assert parse(f"{prefix}.{owner}.{environment}.{odd_random}") is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "d8a",
        "d8a...",
        "Bearer d8a.YWxpY2U.env-0123456789abcdef." + "A" * 43,
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",  # a JWT
        "d8b.YWxpY2U.env-0123456789abcdef." + "A" * 43,  # another prefix
        "d8a.YWxpY2U.env-0123456789abcdef." + "A" * 42,  # secret too short
        "d8a.YWxpY2U.env-0123456789abcdef." + "A" * 44,  # secret too long
        "d8a.YWxpY2U.env-0123456789ABCDEF." + "A" * 43,  # id in upper case
        "d8a.YWxpY2U=.env-0123456789abcdef." + "A" * 43,  # padding
        "d8a.YWxp+2U.env-0123456789abcdef." + "A" * 43,  # base64 (not url) alphabet
        "d8a.YWxpY2U.env-0123456789abcdef." + "A" * 42 + "\n",  # trailing newline
        "d8a.YWxpY2U.env-0123456789abcdef." + "A" * 43 + "\n",
        " d8a.YWxpY2U.env-0123456789abcdef." + "A" * 43,
        "d8a.Y.env-0123456789abcdef." + "A" * 43,  # impossible base64 length
        "d8a." + b64(b"\xff\xfe") + ".env-0123456789abcdef." + "A" * 43,  # not UTF-8
        "d8a." + b64(b"a\nb") + ".env-0123456789abcdef." + "A" * 43,  # owner not printable
        "d8a..env-0123456789abcdef." + "A" * 43,  # no owner
        "d8a.YWxpY2U.env-0123456789abcdef.env-0123456789abcdef." + "A" * 43,
        "d8a.YWxpY2U.env-0123456789abcdef." + "Ä" * 43,
    ],
)
def test_garbage_does_not_parse_or_match(garbage: str) -> None:
    assert parse(garbage) is None
    assert not matches(garbage, digest(garbage))


def test_very_long_input_is_refused_before_any_decoding() -> None:
    owner = b64(b"x" * 4000)
    huge = f"d8a.{owner}.{ENV}.{'A' * 43}"
    assert len(huge) > agent_tokens.MAX_TOKEN_LENGTH
    assert parse(huge) is None
    assert parse("d8a." + "A" * 10_000_000) is None
    assert not matches(huge, digest(huge))


def test_matches_refuses_missing_or_corrupt_stored_digests() -> None:
    token = mint("alice", ENV)
    assert not matches(token, None)
    assert not matches(token, "")
    assert not matches(token, digest(token).upper())
    assert not matches(token, "é" * 64)  # non-ASCII: a mismatch, not a TypeError


def test_non_string_input_is_refused() -> None:
    assert parse(None) is None  # type: ignore[arg-type]
    assert parse(b"d8a.x") is None  # type: ignore[arg-type]


def test_activity_url_and_variable_names() -> None:
    assert agent_tokens.AGENT_TOKEN_VARIABLE == "DEV8_AGENT_TOKEN"
    assert agent_tokens.ACTIVITY_URL_VARIABLE == "DEV8_ACTIVITY_URL"
    assert (
        agent_tokens.activity_url("https://api.dev8.example/", ENV)
        == f"https://api.dev8.example/api/v1/environments/{ENV}/activity"
    )
    with pytest.raises(ValueError):
        agent_tokens.activity_url("https://api.dev8.example", "env-../x")
