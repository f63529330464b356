"""scripts/compile-bytecode.sh, azure.yaml's prepackage step: the app's modules get bytecode that a
read-only package can use (checked against the source's hash, not its time), the package keeps
it (.funcignore), and an edited source is never shadowed by it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.infra.tooling import ROOT

SCRIPT = ROOT / "scripts" / "compile-bytecode.sh"
PACKAGES = ("api", "shared", "orchestrators", "timers")
CHECKED_HASH = 0b11  # PEP 552 flags: hash-based, check_source


def app_copy(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(ROOT / "function_app.py", app)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, app / package, ignore=shutil.ignore_patterns("__pycache__"))
    return app


def compile_in(app: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(app / "elsewhere")}  # must not divert it
    return subprocess.run([str(SCRIPT), str(app)], env=env, capture_output=True, text=True, check=True)


def bytecode_of(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


def test_every_module_gets_hash_checked_bytecode_beside_it(tmp_path: Path) -> None:
    assert sys.version_info[:2] == (3, 11), "the runtime's version (functionapp.bicep)"
    app = app_copy(tmp_path)
    compile_in(app)
    sources = [app / "function_app.py", *(p for pkg in PACKAGES for p in (app / pkg).rglob("*.py"))]
    assert len(sources) > 50
    for source in sources:
        compiled = bytecode_of(source)
        assert compiled.is_file(), source
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        assert flags == CHECKED_HASH, source
    assert not (app / "elsewhere").exists()


def test_an_edited_source_is_not_shadowed_by_its_bytecode(tmp_path: Path) -> None:
    app = app_copy(tmp_path)
    compile_in(app)
    errors = app / "shared" / "errors.py"
    errors.write_text(errors.read_text() + "\nEDITED = True\n")
    probe = "import shared.errors; print(getattr(shared.errors, 'EDITED', False))"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=app, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"


def test_the_package_keeps_the_bytecode_and_azd_runs_the_script() -> None:
    ignored = (ROOT / ".funcignore").read_text().split()
    assert not any("pycache" in line or line.endswith(".pyc") for line in ignored)
    assert "./scripts/compile-bytecode.sh" in (ROOT / "azure.yaml").read_text()
