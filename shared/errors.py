"""API errors: each maps to an HTTP status and a stable code in the documented error format."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the API reports as `{"error", "details", "code"}`."""

    status: int = 500
    code: str = "INTERNAL"

    def __init__(self, message: str, details: Any = None, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "details": self.details, "code": self.code}


class ValidationFailed(ApiError):
    status, code = 400, "VALIDATION_ERROR"


class Unauthorized(ApiError):
    status, code = 401, "UNAUTHORIZED"

    def __init__(self, message: str = "a valid bearer token is required", details: Any = None):
        super().__init__(message, details, headers={"WWW-Authenticate": 'Bearer realm="dev8"'})


class Forbidden(ApiError):
    status, code = 403, "FORBIDDEN"


class QuotaExceeded(ApiError):
    status, code = 403, "QUOTA_EXCEEDED"


class NotFound(ApiError):
    status, code = 404, "NOT_FOUND"


class InvalidState(ApiError):
    status, code = 409, "INVALID_STATE"


class Conflict(ApiError):
    status, code = 409, "CONFLICT"


class RateLimited(ApiError):
    status, code = 429, "RATE_LIMITED"


class Unavailable(ApiError):
    status, code = 503, "UNAVAILABLE"


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
