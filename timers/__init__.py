"""Timer triggers: the idle sweep, retention and the reconciler."""

from timers.sweeps import bp

__all__ = ["bp"]
