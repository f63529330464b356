"""benchlib.before_and_after: one benchmark over an earlier commit's code, then this tree's."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def benchlib():
    spec = importlib.util.spec_from_file_location("benchlib", ROOT / "tests" / "benchmarks" / "benchlib.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pairs_alternate_the_earlier_code_and_this_tree(capfd):
    probe = ROOT / "tests" / "unit" / "bench_probe.py"
    code = benchlib().before_and_after(str(probe), ["--before", "HEAD", "--pairs", "2", "--rounds", "3"])
    assert code == 0
    out = capfd.readouterr().out
    headers = re.findall(r"===== (BEFORE|AFTER)\b.*\[pair (\d) of 2\] =====", out)
    assert headers == [("BEFORE", "1"), ("AFTER", "1"), ("BEFORE", "2"), ("AFTER", "2")]
    imported = re.findall(r"probe: shared from (\S+); options (.*)", out)
    assert len(imported) == 4
    trees = [Path(path).parents[1] for path, _ in imported]
    assert trees[1] == trees[3] == ROOT  # after: this tree's code
    assert trees[0] == trees[2] != ROOT and "dev8-before-" in str(trees[0])  # before: the export
    assert {options for _, options in imported} == {"['--rounds', '3']"}  # --before/--pairs consumed


def test_without_before_the_caller_measures_as_usual():
    assert benchlib().before_and_after("unused.py", ["--pairs", "2"]) is None
