"""The IDE password as code-server is given it, on every backend: an argon2 hash in its
environment's HASHED_PASSWORD, never the plain value.

With the hash, code-server checks a login against it once and then compares each request's
session cookie with it. Given a plain PASSWORD instead, it sets the cookie to a fresh argon2 hash
and verifies that hash with argon2 on every authenticated request (code-server 4.x,
src/node/util.ts isCookieValid): each of the workbench's files and sockets pays one.
"""

from __future__ import annotations

VARIABLE = "HASHED_PASSWORD"


def hashed(password: str) -> str:
    """An argon2id hash in the PHC string format code-server's argon2 module verifies."""
    from argon2 import PasswordHasher  # lazy: only a compute backend starting code-server needs it

    return str(PasswordHasher().hash(password))
