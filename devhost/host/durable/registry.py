"""Find orchestrators and activities in a function app and invoke activities like the worker does.

Names follow the Functions host: the trigger's ``orchestration``/``activity`` property when set,
else the function name. The function's own name is also accepted as an alias (the SDK uses it
when an orchestrator passes the activity function object instead of its name).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from azure.durable_functions.constants import ACTIVITY_TRIGGER, ORCHESTRATION_TRIGGER
from azure.functions import meta
from azure.functions.decorators.function_app import Function
from azure.functions.durable_functions import ActivityTriggerConverter

_MAX_REASON = 500


class FunctionSource(Protocol):
    """A FunctionApp/DFApp (anything with ``get_functions``)."""

    def get_functions(self) -> list[Function]: ...


@dataclass(frozen=True)
class ActivityOutcome:
    """What one activity execution produced, in history terms."""

    ok: bool
    result_json: str | None = None
    reason: str | None = None
    details: str | None = None


@dataclass(frozen=True)
class OrchestratorFunction:
    name: str
    handle: Callable[[str], str]


@dataclass(frozen=True)
class ActivityFunction:
    name: str
    func: Callable[..., Any]
    input_name: str

    def invoke(self, input_json: str | None) -> ActivityOutcome:
        """Run the activity once; never raises (failures become a failed outcome)."""
        try:
            argument = _decode_input(input_json)
            result = self.func(**{self.input_name: argument})
            if inspect.isawaitable(result):
                result = _run_awaitable(result)
            encoded = ActivityTriggerConverter.encode(result, expected_type=None)
            return ActivityOutcome(ok=True, result_json=str(encoded.value))
        except Exception as exc:
            return failure_outcome(exc)


def failure_outcome(exc: BaseException) -> ActivityOutcome:
    """A short failure: the message as Reason, the exception type name as Details (no traceback)."""
    message = str(exc) or type(exc).__name__
    if len(message) > _MAX_REASON:
        message = message[: _MAX_REASON - 3] + "..."
    return ActivityOutcome(ok=False, reason=message, details=type(exc).__name__)


def _decode_input(input_json: str | None) -> Any:
    if input_json is None:
        return None
    # The worker's own converter: JSON (with custom-object envelopes) or the raw string.
    return ActivityTriggerConverter.decode(meta.Datum(value=input_json, type="json"), trigger_metadata=None)


def _run_awaitable(awaitable: Any) -> Any:
    async def wrapper() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrapper())
    # Called from inside a running loop (inline mode under asyncio): use a private loop thread.
    return _run_in_thread(wrapper())


def _run_in_thread(coroutine: Coroutine[Any, Any, Any]) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="durable-activity-async")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class FunctionRegistry:
    """The orchestrators and activities of an app, by name."""

    def __init__(self, functions: Iterable[Function]) -> None:
        self._orchestrators: dict[str, OrchestratorFunction] = {}
        self._activities: dict[str, ActivityFunction] = {}
        aliases: list[tuple[str, OrchestratorFunction | ActivityFunction]] = []
        for function in functions:
            trigger = function.get_trigger()
            if trigger is None:
                continue
            function_name = function.get_function_name() or function.get_user_function().__name__
            if trigger.type == ORCHESTRATION_TRIGGER:
                name = getattr(trigger, "orchestration", None) or function_name
                orchestrator = OrchestratorFunction(name=name, handle=function.get_user_function())
                self._add(self._orchestrators, name, orchestrator)
                aliases.append((function_name, orchestrator))
            elif trigger.type == ACTIVITY_TRIGGER:
                name = getattr(trigger, "activity", None) or function_name
                activity = ActivityFunction(
                    name=name, func=function.get_user_function(), input_name=str(trigger.name)
                )
                self._add(self._activities, name, activity)
                aliases.append((function_name, activity))
        for alias, target in aliases:
            table: dict[str, Any] = (
                self._orchestrators if isinstance(target, OrchestratorFunction) else self._activities
            )
            table.setdefault(alias, target)  # a real name always wins over an alias

    @staticmethod
    def _add(table: dict[str, Any], name: str, value: Any) -> None:
        if name in table:
            raise ValueError(f"two durable functions are named {name!r}")
        table[name] = value

    @classmethod
    def from_app(cls, app: FunctionSource) -> FunctionRegistry:
        """Index an app. ``get_functions`` may only be called once per app, so a host that also
        needs the functions should call it itself and pass the list to the constructor."""
        return cls(app.get_functions())

    def orchestrator(self, name: str) -> OrchestratorFunction | None:
        return self._orchestrators.get(name)

    def activity(self, name: str) -> ActivityFunction | None:
        return self._activities.get(name)

    def has_orchestrator(self, name: str) -> bool:
        return name in self._orchestrators

    def has_activity(self, name: str) -> bool:
        return name in self._activities
