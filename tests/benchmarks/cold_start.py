"""Cold start: median time to import function_app, beside importing the SDKs any first request needs
anyway (azure.functions, the Durable SDK, the Table SDK, pydantic, pydantic-settings, PyJWT).

Each sample is a fresh interpreter, so nothing is cached in-process. Bytecode is what the deployed
package has: the SDKs' from pip, Dev8's from the `prepackage` hook's compileall (azure.yaml). Here
both come from one warm-up import into a private bytecode cache (PYTHONPYCACHEPREFIX), so neither
side compiles during a sample whatever PYTHONDONTWRITEBYTECODE says. `--no-bytecode` measures what
a package without Dev8's bytecode would pay (every module compiled at every cold start).
Goal: function_app within 1.15x of the SDKs, loading no backend SDK it does not use
(tests/unit/test_cold_start.py checks the second).

Run: `make bench` (or `.venv/bin/python tests/benchmarks/cold_start.py [--samples 15] [--before [REV]]`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOAL = 1.15
# What any first request needs anyway (the Table SDK is loaded at the first request, not at import).
SDKS = "azure.functions, azure.durable_functions, azure.data.tables, pydantic, pydantic_settings, jwt"
TIMER = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
SETTINGS = {
    "DEV8_JWT_SECRET": "x" * 32,
    "DEV8_TABLES_CONNECTION": "UseDevelopmentStorage=true",
    "DEV8_SECRETS_KEY": "ZGV2OC1sb2NhbC1vbmx5LXNlYWxpbmcta2V5LTMyYiE=",
    "DEV8_COMPUTE_BACKEND": "simulated",
}


def median_import_ms(module: str, samples: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(samples):
        out = subprocess.run(
            [sys.executable, "-c", TIMER.format(module=module)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        times.append(float(out) * 1000)
    return statistics.median(times)


def environment(cache: Path, app_bytecode: bool) -> dict[str, str]:
    env = {**os.environ, **SETTINGS}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    # One import writes the cache; without app bytecode, Dev8's is never written (see below).
    subprocess.run([sys.executable, "-c", f"import {SDKS}, function_app"], cwd=ROOT, env=env, check=True)
    if not app_bytecode:
        mirrored = cache / ROOT.relative_to(ROOT.anchor)  # the prefix mirrors source paths
        for path in mirrored.rglob("*.pyc"):
            if ".venv" not in path.parts:
                path.unlink()
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--no-bytecode", action="store_true", help="Dev8's modules compiled at each start")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dev8-cold-start-") as cache:
        env = environment(Path(cache), app_bytecode=not args.no_bytecode)
        base = median_import_ms("azure.functions", args.samples, env)
        sdks = median_import_ms(SDKS, args.samples, env)
        app = median_import_ms("function_app", args.samples, env)
    bytecode = "without" if args.no_bytecode else "with"
    print(f"median of {args.samples} fresh interpreters, Dev8's code {bytecode} bytecode")
    print(f"import azure.functions                         : {base:7.1f} ms")
    print(f"  + Durable, Table SDK, pydantic(-settings), jwt: {sdks:7.1f} ms (what a first request needs)")
    print(f"import function_app                            : {app:7.1f} ms")
    print(f"ratio                                          : {app / sdks:7.2f}x (goal <= {GOAL}x)")
    return 0


if __name__ == "__main__":
    from benchlib import before_and_after  # --before REV: the same run over REV's code first

    compared = before_and_after(__file__)
    sys.exit(main() if compared is None else compared)
