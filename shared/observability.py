"""Following one request through the system: its id, the environment and the operation it is
about, on every log line of that request, of the orchestration it starts and of that
orchestration's activities; JSON log lines on the local host; in Azure, the same fields as custom
dimensions in Application Insights and a few metrics, through OpenTelemetry's Azure Monitor distro.

The fields live in context variables: set by the HTTP layer for a request, by the orchestrations
and activities from their input (the request id travels in the orchestration's input, which is
identifiers only). `asyncio.to_thread` copies the context, so blocking work keeps them.

Metrics and the distro load only when APPLICATIONINSIGHTS_CONNECTION_STRING is set (in Azure): the
local host and the tests never import OpenTelemetry.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

FIELDS = ("request_id", "environment_id", "operation")
_CONTEXT: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"dev8_{name}", default=None) for name in FIELDS
}
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # what a caller's X-Request-ID may be
LOGGER = "dev8"  # every module logs under it (dev8.api, dev8.activities, ...)


def new_request_id(given: str | None = None) -> str:
    """The caller's X-Request-ID when well formed, else a fresh one."""
    return given if given and REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def current(name: str) -> str | None:
    return _CONTEXT[name].get()


@contextlib.contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Set some of FIELDS for the code inside (None leaves a field as it is)."""
    tokens = [(_CONTEXT[name], _CONTEXT[name].set(value)) for name, value in fields.items() if value]
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


def bind(**fields: str | None) -> None:
    """Set fields for the rest of this context (an HTTP request's, an activity's)."""
    for name, value in fields.items():
        if value:
            _CONTEXT[name].set(value)


def carried() -> Callable[[], None]:
    """An `initializer` for a ThreadPoolExecutor made for this context's work: it binds the
    context's fields on each worker thread, which a pool, unlike `asyncio.to_thread`, does not
    carry over (a sweep pass's id on its workers' log lines and table calls)."""
    return functools.partial(bind, **{name: variable.get() for name, variable in _CONTEXT.items()})


class ContextFilter(logging.Filter):
    """Puts the bound fields on every record (Application Insights makes them custom dimensions)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, _CONTEXT[name].get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the bound fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*FIELDS, "route", "status", "duration_ms", "activity"):
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__  # the type only: exception text may hold input
        return json.dumps(line, ensure_ascii=False)


def configure_json_logs(stream: Any = None, level: int = logging.INFO) -> logging.Handler:
    """JSON lines for the dev8 loggers (the local host); returns the handler it added."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler


# azure-core's HttpLoggingPolicy logs every request and its answer at INFO. The Functions Python
# worker sets the root logger to INFO and forwards every record to the host
# (azure-functions-python-worker, dispatcher.py: dispatch_forever), which sends Information and up
# to Application Insights (host.json): about 1.5 records per table call, formatted, forwarded and
# billed, and 0.4 ms of CPU on a 3 ms point read here. Its warnings and errors still pass.
SDK_HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"
# The Azure Monitor exporter says "Transmission succeeded" at INFO for every batch it sends (the
# logs' every second while there are any, OpenTelemetry's BatchLogRecordProcessor default):
# forwarded the same way, the telemetry would log itself once a second.
EXPORTER_LOGGER = "azure.monitor.opentelemetry.exporter"


def quiet_sdk_request_logs() -> None:
    """Before the exporter starts, so its start-up lines are quiet too."""
    for name in (SDK_HTTP_LOGGER, EXPORTER_LOGGER):
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_azure_monitor() -> bool:
    """In Azure: export the dev8 logs (with their fields) and metrics to Application Insights
    through the Azure Monitor OpenTelemetry distro, authenticated with the app's identity
    (learn.microsoft.com/azure/azure-monitor/app/opentelemetry-configuration). Does nothing
    without APPLICATIONINSIGHTS_CONNECTION_STRING."""
    global _telemetry
    if not os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or _telemetry:
        return _telemetry
    from azure.monitor.opentelemetry import configure_azure_monitor as configure

    options: dict[str, Any] = {}
    # The app's managed identity, as APPLICATIONINSIGHTS_AUTHENTICATION_STRING names it
    # ("ClientId=...;Authorization=AAD", set by infra/modules/functionapp.bicep).
    authentication = dict(
        part.split("=", 1)
        for part in os.environ.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "").split(";")
        if "=" in part
    )
    if authentication.get("Authorization") == "AAD":
        from azure.identity import ManagedIdentityCredential

        options["credential"] = ManagedIdentityCredential(client_id=authentication.get("ClientId"))
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    configure(logger_name=LOGGER, instrumentation_options={"azure_sdk": {"enabled": False}}, **options)
    for handler in logger.handlers:  # the distro's: a logger's own filters skip its children's records
        handler.addFilter(ContextFilter())
    # The worker forwards every record that reaches the root logger to the host, which sends it to
    # Application Insights as well (dispatcher.py's AsyncLoggingHandler; the distro's README,
    # "Logging issues": duplicate entries): the dev8 records go once, through the distro, with
    # their fields. Other loggers' records (the SDKs' warnings) still take the worker's way.
    logger.propagate = False
    _telemetry = True
    return True


_telemetry = False
_instruments: dict[str, Any] = {}


def _instrument(kind: str, name: str, unit: str, description: str) -> Any:
    if not _telemetry:
        return None
    if name not in _instruments:
        from opentelemetry import metrics

        meter = metrics.get_meter("dev8")
        make = meter.create_histogram if kind == "histogram" else meter.create_counter
        _instruments[name] = make(name, unit=unit, description=description)
    return _instruments[name]


def record_api(route: str, method: str, status: int, seconds: float) -> None:
    histogram = _instrument("histogram", "dev8.api.duration", "s", "API latency by route and status")
    if histogram is not None:
        histogram.record(seconds, {"route": route, "method": method, "status": status})


def record_ready(kind: str, seconds: float) -> None:
    """create -> RUNNING or start -> RUNNING, in seconds."""
    histogram = _instrument("histogram", "dev8.environment.ready", "s", "create or start until RUNNING")
    if histogram is not None:
        histogram.record(seconds, {"kind": kind})


def count(name: str, amount: int = 1, **attributes: str) -> None:
    """Failures by reason (`dev8.failures`), sweep and reconciler actions (`dev8.sweeps`)."""
    if amount <= 0:
        return
    counter = _instrument("counter", name, "1", "dev8 events")
    if counter is not None:
        counter.add(amount, attributes)
