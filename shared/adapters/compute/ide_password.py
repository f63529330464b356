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
    """An argon2id hash in the PHC string format code-server's argon2 module verifies, at OWASP's
    minimum cost (cheatsheetseries.owasp.org, Password Storage Cheat Sheet: m=19 MiB, t=2, p=1).
    The password is 144 random bits (shared/secrets.generate_password): no guess finds it whatever
    the cost, and argon2-cffi's default (64 MiB, t=3, p=4: about 0.3 s of CPU here) would only
    delay every start, and every login, which verifies at the same cost."""
    from argon2 import PasswordHasher  # lazy: only a compute backend starting code-server needs it

    return str(PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1).hash(password))
