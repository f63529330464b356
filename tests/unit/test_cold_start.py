"""Importing the app with the simulated/local backends loads none of the heavy Azure SDKs, and leaves
what it imported out of the garbage collector's full passes."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = [
    "azure.mgmt.containerinstance",
    "azure.mgmt.storage",
    "azure.storage.fileshare",
    "azure.identity",
    "argon2",
]
PROBE = """
import gc, json, sys
import function_app
print(json.dumps({"loaded": [m for m in sys.argv[1:] if m in sys.modules],
                  "functions": len(function_app.app.get_functions()),
                  "frozen": gc.get_freeze_count(), "collected": len(gc.get_objects())}))
"""


def test_function_app_imports_no_heavy_sdk():
    env = {
        **os.environ,
        "DEV8_JWT_SECRET": "x" * 32,
        "DEV8_TABLES_CONNECTION": "UseDevelopmentStorage=true",
        "DEV8_SECRETS_KEY": "ZGV2OC1sb2NhbC1vbmx5LXNlYWxpbmcta2V5LTMyYiE=",
        "DEV8_COMPUTE_BACKEND": "simulated",
        "DEV8_WORKSPACE_BACKEND": "local",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *HEAVY], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout)
    assert report["loaded"] == []
    assert report["functions"] >= 20  # the app really loaded: routes, orchestrators, activities
    # Modules, classes and functions live as long as the worker: a full collection under load
    # walked them all (about 30 ms, every request in flight waiting) until they were frozen.
    assert report["frozen"] > 10 * report["collected"]
