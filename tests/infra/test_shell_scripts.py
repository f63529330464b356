"""shellcheck passes on every shell script of the repository and on every `run:` step of the
workflows (as GitHub runs them: bash)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.infra.tooling import ROOT, probe, run, system_tool

SKIP_DIRS = {
    ".git",
    "node_modules",
    ".venv",
    ".venv-infra",
    ".dev8",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
}
# Scripts this issue ships; the discovery below must find at least these.
EXPECTED = {
    "infra/hooks/postprovision.sh",
    "docker/base/entrypoint.sh",
    "docker/base/dev8-workspace-setup",
    "docker/base/dev8-activity-agent",
    "docker/base/profile.sh",
    "docker/build.sh",
    "docker/lib/install-node.sh",
    "docker/lib/install-python.sh",
    "docker/lib/install-go.sh",
    "docker/lib/install-extensions.sh",
    "docker/lib/install-rust.sh",
    "docker/lib/install-java.sh",
    "docker/lib/install-data-science.sh",
    "docker/lib/install-ai-clis.sh",
    "docker/base/dev8-ai-cli",
    "scripts/install-infra-tools.sh",
    "scripts/install-sshd.sh",
}
SHEBANG = re.compile(rb"^#!\s*(/usr/bin/env\s+)?(/bin/|/usr/bin/)?(ba|da)?sh\b")


def shell_scripts() -> list[Path]:
    found = []
    stack = [ROOT]
    while stack:
        directory = stack.pop()
        for path in directory.iterdir():
            if path.is_dir():
                if path.name not in SKIP_DIRS and not path.name.startswith(".venv"):
                    stack.append(path)
            elif path.suffix in (".sh", ".bash") or (
                path.is_file() and SHEBANG.match(path.read_bytes()[:64])
            ):
                found.append(path)
    return sorted(found)


def test_the_shipped_scripts_are_found() -> None:
    found = {str(p.relative_to(ROOT)) for p in shell_scripts()}
    assert found >= EXPECTED, EXPECTED - found


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck_passes(script: Path) -> None:
    shellcheck = system_tool("shellcheck")
    result = run([shellcheck, "--external-sources", "--severity=style", script])
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_catches_a_bad_script(tmp_path: Path) -> None:
    shellcheck = system_tool("shellcheck")
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\nrm -rf $1/*\n")
    assert run([shellcheck, bad]).returncode != 0


def test_executable_scripts_have_the_executable_bit() -> None:
    for name in EXPECTED - {"docker/base/profile.sh"}:
        assert (ROOT / name).stat().st_mode & 0o111, f"{name} is not executable"


def test_workflow_run_steps_pass_shellcheck(tmp_path: Path) -> None:
    shellcheck = system_tool("shellcheck")
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    parsed = probe("yaml", *workflows)
    checked = 0
    for workflow, document in parsed.items():
        for job_name, job in document["jobs"].items():
            for index, step in enumerate(job.get("steps", [])):
                if "run" not in step:
                    continue
                # GitHub substitutes ${{ }} expressions before bash sees the script.
                body = re.sub(r"\$\{\{.*?\}\}", "expression", step["run"])
                script = tmp_path / f"{workflow.stem}-{job_name}-{index}.sh"
                script.write_text(f"#!/usr/bin/env bash\nset -eo pipefail\n{body}")
                result = run([shellcheck, "--severity=style", script])
                assert result.returncode == 0, f"{workflow.name} {job_name} step {index}:\n{result.stdout}"
                checked += 1
    assert checked >= 8, checked
