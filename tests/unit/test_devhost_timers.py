"""The local host reads the app's timer triggers and their NCRONTAB schedules as Functions does."""

from datetime import UTC, datetime

import azure.durable_functions as df
import pytest

import timers
from devhost.dev8 import setting_default
from devhost.host.timers import resolve_schedule, timer_functions


def test_the_apps_timers_are_found_with_their_schedules(monkeypatch):
    monkeypatch.setenv("DEV8_IDLE_SWEEP_SCHEDULE", "30 */2 * * * *")
    monkeypatch.delenv("DEV8_RECONCILE_SCHEDULE", raising=False)
    app = df.DFApp()
    app.register_functions(timers.bp)
    found = {timer.name: timer for timer in timer_functions(app.get_functions(), setting_default)}
    assert set(found) == {"idle_sweep", "retention_sweep", "reconcile"}
    assert found["idle_sweep"].schedule == "30 */2 * * * *"  # the app setting wins
    assert found["reconcile"].schedule == "0 */10 * * * *"  # else the app's own default
    assert found["idle_sweep"].client_parameter == "client"  # a Durable client binding
    start = datetime(2026, 1, 1, 10, 1, 0, tzinfo=UTC)
    assert found["idle_sweep"].next_fire(start) == datetime(
        2026, 1, 1, 10, 2, 30, tzinfo=UTC
    )  # seconds first
    assert found["retention_sweep"].next_fire(start) == datetime(2026, 1, 2, 3, 30, tzinfo=UTC)


def test_schedules_that_name_no_setting_pass_through_and_unknown_ones_fail(monkeypatch):
    assert resolve_schedule("0 0 * * * *") == "0 0 * * * *"
    monkeypatch.delenv("NOT_A_SETTING", raising=False)
    with pytest.raises(ValueError, match="NOT_A_SETTING"):
        resolve_schedule("%NOT_A_SETTING%")
