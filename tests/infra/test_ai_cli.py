"""The AI coding tools' launcher (docker/base/dev8-ai-cli), the real script run by /bin/sh: it runs
the tool named by how it is called on the tools' own node, with the tool's script resolved, so the
project's `node` on PATH never decides; other names and missing tools are refused. And the base
image installs the four tools at pinned versions with that launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.test_images import DOCKER, arg_defaults, instructions
from tests.infra.tooling import ROOT, probe

LAUNCHER = ROOT / "docker" / "base" / "dev8-ai-cli"
TOOLS = ("copilot", "claude", "gemini", "codex")


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    """/opt/dev8-ai as npm lays it out: bin/<tool> links into lib/node_modules, and a node that
    says what it was asked to run."""
    root = tmp_path / "dev8-ai"
    (root / "bin").mkdir(parents=True)
    node = root / "bin" / "node"
    node.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    node.chmod(0o755)
    for tool in TOOLS:
        script = root / "lib" / "node_modules" / f"@vendor/{tool}" / "cli.js"
        script.parent.mkdir(parents=True)
        script.write_text("#!/usr/bin/env node\n")
        (root / "bin" / tool).symlink_to(script)
    return root


def launch(tmp_path: Path, prefix: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    link = tmp_path / "path" / name
    link.parent.mkdir(exist_ok=True)
    if not link.exists():
        link.symlink_to(LAUNCHER)
    env = {"PATH": "/usr/bin:/bin", "DEV8_AI_PREFIX": str(prefix), "ANTHROPIC_API_KEY": "sk-ant-secret"}
    return subprocess.run(
        [str(link), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.parametrize("tool", TOOLS)
def test_each_tool_runs_on_the_tools_own_node(tmp_path: Path, prefix: Path, tool: str) -> None:
    ran = launch(tmp_path, prefix, tool, "--version", "two words")
    assert ran.returncode == 0, ran.stderr
    script = (prefix / "lib" / "node_modules" / f"@vendor/{tool}" / "cli.js").resolve()
    assert json.loads(ran.stdout) == [str(script), "--version", "two words"]
    assert "sk-ant-secret" not in ran.stdout + ran.stderr  # the key stays in the environment


def test_other_names_and_missing_tools_are_refused(tmp_path: Path, prefix: Path) -> None:
    other = launch(tmp_path, prefix, "python3")
    assert other.returncode == 64 and "copilot, claude, gemini or codex" in other.stderr
    os.remove(prefix / "bin" / "codex")
    missing = launch(tmp_path, prefix, "codex")
    assert missing.returncode == 127 and "not installed" in missing.stderr


def test_the_base_image_installs_the_four_tools_pinned_with_the_launcher() -> None:
    base = probe("docker", DOCKER / "base" / "Dockerfile")[DOCKER / "base" / "Dockerfile"]
    defaults = arg_defaults(base)
    for name in ("COPILOT_CLI_VERSION", "CLAUDE_CODE_VERSION", "GEMINI_CLI_VERSION", "CODEX_CLI_VERSION"):
        assert defaults[name][0].isdigit(), name  # pinned (the version rule: test_images)
    runs = " ".join(instructions(base, "RUN"))
    assert "install -m 755 /opt/dev8-build/dev8-ai-cli /usr/local/bin/dev8-ai-cli" in runs
    assert "install-ai-clis.sh" in runs
    script = (ROOT / "docker" / "lib" / "install-ai-clis.sh").read_text()
    for package in (
        "@github/copilot@",
        "@anthropic-ai/claude-code@",
        "@google/gemini-cli@",
        "@openai/codex@",
    ):
        assert package in script
    assert 'ln -sf /usr/local/bin/dev8-ai-cli "/usr/local/bin/$tool"' in script
