"""Durable orchestrations of the environment lifecycle and the activities they call."""

from orchestrators import activities, forget, handoff, lifecycle
from orchestrators.blueprint import bp

__all__ = ["activities", "bp", "forget", "handoff", "lifecycle"]
