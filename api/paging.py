"""Paging a list in a stable order: `limit` items at a time, and an opaque `next` token naming
the last item given (its creation time and id, the list's own order), so a page boundary holds
even when items are added or removed between two calls. The audit trail pages the same way, its
token naming the last event's version (the trail's order, newest first)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from shared.domain.environment import AuditEvent, Environment
from shared.errors import ValidationFailed

MAX_LIMIT = 100
MAX_TOKEN = 200  # characters; the OpenAPI document says so too
E = TypeVar("E", bound=Environment)


def _key(env: Environment) -> tuple[datetime, str]:
    return env.created_at, env.id


def token_for(env: Environment) -> str:
    return _encode([env.created_at.isoformat(), env.id])


def _encode(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decoded(token: str) -> object:
    """What `_encode` made of the token; ValidationFailed for anything else."""
    if len(token) > MAX_TOKEN:
        raise _refused()
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _refused() from None


def _refused() -> ValidationFailed:
    return ValidationFailed(
        "next is not a token this API gave", [{"field": "next", "message": "unknown token"}]
    )


def _after(token: str) -> tuple[datetime, str]:
    value = _decoded(token)
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise _refused()
    created, environment_id = value
    try:
        moment = datetime.fromisoformat(created)
    except ValueError:
        raise _refused() from None
    if moment.tzinfo is None:
        raise _refused()
    return moment, environment_id


def event_token(event: AuditEvent) -> str:
    return _encode({"before": event.version})


def events_before(token: str) -> int:
    """The version a page of the audit trail starts below, from the `next` its last page gave."""
    value = _decoded(token)
    before = value.get("before") if isinstance(value, dict) and len(value) == 1 else None
    if not isinstance(before, int) or isinstance(before, bool) or before < 1:
        raise _refused()
    return before


def page(items: Sequence[E], limit: int, next_token: str | None) -> tuple[list[E], str | None]:
    """The items after the token (all, without one), at most `limit`, and the token of the page
    after (None on the last page). `items` are in the list's order (created_at, then id)."""
    start = 0
    if next_token:
        after = _after(next_token)
        start = next((n for n, env in enumerate(items) if _key(env) > after), len(items))
    chosen = list(items[start : start + limit])
    more = start + limit < len(items)
    return chosen, token_for(chosen[-1]) if more and chosen else None
