"""The documented error format: each domain error kind has one HTTP status and a stable code."""

from __future__ import annotations

from typing import Any

from shared.errors import (
    BudgetExceeded,
    Conflict,
    DomainError,
    InvalidState,
    LengthRequired,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)

STATUS: dict[type[DomainError], tuple[int, str]] = {
    ValidationFailed: (400, "VALIDATION_ERROR"),
    Unauthorized: (401, "UNAUTHORIZED"),
    QuotaExceeded: (403, "QUOTA_EXCEEDED"),
    BudgetExceeded: (403, "BUDGET_EXCEEDED"),
    NotFound: (404, "NOT_FOUND"),
    InvalidState: (409, "INVALID_STATE"),
    Conflict: (409, "CONFLICT"),
    LengthRequired: (411, "LENGTH_REQUIRED"),
    PayloadTooLarge: (413, "PAYLOAD_TOO_LARGE"),  # the local host's own code for a body past its limit
    UnsupportedMediaType: (415, "UNSUPPORTED_MEDIA_TYPE"),
    RateLimited: (429, "RATE_LIMITED"),
    Unavailable: (503, "UNAVAILABLE"),
}
INTERNAL = (500, "INTERNAL")
# A 401 says how to authenticate (RFC 6750 section 3).
HEADERS: dict[type[DomainError], dict[str, str]] = {Unauthorized: {"WWW-Authenticate": 'Bearer realm="dev8"'}}


def headers_of(error: DomainError) -> dict[str, str] | None:
    """The headers an error answer carries: how to authenticate, or when to try again."""
    if isinstance(error, RateLimited):
        return {"Retry-After": str(error.retry_after)}
    return HEADERS.get(type(error))


def status_of(error: DomainError) -> tuple[int, str]:
    """The HTTP status and code of an error (the nearest mapped kind it is)."""
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return INTERNAL


def body(message: str, details: Any, code: str) -> dict[str, Any]:
    return {"error": message, "details": details, "code": code}
