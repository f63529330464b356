"""Under the Functions worker's logging (the root logger at INFO, every record forwarded to the
host and on to Application Insights), a request leaves no per-call log records of the Azure SDK's
HTTP pipeline: only the app's own lines."""

from __future__ import annotations

import logging

import pytest

from shared.observability import SDK_HTTP_LOGGER
from tests.api.conftest import Api


def test_table_calls_leave_no_sdk_request_logs_at_the_workers_info_level(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):  # the root logger's level, as the worker sets it
        created = api.create(name="quiet")
        assert api.call("GET", f"/environments/{created['id']}").status_code == 200
    assert [r for r in caplog.records if r.name.startswith("dev8.")]  # the app's own lines pass
    assert not [r for r in caplog.records if r.name == SDK_HTTP_LOGGER]


def test_the_sdks_http_warnings_still_pass(api: Api) -> None:
    assert logging.getLogger(SDK_HTTP_LOGGER).isEnabledFor(logging.WARNING)
