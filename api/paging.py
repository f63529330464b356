"""Paging a list in a stable order: `limit` items at a time, and an opaque `next` token naming
the last item given (its creation time and id, the list's own order), so a page boundary holds
even when items are added or removed between two calls."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from shared.domain.environment import Environment
from shared.errors import ValidationFailed

MAX_LIMIT = 100
E = TypeVar("E", bound=Environment)


def _key(env: Environment) -> tuple[datetime, str]:
    return env.created_at, env.id


def token_for(env: Environment) -> str:
    raw = json.dumps([env.created_at.isoformat(), env.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _after(token: str) -> tuple[datetime, str]:
    refused = ValidationFailed(
        "next is not a token this API gave", [{"field": "next", "message": "unknown token"}]
    )
    if len(token) > 200:
        raise refused
    try:
        created, environment_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        moment = datetime.fromisoformat(created)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise refused from None
    if moment.tzinfo is None or not isinstance(environment_id, str):
        raise refused
    return moment, environment_id


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
