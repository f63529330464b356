"""Changing an environment's size (PATCH with `size`, `cpu_cores`, `memory_gb`, `storage_gb`).

STOPPED or ERROR: the record takes the new size at once (metered from that moment) and the next
start runs it: on ACI the container group is re-created with the new resources (a group's CPU and
memory cannot change in place), the workspace kept and its quota grown. RUNNING: 409, unless
`restart: true`; then the size waits on the record (`pending_size`) and a restart (a stop whose
orchestration starts it again) applies it as the start is accepted, so the old size is billed up
to the stop. The backend's limits, the operator's bounds and the budget are checked first (the
running-environment quota by the start itself); the audit trail records the change."""

from __future__ import annotations

from shared import templates
from shared.domain import placement
from shared.domain.environment import Actor, Environment, SizeChange, Status
from shared.domain.lifecycle import Command
from shared.domain.operation import Kind
from shared.domain.placement import ResolvedSize, SizeRequest
from shared.domain.requests import UpdateEnvironmentRequest
from shared.errors import InvalidState
from shared.services.environments import CommandResult, EnvironmentService
from shared.services.ports import Change, Clock

RESTART_REASON = "restarting to resize"


def described(size: SizeChange) -> str:
    return f"{size.size} ({size.cpu_cores:g} CPU, {size.memory_gb:g} GB, {size.storage_gb} GB storage)"


class Resizing:
    def __init__(self, environments: EnvironmentService, clock: Clock) -> None:
        self._environments = environments
        self._clock = clock

    def resize(
        self, owner: str, environment_id: str, request: UpdateEnvironmentRequest, budget: float | None = None
    ) -> CommandResult:
        """Apply the request (its other settings too, in the same write). Accepted: a restart
        was begun, whose orchestration the caller starts (`environment.operation`)."""
        service = self._environments
        current = service.get(owner, environment_id)
        now_size = ResolvedSize(current.size, current.cpu_cores, current.memory_gb, current.storage_gb)
        wanted = SizeRequest(request.size, request.cpu_cores, request.memory_gb, request.storage_gb)
        template = templates.catalog()[current.template]
        new = placement.resize(now_size, wanted, template, service.placement, service.bounds)
        change = SizeChange(
            size=new.name, cpu_cores=new.cpu_cores, memory_gb=new.memory_gb, storage_gb=new.storage_gb
        )
        # An hour of the new size must fit this month's budget, as a start's would.
        service.check_budget(owner, current.model_copy(update=change.model_dump()), budget)
        settings = request.settings()

        def apply(env: Environment) -> Environment | None:
            if env.status in (Status.STOPPED, Status.ERROR):
                return env.model_copy(update={**settings, **change.model_dump(), "pending_size": None})
            if env.status is Status.RUNNING and request.restart:
                return env.model_copy(update={**settings, "pending_size": change})
            why = (
                "it is RUNNING: stop it first, or give restart: true to stop and start it now"
                if env.status is Status.RUNNING
                else "try again once it settles"
            )
            raise InvalidState(f"cannot resize now: {why}", {"status": env.status.value})

        when = "as it restarts" if current.status is Status.RUNNING else "at the next start"
        note = Change(Actor.USER, f"resize to {described(change)} {when}", self._clock(), audited=True)
        env = service.mutate(owner, environment_id, apply, note)
        if env.pending_size is None or env.status is not Status.RUNNING:
            return CommandResult(env, accepted=False)
        return service.command(owner, environment_id, Command.STOP, reason=RESTART_REASON, kind=Kind.RESTART)

    def start_after_restart(self, owner: str, environment_id: str, restart: str) -> Environment | None:
        """The restart's second half, once its stop settled: start the environment (its pending
        size applied as the start is accepted), or find the start a first run of this step
        accepted. None when the restart no longer owns the record (a user acted meanwhile) or
        it did not stop. A budget that no longer allows the start raises BudgetExceeded."""
        env = self._environments.get(owner, environment_id)
        if env.status is Status.STARTING and env.status_reason == RESTART_REASON:
            return env
        if env.operation != restart or env.status is not Status.STOPPED:
            return None
        result = self._environments.command(
            owner, environment_id, Command.START, reason=RESTART_REASON, budget=env.monthly_budget
        )
        return result.environment if result.accepted else None
