"""Timer triggers on their NCRONTAB schedules, as the Functions host runs them.

Schedules may name an app setting (`%IDLE_SWEEP_SCHEDULE%`), resolved from the environment, else
from `setting_default` (what the app would assume; the real host needs the setting itself).
NCRONTAB puts seconds first; croniter reads that form with `second_at_beginning`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.functions.decorators.function_app import Function
from azure.functions.decorators.timer import TimerTrigger
from azure.functions.timer import TimerRequest
from croniter import croniter

from devhost.host.invoke import durable_client_parameter, invoke

log = logging.getLogger("devhost.host.timers")
_SETTING = re.compile(r"^%([A-Za-z0-9_]+)%$")


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: str
    call: Callable[..., Any]
    timer_parameter: str
    client_parameter: str | None

    def next_fire(self, after: datetime) -> datetime:
        return croniter(self.schedule, after, second_at_beginning=True).get_next(datetime)  # type: ignore[no-any-return]


SettingDefault = Callable[[str], str | None]  # an app setting's name -> its default, if any


def resolve_schedule(schedule: str, setting_default: SettingDefault | None = None) -> str:
    match = _SETTING.fullmatch(schedule.strip())
    if not match:
        return schedule
    name = match.group(1)
    value = os.environ.get(name) or (setting_default(name) if setting_default else None)
    if not value:
        raise ValueError(f"timer schedule setting {name} is not set")
    return value


def timer_functions(
    functions: Iterable[Function], setting_default: SettingDefault | None = None
) -> list[TimerFunction]:
    found = []
    for function in functions:
        trigger = function.get_trigger()
        if not isinstance(trigger, TimerTrigger):
            continue
        schedule = resolve_schedule(trigger.schedule, setting_default)
        if not croniter.is_valid(schedule, second_at_beginning=True):
            raise ValueError(f"timer {function.get_function_name()} has an invalid schedule {schedule!r}")
        client = durable_client_parameter(function)
        found.append(
            TimerFunction(
                name=function.get_function_name() or trigger.name,
                schedule=schedule,
                call=function.get_user_function(),
                timer_parameter=trigger.name,
                client_parameter=client,
            )
        )
    return found


class TimerRunner:
    """Fires each timer function at its next occurrence, one run at a time per timer (a run that
    overlaps its next occurrence makes that occurrence past due, as on the real host)."""

    def __init__(self, timers: list[TimerFunction], client_binding: Callable[[], str]):
        self.timers = {timer.name: timer for timer in timers}
        self._client_binding = client_binding
        self._tasks: list[asyncio.Task[None]] = []
        self.runs: dict[str, int] = dict.fromkeys(self.timers, 0)

    async def fire(self, name: str, past_due: bool = False) -> None:
        """Run one timer function now (the host's start-up reconciliation uses this)."""
        timer = self.timers[name]
        arguments = {timer.timer_parameter: TimerRequest(past_due=past_due)}
        try:
            await invoke(timer.call, arguments, timer.client_parameter, self._client_binding)
        except Exception as exc:  # a failed run is logged; the schedule goes on
            log.error("timer %s failed: %s: %s", name, type(exc).__name__, exc)
        finally:
            self.runs[name] += 1

    def start(self) -> None:
        for timer in self.timers.values():
            self._tasks.append(asyncio.create_task(self._loop(timer), name=f"timer:{timer.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _loop(self, timer: TimerFunction) -> None:
        due = timer.next_fire(datetime.now(UTC))
        while True:
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            now = datetime.now(UTC)
            await self.fire(timer.name, past_due=(now - due).total_seconds() > 1)
            due = timer.next_fire(max(due, datetime.now(UTC)))
