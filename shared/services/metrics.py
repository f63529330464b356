"""What the agent reports: activity, resource samples (kept as a series, the owner's view of it,
and expiry), and what the workspace setup could not do."""

from __future__ import annotations

import contextlib

from shared.domain.environment import Actor, Environment, Status
from shared.domain.requests import ActivityReport
from shared.domain.samples import Point, expired_before, window_start
from shared.errors import NotFound
from shared.services.environments import EnvironmentService
from shared.services.ports import Change, Clock, ResourceSamples


class ResourceMetrics:
    def __init__(self, environments: EnvironmentService, samples: ResourceSamples, clock: Clock) -> None:
        self._environments = environments
        self._samples = samples
        self._clock = clock

    def report(self, env: Environment, report: ActivityReport) -> None:
        """A report of `env`'s own agent (authenticated: EnvironmentService.agent_environment):
        activity when it says so, and its sample, stamped with the API's own clock (an agent's
        clock is not trusted to place it)."""
        if report.active:
            self._environments.touch(env)
        if report.sample is not None:
            self._samples.add(env.id, Point(at=self._clock(), sample=report.sample))
        problem = report.setup_problem()
        if problem is not None:
            self._note_setup(env, problem)

    def _note_setup(self, env: Environment, problem: str) -> None:
        """In the audit trail once, and as the status reason of the run (now if it runs, else as
        its start settles): the workspace runs, without what failed."""
        at_work = (Status.CREATING, Status.STARTING, Status.RUNNING)

        def note(current: Environment) -> Environment | None:
            if current.setup_problem == problem or current.status not in at_work:
                return None
            running = {"status_reason": problem} if current.status is Status.RUNNING else {}
            return current.model_copy(update={"setup_problem": problem, **running})

        change = Change(Actor.SYSTEM, problem, self._clock(), audited=True)
        with contextlib.suppress(NotFound):  # deleted meanwhile: nothing to tell
            self._environments.mutate(env.owner, env.id, note, change)

    def series(self, owner: str, environment_id: str, hours: int) -> tuple[Environment, list[Point]]:
        """The owner's environment and its samples of the last `hours` hours, oldest first."""
        env = self._environments.get(owner, environment_id)
        return env, self._samples.series(env.id, window_start(self._clock(), hours))

    def expire(self) -> int:
        """Delete samples past the window, every environment's (a timer's pass)."""
        return self._samples.expire(expired_before(self._clock()))

    def forget(self, environment_id: str) -> None:
        self._samples.drop(environment_id)
