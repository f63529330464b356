"""Errors of the core. A DomainError is a refusal a caller can act on (its message is for the user,
`details` names the fields); it carries no HTTP status: api/errors.py maps each kind to one."""

from __future__ import annotations

from typing import Any


def shown(text: str, limit: int) -> str:
    """Caller input as an error message shows it: at most `limit` characters, then "...", so an
    answer is never many times its request."""
    return text if len(text) <= limit else f"{text[:limit]}..."


class DomainError(Exception):
    def __init__(self, message: str, details: Any = None):
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(DomainError):
    """The request is malformed or asks for what cannot be had."""


class PayloadTooLarge(DomainError):
    """A body larger than the API takes."""


class LengthRequired(DomainError):
    """A body sent without a declared length (chunked), which never reaches the function."""


class UnsupportedMediaType(DomainError):
    """A body in a format the route does not take (it takes JSON)."""


class RateLimited(DomainError):
    """Over a rate limit; `retry_after` is how many seconds until the next request may go."""

    def __init__(self, message: str, details: Any = None, *, retry_after: int = 1) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after


class Unauthorized(DomainError):
    """No valid credential: the caller is not known."""

    def __init__(self, message: str = "a valid bearer token is required", details: Any = None):
        super().__init__(message, details)


class QuotaExceeded(DomainError):
    """The owner is at a limit; the change would grow past it."""


class BudgetExceeded(DomainError):
    """The owner's spend this month (and the next hour of what is asked) would pass the budget."""


class NotFound(DomainError):
    """Unknown, deleted, or another owner's (indistinguishable on purpose)."""


class InvalidState(DomainError):
    """The lifecycle does not allow this now (e.g. start while stopping)."""


class Conflict(DomainError):
    """The request contradicts an earlier one (an Idempotency-Key reused) or lost too many races."""


class Unavailable(DomainError):
    """A service the request needs cannot be reached now; trying again may work."""


class ConcurrencyConflict(Exception):
    """A write lost an optimistic-concurrency race (ETag mismatch or the row already exists)."""


class BackendError(Exception):
    """A compute or workspace backend failed. `transient` failures are worth retrying."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


class TransientBackendError(BackendError):
    def __init__(self, message: str):
        super().__init__(message, transient=True)


class PermanentBackendError(BackendError):
    def __init__(self, message: str):
        super().__init__(message, transient=False)


class AuthorizationRefused(PermanentBackendError):
    """Azure refused the app's identity (no token, or 403 AuthorizationFailed). Right after a
    deployment role assignments may still be propagating, so the orchestration waits and tries
    again for a bounded time before it gives up with this reason."""
