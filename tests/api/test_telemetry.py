"""In Azure, logs reach Application Insights with the request's fields as custom dimensions, once,
and the app's metrics go with them (issue 12, item 12). Exercised for real: the Azure Monitor
OpenTelemetry distro, configured by the app's own code, exports to an ingestion endpoint that is a
recording server here. In a subprocess, since the distro sets process-wide providers."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

from tests.infra.tooling import ROOT
from tests.recording_server import recording_server

SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    from shared import observability

    class Worker(logging.Handler):  # the Functions worker's root handler: on to the host, and App Insights
        forwarded = []
        def emit(self, record):
            self.forwarded.append(record.name)

    logging.getLogger().addHandler(Worker())
    logging.getLogger().setLevel(logging.INFO)
    observability.quiet_sdk_request_logs()  # as create_app() does, first
    assert observability.configure_azure_monitor()
    with observability.bound(request_id="otel-0042", environment_id="env-00000000000000aa", operation="op-1"):
        logging.getLogger("dev8.api.access").info("GET /api/v1/environments 200")
        observability.record_api("/api/v1/environments", "GET", 200, 0.012)
        observability.record_ready("creating", 3.5)
    logging.getLogger("azure.data.tables").warning("an SDK's warning")
    from opentelemetry import _logs, metrics
    _logs.get_logger_provider().force_flush()
    metrics.get_meter_provider().force_flush()
    print(json.dumps(Worker.forwarded))
    """
)


def items(body: bytes) -> list[dict[str, Any]]:
    if body[:2] == b"\\x1f\\x8b":
        body = gzip.decompress(body)
    text = body.decode()
    try:
        found = json.loads(text)
        return found if isinstance(found, list) else [found]
    except json.JSONDecodeError:  # newline-delimited
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_logs_carry_the_request_fields_and_metrics_are_exported() -> None:
    with recording_server() as ingestion:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("APPLICATIONINSIGHTS", "DEV8_"))},
            "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                f"IngestionEndpoint=http://127.0.0.1:{ingestion.port}/"
            ),
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",  # no calls home from the test
            "PYTHONPATH": str(ROOT),
        }
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
        sent = [item for request in ingestion.requests for item in items(request.body.encode("latin-1"))]
    # A dev8 record reaches Application Insights once, not through the worker's root handler too;
    # the exporter's own INFO lines ("Transmission succeeded") and the SDK's per-request lines do
    # not take that way either; other loggers' records still do.
    forwarded = json.loads(done.stdout.strip().splitlines()[-1])
    assert forwarded == ["azure.data.tables"], forwarded
    assert all(request.path.endswith("/track") for request in ingestion.requests), ingestion.requests
    logs = [i for i in sent if i.get("data", {}).get("baseType") == "MessageData"]
    message = next(i for i in logs if i["data"]["baseData"]["message"] == "GET /api/v1/environments 200")
    properties = message["data"]["baseData"]["properties"]
    assert (properties["request_id"], properties["environment_id"], properties["operation"]) == (
        "otel-0042",
        "env-00000000000000aa",
        "op-1",
    )
    metrics = {
        i["data"]["baseData"]["metrics"][0]["name"]
        for i in sent
        if i.get("data", {}).get("baseType") == "MetricData"
    }
    assert {"dev8.api.duration", "dev8.environment.ready"} <= metrics, metrics
