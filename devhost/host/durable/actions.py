"""Parse the SDK's OrchestratorState JSON (actions, isDone, output, error, customStatus).

Replay schema V1 (``schemaVersion`` absent) sends ``actions`` as a list of action *sets*, one per
episode-yield, with compound tasks flattened into the set. V2/V3 (``schemaVersion`` 1 or 2) send a
single list (wrapped in one outer list) of top-level actions, where ``task_all``/``task_any`` are
``WhenAll``/``WhenAny`` actions holding their children in ``compoundActions``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure.durable_functions.models.actions.ActionType import ActionType

from devhost.host.durable.history import parse_time


class OrchestratorStateError(ValueError):
    """The SDK returned something that is not a valid OrchestratorState."""


@dataclass(frozen=True)
class RetryPolicy:
    """The retry options of a ``*WithRetry`` action, with the Durable Task defaults for the rest.

    The Python SDK only sends the first interval and the attempt count; the backoff coefficient
    and the interval cap are honoured when present (other SDKs and subclasses send them).
    """

    first_interval: timedelta
    max_attempts: int
    backoff_coefficient: float = 1.0
    max_interval: timedelta | None = None

    def delay(self, attempt: int) -> timedelta:
        """Delay before the retry that follows failed attempt number ``attempt`` (0-based)."""
        delay = self.first_interval * (self.backoff_coefficient**attempt)
        if self.max_interval is not None and delay > self.max_interval:
            return self.max_interval
        return delay

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RetryPolicy:
        try:
            first_ms = float(raw["firstRetryIntervalInMilliseconds"])
            attempts = int(raw["maxNumberOfAttempts"])
        except (KeyError, TypeError, ValueError) as exc:
            raise OrchestratorStateError(f"invalid retryOptions: {raw!r}") from exc
        if first_ms <= 0:
            raise OrchestratorStateError("retryOptions.firstRetryIntervalInMilliseconds must be > 0")
        max_ms = raw.get("maxRetryIntervalInMilliseconds")
        return cls(
            first_interval=timedelta(milliseconds=first_ms),
            # Durable Task makes at least one attempt whatever the configured count.
            max_attempts=max(1, attempts),
            backoff_coefficient=float(raw.get("backoffCoefficient", 1.0)),
            max_interval=timedelta(milliseconds=float(max_ms)) if max_ms else None,
        )


@dataclass(frozen=True)
class Action:
    """One action from the SDK, typed; ``children`` is set for WhenAll/WhenAny."""

    kind: ActionType | int
    function_name: str | None = None
    input: str | None = None
    fire_at: datetime | None = None
    is_cancelled: bool = False
    event_name: str | None = None
    retry: RetryPolicy | None = None
    instance_id: str | None = None
    children: tuple[Action, ...] = ()

    def walk(self) -> list[Action]:
        """This action and all nested ones, depth first."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


@dataclass(frozen=True)
class OrchestratorState:
    is_done: bool
    schema_version: int
    action_sets: tuple[tuple[Action, ...], ...]
    output: Any = None
    error: str | None = None
    has_custom_status: bool = False
    custom_status: Any = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def all_actions(self) -> list[Action]:
        found: list[Action] = []
        for action_set in self.action_sets:
            for action in action_set:
                found.extend(action.walk())
        return found

    def continue_as_new_input(self) -> tuple[bool, str | None]:
        """Whether the orchestrator called ``continue_as_new`` and with which input (JSON text)."""
        for action in self.all_actions():
            if action.kind == ActionType.CONTINUE_AS_NEW:
                return True, action.input
        return False, None


def _parse_action(raw: Any) -> Action:
    if not isinstance(raw, dict) or "actionType" not in raw:
        raise OrchestratorStateError(f"invalid action: {raw!r}")
    kind_value = int(raw["actionType"])
    kind: ActionType | int
    try:
        kind = ActionType(kind_value)
    except ValueError:
        kind = kind_value  # e.g. ScheduledSignalEntity (10): kept so the host can refuse it clearly
    retry_raw = raw.get("retryOptions")
    fire_at = raw.get("fireAt")
    children = tuple(_parse_action(child) for child in raw.get("compoundActions") or ())
    return Action(
        kind=kind,
        function_name=raw.get("functionName"),
        input=raw.get("input"),
        fire_at=parse_time(fire_at) if isinstance(fire_at, str) else None,
        is_cancelled=bool(raw.get("isCanceled", False)),
        event_name=raw.get("externalEventName"),
        retry=RetryPolicy.from_json(retry_raw) if isinstance(retry_raw, dict) else None,
        instance_id=raw.get("instanceId"),
        children=children,
    )


def parse_state(text: str) -> OrchestratorState:
    """Parse the JSON string returned by an orchestrator handle."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OrchestratorStateError(f"orchestrator returned invalid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise OrchestratorStateError("orchestrator state must be a JSON object")
    actions_raw = raw.get("actions") or []
    if not isinstance(actions_raw, list) or not all(isinstance(s, list) for s in actions_raw):
        raise OrchestratorStateError("orchestrator state 'actions' must be a list of lists")
    schema_version = int(raw.get("schemaVersion", 0))
    if schema_version > 0 and len(actions_raw) > 1:
        raise OrchestratorStateError(
            f"schema {schema_version} expects one outer action list, got {len(actions_raw)}"
        )
    action_sets = tuple(tuple(_parse_action(a) for a in action_set) for action_set in actions_raw)
    return OrchestratorState(
        is_done=bool(raw.get("isDone", False)),
        schema_version=schema_version,
        action_sets=action_sets,
        output=raw.get("output"),
        error=raw.get("error") or None,
        has_custom_status="customStatus" in raw,
        custom_status=raw.get("customStatus"),
        raw=raw,
    )
