"""Cold start: median time to import function_app, beside azure.functions alone.

Each sample is a fresh interpreter, so nothing is cached in-process. Run: `make bench`
(or `.venv/bin/python tests/benchmarks/cold_start.py [samples]`).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What function_app imports at start-up that is not Dev8's own code.
SDKS = "azure.functions, azure.durable_functions, pydantic_settings, jwt"
TIMER = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
ENV = {
    **os.environ,
    "DEV8_JWT_SECRET": "x" * 32,
    "DEV8_TABLES_CONNECTION": "UseDevelopmentStorage=true",
    "DEV8_SECRETS_KEY": "ZGV2OC1sb2NhbC1vbmx5LXNlYWxpbmcta2V5LTMyYiE=",
    "DEV8_COMPUTE_BACKEND": "simulated",
}


def median_import_ms(module: str, samples: int) -> float:
    times = []
    for _ in range(samples):
        out = subprocess.run(
            [sys.executable, "-c", TIMER.format(module=module)],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        times.append(float(out) * 1000)
    return statistics.median(times)


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    base = median_import_ms("azure.functions", samples)
    sdks = median_import_ms(SDKS, samples)
    app = median_import_ms("function_app", samples)
    print(f"import azure.functions                 : {base:7.1f} ms (median of {samples})")
    print(f"  + durable SDK, pydantic-settings, jwt: {sdks:7.1f} ms (the SDKs the app cannot start without)")
    print(f"import function_app                    : {app:7.1f} ms")
    print(f"Dev8's own code                        : {app - sdks:7.1f} ms")


if __name__ == "__main__":
    from benchlib import before_and_after  # --before REV: the same run over REV's code first

    compared = before_and_after(__file__)
    sys.exit(main() if compared is None else compared)
