import os

import pytest
from cryptography.exceptions import InvalidTag

from shared.secrets import generate_password, seal, unseal

KEY = os.urandom(32)


def test_seal_round_trip_and_hides_the_values():
    values = {"PASSWORD": "pa55-word", "GITHUB_TOKEN": "ghp_supersecret"}
    sealed = seal(KEY, "env-0123456789abcdef", values)
    assert "pa55-word" not in sealed and "ghp_supersecret" not in sealed
    assert unseal(KEY, "env-0123456789abcdef", sealed) == values
    assert seal(KEY, "env-0123456789abcdef", values) != sealed  # fresh nonce every time


def test_sealed_values_are_bound_to_their_environment_and_key():
    sealed = seal(KEY, "env-aaaaaaaaaaaaaaaa", {"PASSWORD": "x"})
    with pytest.raises(InvalidTag):
        unseal(KEY, "env-bbbbbbbbbbbbbbbb", sealed)
    with pytest.raises(InvalidTag):
        unseal(os.urandom(32), "env-aaaaaaaaaaaaaaaa", sealed)
    with pytest.raises(ValueError, match="version"):
        unseal(KEY, "env-aaaaaaaaaaaaaaaa", "v0." + sealed.partition(".")[2])


def test_passwords_are_long_and_distinct():
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) >= 24 for p in passwords)
