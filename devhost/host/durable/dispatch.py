"""Activity dispatch: queued activities run inline (deterministic mode) or on a worker pool (the
driver), and their outcomes come back as TaskCompleted / TaskFailed events. `replay_activity`
runs a recorded one again, to show it is idempotent."""

from __future__ import annotations

from concurrent.futures import Future

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from devhost.host.durable import history as hist
from devhost.host.durable.registry import ActivityOutcome, failure_outcome
from devhost.host.durable.state import ActivityWork, EngineState, InstanceNotFoundError


class ActivityDispatch(EngineState):
    def replay_activity(self, instance_id: str, task_id: int) -> ActivityOutcome:
        """Run the activity recorded as TaskScheduled ``task_id`` again with its recorded input.

        The history is not changed: compare the result with the recorded TaskCompleted to show
        the activity is idempotent (Durable may execute any activity more than once).
        """
        with self._cond:
            instance = self._instances.get(instance_id)
            if instance is None:
                raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
            scheduled = next(
                (
                    e
                    for e in instance.history
                    if e["EventType"] == HistoryEventType.TASK_SCHEDULED and e["EventId"] == task_id
                ),
                None,
            )
        if scheduled is None:
            raise KeyError(f"instance '{instance_id}' has no TaskScheduled #{task_id}")
        activity = self._registry.activity(str(scheduled["Name"]))
        if activity is None:
            raise KeyError(f"activity '{scheduled['Name']}' is not registered")
        return activity.invoke(scheduled.get("Input"))

    def _execute(self, work: ActivityWork) -> ActivityOutcome:
        activity = self._registry.activity(work.name)
        if activity is None:
            return failure_outcome(LookupError(f"activity '{work.name}' is not registered"))
        outcome = activity.invoke(work.input)
        if self._duplicate_activities:
            # Redelivery after a crash: the first result was lost, the second one is recorded.
            outcome = activity.invoke(work.input)
        return outcome

    def _deliver_activity(self, work: ActivityWork, outcome: ActivityOutcome) -> None:
        self._in_flight.discard((work.instance_id, work.execution_id, work.task_id))
        instance = self._instances.get(work.instance_id)
        if (
            instance is None
            or instance.execution_id != work.execution_id
            or instance.runtime_status.is_terminal
        ):
            return  # a result for an execution that has ended: dropped, as in Durable
        if work.task_id in hist.completed_ids(instance.history) | hist.completed_ids(instance.inbox):
            return
        now = self._clock.now()
        if outcome.ok:
            event = hist.task_completed(now, work.task_id, outcome.result_json or "null")
        else:
            event = hist.task_failed(now, work.task_id, outcome.reason or "activity failed", outcome.details)
        self._deliver_event(instance, event, persist=False)

    def _submit(self, work: ActivityWork) -> None:
        assert self._executor is not None
        future = self._executor.submit(self._execute, work)
        future.add_done_callback(lambda f, w=work: self._on_activity_done(w, f))  # type: ignore[misc]

    def _on_activity_done(self, work: ActivityWork, future: Future[ActivityOutcome]) -> None:
        if future.cancelled():  # the driver stopped before it started: run it next time
            with self._cond:
                self._pending.append(work)
            return
        error = future.exception()
        outcome = failure_outcome(error) if error is not None else future.result()
        with self._cond:
            self._deliver_activity(work, outcome)
