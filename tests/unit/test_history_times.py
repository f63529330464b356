"""History event times: read without dateutil, to the same instant dateutil reads."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.durable_functions.models.history import HistoryEvent, HistoryEventType
from dateutil.parser import parse as dateutil_parse
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrators import history_times
from shared.settings import get_settings

SDK_MODULE: Any = importlib.import_module(history_times.HISTORY_EVENT_MODULE)

instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def dotnet_round_trip(when: datetime) -> str:
    """How the Durable extension writes a history time: seven fraction digits and a Z."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{when.microsecond % 10}Z"


@pytest.fixture
def sdk_parser() -> Iterator[None]:
    """Put the SDK's own parser back after each test, whatever the test did to it."""
    before = SDK_MODULE.dt_parse
    yield
    SDK_MODULE.dt_parse = before


@settings(derandomize=True, max_examples=300)
@given(when=instants, offset=offsets)
def test_the_same_instant_as_dateutil(when: datetime, offset: timezone) -> None:
    local = when.astimezone(offset)
    for text in (
        dotnet_round_trip(when),
        when.isoformat(),
        local.isoformat(),
        when.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ):
        fast, general = history_times.parse(text), dateutil_parse(text)
        assert fast == general, text
        assert fast.utcoffset() == general.utcoffset(), text


def test_the_extension_s_times_never_reach_dateutil(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str, **options: object) -> datetime:
        raise AssertionError(f"dateutil asked for {text}")

    monkeypatch.setattr(history_times, "general_parse", refuse)
    assert history_times.parse("2025-08-08T11:29:34.8856378Z") == datetime(
        2025, 8, 8, 11, 29, 34, 885637, tzinfo=UTC
    )
    assert history_times.parse("2025-08-08T11:29:34Z") == datetime(2025, 8, 8, 11, 29, 34, tzinfo=UTC)


def test_a_time_without_a_zone_stays_without_one_as_in_dateutil() -> None:
    assert history_times.parse("2026-12-04T23:21:17.5173751") == dateutil_parse("2026-12-04T23:21:17.5173751")
    assert history_times.parse("2026-12-04T23:21:17").tzinfo is None


def test_what_iso_8601_cannot_read_goes_to_dateutil() -> None:
    assert history_times.parse("Dec 4 2026 11:21pm") == datetime(2026, 12, 4, 23, 21)
    assert history_times.parse("4/12/2026", dayfirst=True) == datetime(2026, 12, 4)
    with pytest.raises(ValueError):
        history_times.parse("not a time")


@pytest.mark.usefixtures("sdk_parser")
def test_the_sdk_history_events_read_their_times_with_it() -> None:
    SDK_MODULE.dt_parse = dateutil_parse  # as the SDK ships
    assert history_times.read_fast() is True
    assert SDK_MODULE.dt_parse is history_times.parse
    assert history_times.read_fast() is True  # a second call changes nothing
    event = HistoryEvent(
        EventType=HistoryEventType.ORCHESTRATOR_STARTED,
        EventId=-1,
        IsPlayed=False,
        Timestamp="2025-08-08T11:29:34.8856378Z",
    )
    assert event.timestamp == datetime(2025, 8, 8, 11, 29, 34, 885637, tzinfo=UTC)


@pytest.mark.usefixtures("sdk_parser")
def test_an_sdk_that_parses_another_way_is_left_alone() -> None:
    def its_own(text: str) -> datetime:
        return datetime.fromisoformat(text)

    SDK_MODULE.dt_parse = its_own
    assert history_times.read_fast() is False
    assert SDK_MODULE.dt_parse is its_own


@pytest.mark.usefixtures("sdk_parser")
def test_the_app_reads_history_times_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinned SDK still parses with dateutil, so the app installs the fast reading (fails on
    an SDK upgrade that changed how, which then needs a look)."""
    for name, value in {
        "DEV8_JWT_SECRET": "x" * 32,
        "DEV8_TABLES_CONNECTION": "UseDevelopmentStorage=true",
        "DEV8_SECRETS_KEY": "ZGV2OC1sb2NhbC1vbmx5LXNlYWxpbmcta2V5LTMyYiE=",
        "DEV8_COMPUTE_BACKEND": "simulated",
        "DEV8_WORKSPACE_BACKEND": "local",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        import function_app

        SDK_MODULE.dt_parse = dateutil_parse  # as the SDK ships
        function_app.create_app()
        assert SDK_MODULE.dt_parse is history_times.parse
    finally:
        get_settings.cache_clear()
