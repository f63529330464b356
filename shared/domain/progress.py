"""Provisioning progress: the phases a create or start goes through, each with when it began and
ended, for progress bars and for the audit trail. Plain data: no I/O."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Phase(StrEnum):
    """In the order they happen; a backend may skip one (the `local` backend pulls no image)."""

    WORKSPACE = "workspace"  # the workspace's storage is made ready (create only)
    COMPUTE_REQUESTED = "compute_requested"  # the compute is asked for; the provider schedules it
    IMAGE_PULLING = "image_pulling"  # the workspace image is being pulled
    CONTAINER_STARTED = "container_started"  # the container runs: the tree is restored, the IDE boots
    IDE_ANSWERING = "ide_answering"  # the IDE answers; RUNNING follows


ORDER = list(Phase)
LABEL = {
    Phase.WORKSPACE: "workspace",
    Phase.COMPUTE_REQUESTED: "compute requested",
    Phase.IMAGE_PULLING: "image pulling",
    Phase.CONTAINER_STARTED: "container started",
    Phase.IDE_ANSWERING: "IDE answering",
}


class Step(BaseModel):
    """One phase reached: it began at `started_at` and ended when the next one began (or the
    operation finished); `ended_at` is None while it is the current phase."""

    model_config = ConfigDict(frozen=True)

    phase: Phase
    started_at: datetime
    ended_at: datetime | None = None


def reached(steps: list[Step], phase: Phase, at: datetime) -> list[Step] | None:
    """The steps once `phase` is reached at `at`, or None when that changes nothing: phases only
    move forward, so reaching one again (a re-run activity, a repeated poll) or an earlier one is
    no news."""
    if steps and ORDER.index(steps[-1].phase) >= ORDER.index(phase):
        return None
    return [*finished(steps, at), Step(phase=phase, started_at=at)]


def finished(steps: list[Step], at: datetime) -> list[Step]:
    """The steps with the current phase ended at `at` (the operation is over)."""
    return [step if step.ended_at else step.model_copy(update={"ended_at": at}) for step in steps]


def timings(steps: list[Step]) -> str:
    """How long each phase took, for the audit trail: "workspace 0.4 s, image pulling 21.0 s"."""
    parts = []
    for step in steps:
        if step.ended_at is not None:
            seconds = (step.ended_at - step.started_at).total_seconds()
            parts.append(f"{LABEL[step.phase]} {seconds:.1f} s")
    return ", ".join(parts)
