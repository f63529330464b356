"""Per-environment secrets: generated passwords and sealing (AES-256-GCM) for storage at rest.

A sealed value is bound to its environment id, so a ciphertext copied onto another record
does not open there.
"""

from __future__ import annotations

import base64
import json
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PASSWORD_KEY = "PASSWORD"  # noqa: S105 - the name of the sealed value, not a password
# The workspace snapshot repository's password: made at create, handed only to the workspace.
SNAPSHOT_PASSWORD_KEY = "DEV8_SNAPSHOT_PASSWORD"  # noqa: S105 - a name, not a password
_NONCE_BYTES = 12
_VERSION = "v1"


def generate_password() -> str:
    """A 24-character URL-safe password (144 bits)."""
    return secrets.token_urlsafe(18)


def seal(key: bytes, environment_id: str, values: dict[str, str]) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = json.dumps(values, separators=(",", ":"), sort_keys=True).encode()
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, environment_id.encode())
    return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + ciphertext).decode()}"


def unseal(key: bytes, environment_id: str, sealed: str) -> dict[str, str]:
    version, _, payload = sealed.partition(".")
    if version != _VERSION:
        raise ValueError(f"unknown sealed-secrets version {version!r}")
    raw = base64.urlsafe_b64decode(payload)
    plaintext = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], environment_id.encode())
    values = json.loads(plaintext)
    if not isinstance(values, dict):
        raise ValueError("sealed secrets are not a mapping")
    return {str(name): str(value) for name, value in values.items()}
