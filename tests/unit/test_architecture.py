"""The layers' import rules, as the README's architecture section states them, checked on every
production module's imports (module level and inside functions alike)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("shared", "api", "orchestrators", "timers", "devhost")
MAX_LINES = 450

# Where a module lives -> the first-party packages it may import (a prefix allows everything under it).
TOP = ("shared.errors", "shared.settings", "shared.secrets", "shared.agent_tokens", "shared.observability")
TOP += ("shared.templates",)  # the deployed template catalog, read once like the settings
TOP += ("shared.recent",)  # a bounded in-memory map, no I/O
ENTRY = ("shared.wiring", "shared.domain", "shared.services", *TOP)  # what the Functions modules use
ALLOWED: dict[str, tuple[str, ...]] = {
    "shared.domain": ("shared.domain", "shared.errors"),
    "shared.services": ("shared.domain", "shared.services", *TOP),
    "shared.adapters": ("shared.adapters", "shared.domain", "shared.services.ports", *TOP),
    "shared.wiring": ("shared",),  # the composition root
    "shared": ("shared.domain", *TOP),
    "api": ("api", "orchestrators.launch", "shared.auth", *ENTRY),  # auth: the caller's Principal
    "orchestrators": ("orchestrators", *ENTRY),
    "timers": ("timers", "orchestrators", *ENTRY),
    "devhost.host": ("devhost.host",),  # generic: runs any v2 app, knows nothing of Dev8
    "devhost": ("devhost", "shared", "function_app"),
}
THIRD_PARTY_IN_DOMAIN = {"pydantic"}  # the domain's only dependency outside the standard library
IO_MODULES = {"os", "io", "pathlib", "shutil", "socket", "subprocess", "threading", "time", "random", "http"}


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in PRODUCTION:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found.append((name, path))
    return found


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def rule_for(module: str) -> tuple[str, ...]:
    home = max((key for key in ALLOWED if module == key or module.startswith(key + ".")), key=len)
    return ALLOWED[home]


def first_party(name: str) -> bool:
    return name.split(".")[0] in (*PRODUCTION, "function_app", "tests")


def allowed(name: str, rule: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in rule) or any(
        prefix.startswith(name + ".")
        for prefix in rule  # `from shared import wiring` names the package
    )


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda value: str(value))
def test_every_import_points_down_its_layer(module: str, path: Path) -> None:
    rule = rule_for(module)
    wrong = sorted(name for name in imports(path) if first_party(name) and not allowed(name, rule))
    assert wrong == [], f"{module} may import only {rule}"


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda value: str(value))
def test_the_domain_is_pure(module: str, path: Path) -> None:
    if not module.startswith("shared.domain"):
        return
    outside = {
        name.split(".")[0]
        for name in imports(path)
        if not first_party(name) and name.split(".")[0] not in sys.stdlib_module_names
    }
    assert outside <= THIRD_PARTY_IN_DOMAIN
    assert not {name.split(".")[0] for name in imports(path)} & IO_MODULES
    assert "open(" not in path.read_text()


def test_production_never_imports_the_test_helpers_and_only_the_host_glue_imports_devhost() -> None:
    for module, path in modules():
        names = imports(path)
        assert not any(name.split(".")[0] == "tests" for name in names), module
        if not module.startswith("devhost"):
            assert not any(name.split(".")[0] == "devhost" for name in names), module


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda value: str(value))
def test_no_production_module_is_over_the_size_limit(module: str, path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES, f"{module}: split it by job"


def test_the_rules_catch_a_wrong_arrow() -> None:
    assert not allowed("shared.adapters.tables.records", rule_for("shared.services.environments"))
    assert not allowed("shared.settings", rule_for("shared.domain.catalog"))
    assert not allowed("shared.wiring", rule_for("shared.adapters.compute.aci"))
    assert not allowed("shared.settings", rule_for("devhost.host.server"))
    assert allowed("shared.domain.lifecycle", rule_for("shared.services.sweeps"))
