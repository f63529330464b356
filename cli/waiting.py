"""`--wait`: poll an environment until it gets where a command sends it, with a progress bar
through the provisioning phases the API reports (`progress`)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from cli.api import Api, ApiError

# The API's provisioning phases, in order (the `progress` of an environment; docs in openapi.json).
PHASES = {
    "workspace": "Preparing the workspace",
    "compute_requested": "Requesting compute",
    "image_pulling": "Pulling the image",
    "container_started": "Starting the IDE",
    "ide_answering": "IDE answering",
}
TRANSITIONAL = {"CREATING", "STARTING", "STOPPING", "DELETING"}
# A restart's STOPPED between its stop and its start (the API's status_reason then): not yet
# where the restart is going. A refused start changes the reason, so the wait ends there.
STOPPED_TO_RESTART = "stopped to restart"
FIRST_POLL, LAST_POLL = 0.5, 3.0


class WaitFailed(Exception):
    """The environment ended in ERROR."""

    def __init__(self, environment: dict[str, Any]):
        super().__init__(environment.get("status_reason") or "the environment is in ERROR")
        self.environment = environment


class WaitTimedOut(Exception):
    pass


def wait_for(
    api: Api, environment_id: str, target: str | None, timeout: float, console: Console
) -> dict[str, Any] | None:
    """The environment once its status is `target` (None: once it is gone). ERROR raises
    WaitFailed; a status it settles in other than the target (a stop racing a start) is returned."""
    deadline = time.monotonic() + timeout
    pause = FIRST_POLL
    # Phases to count only on the way up: a stop or delete has none, just its status and time.
    phased = target == "RUNNING"
    counted: list[ProgressColumn] = [BarColumn(), MofNCompleteColumn()] if phased else []
    columns = [SpinnerColumn(), TextColumn("{task.description}"), *counted, TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("Waiting", total=len(PHASES) if phased else None)
        while True:
            try:
                env = api.environment(environment_id)
            except ApiError as error:
                if error.status == 404 and target is None:
                    bar.update(task, description="Deleted")
                    return None
                raise
            _show(bar, task, env, target)
            if env["status"] == "ERROR":
                raise WaitFailed(env)
            if env["status"] not in TRANSITIONAL and not _restarting(env, target):
                return env  # the target, or where a racing command left it
            if time.monotonic() + pause > deadline:
                raise WaitTimedOut(f"{environment_id} is still {env['status']} after {timeout:.0f} s")
            time.sleep(pause)
            pause = min(pause * 1.5, LAST_POLL)


def _restarting(env: dict[str, Any], target: str | None) -> bool:
    return (
        target == "RUNNING" and env["status"] == "STOPPED" and env.get("status_reason") == STOPPED_TO_RESTART
    )


def _show(bar: Progress, task: Any, env: dict[str, Any], target: str | None) -> None:
    if target != "RUNNING":
        bar.update(task, description=f"{env['status'].capitalize()}")
        return
    steps = env.get("progress") or []
    reached = [step["phase"] for step in steps]
    current = reached[-1] if reached else None
    done = sum(1 for step in steps if step.get("ended_at"))
    if env["status"] == "RUNNING":
        done = len(PHASES)
    label = PHASES.get(current or "", env["status"].capitalize())
    bar.update(task, completed=done, description=label if env["status"] != "RUNNING" else "Running")
