"""Where tests/infra find their tools, and what happens when one is missing.

The tools come from `bash scripts/install-infra-tools.sh`: a venv of their own (.venv-infra, or
INFRA_VENV) holding checkov, pycep-parser, tree-sitter-bicep, dockerfile-parse, hadolint and PyYAML;
shellcheck on PATH; sshd and caddy unpacked under .venv-infra/debs. A missing tool skips the test
with the reason printed, except under CI=true, where it fails: CI must never pass without the checks.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA_VENV = Path(os.environ.get("INFRA_VENV", ROOT / ".venv-infra"))
DEBS = INFRA_VENV / "debs"
PROBE = Path(__file__).with_name("infra_probe.py")
INSTALL = "bash scripts/install-infra-tools.sh"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def missing(tool: str) -> NoReturn:
    reason = f"{tool} is not installed; run `{INSTALL}`"
    if in_ci():
        pytest.fail(f"{reason}. Infra and image checks must not be skipped in CI.", pytrace=False)
    print(f"SKIP: {reason}")
    pytest.skip(reason)


def venv_tool(name: str) -> Path:
    path = INFRA_VENV / "bin" / name
    if not path.exists():
        missing(f"{name} (in {INFRA_VENV})")
    return path


def infra_python() -> Path:
    return venv_tool("python")


def system_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing(name)
    return found


def _multiarch() -> str:
    return f"{platform.machine()}-linux-gnu"


def unpacked(relative: str) -> tuple[Path, dict[str, str]]:
    """A binary unpacked from a Debian package, with the environment that finds its libraries."""
    path = DEBS / relative
    if not path.exists():
        missing(f"{relative} (unpacked under {DEBS})")
    library_dirs = [DEBS / "usr" / "lib" / _multiarch(), DEBS / "lib" / _multiarch()]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(str(d) for d in library_dirs if d.exists())
    return path, env


def run(args: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("cwd", ROOT)
    kwargs.setdefault("timeout", 600)
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, **kwargs)


@functools.cache
def _probe(command: str, files: tuple[str, ...]) -> dict[str, Any]:
    result = run([infra_python(), PROBE, command, *files])
    assert result.returncode == 0, f"infra_probe {command} failed:\n{result.stderr}"
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def probe(command: str, *paths: Path) -> dict[Path, Any]:
    """Run infra_probe.py COMMAND on the files (in the infra venv); results keyed by path."""
    results = _probe(command, tuple(str(p.resolve()) for p in paths))
    return {Path(name): value for name, value in results.items()}


def checkov(directory: str, framework: str) -> dict[str, Any]:
    """checkov's JSON report for one framework over one directory (offline: --skip-download)."""
    result = run(
        [
            venv_tool("checkov"),
            "--directory",
            directory,
            "--framework",
            framework,
            "--output",
            "json",
            "--skip-download",
            "--compact",
        ],
    )
    assert result.stdout.strip(), f"checkov printed nothing (exit {result.returncode}):\n{result.stderr}"
    report = json.loads(result.stdout)
    if isinstance(report, list):
        matching = [r for r in report if r.get("check_type") == framework]
        assert len(matching) == 1, (
            f"expected one {framework} report, got {[r.get('check_type') for r in report]}"
        )
        report = matching[0]
    assert report.get("check_type", framework) == framework, report
    return dict(report)
