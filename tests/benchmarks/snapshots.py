"""Workspace snapshots of a node project: the snapshot agent (docker/base/dev8-snapshot-agent) with
the real restic, on this machine's disk.

The project: PACKAGES local npm packages of FILES_PER_PACKAGE small modules each (about 20,000
files in node_modules), installed with `npm install --offline` from tarballs made here, so no
network is needed and every run installs the same thing. Measured, each a median of --samples:
- npm install: the install itself, for scale;
- first snapshot: time, bytes restic added, files;
- incremental snapshot after editing one file (goals: under 2 s, under 1 MB added);
- a snapshot when nothing changed (the interval's common case: nothing is kept);
- restore into an empty tree: what it adds to a start (goal: under 10 s).
Prints the figures; asserts nothing about time.

Needs restic (scripts/install-restic.sh) and npm. Run: `make bench-snapshots`, or
`.venv/bin/python tests/benchmarks/snapshots.py [--samples 3]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import ROOT

AGENT = ROOT / "docker" / "base" / "dev8-snapshot-agent"
PACKAGES = 40
FILES_PER_PACKAGE = 500
PASSWORD = "benchmark-password-0123456789abcdef"


def make_packages(scratch: Path) -> list[Path]:
    tarballs = []
    npm = shutil.which("npm")
    assert npm, "npm is needed"
    for number in range(PACKAGES):
        package = scratch / "src" / f"dep{number:02d}"
        (package / "lib").mkdir(parents=True)
        (package / "package.json").write_text(
            json.dumps({"name": f"dev8-bench-dep{number:02d}", "version": "1.0.0"})
        )
        for module in range(FILES_PER_PACKAGE - 1):
            body = (
                f"// module {module} of dep {number}\nmodule.exports = function () {{ return {module}; }};\n"
            )
            (package / "lib" / f"m{module:04d}.js").write_text(body * 4)
        packed = subprocess.run(
            [npm, "pack", "--silent", str(package)], cwd=scratch, check=True, capture_output=True, text=True
        )
        tarballs.append(scratch / packed.stdout.strip().splitlines()[-1])
    return tarballs


def npm_install(project: Path, tarballs: list[Path]) -> float:
    project.mkdir(parents=True)
    (project / "package.json").write_text('{"name": "bench-app", "version": "0.0.0", "private": true}\n')
    (project / "index.js").write_text("console.log('hello');\n")
    began = time.perf_counter()
    subprocess.run(
        ["npm", "install", "--offline", "--no-audit", "--no-fund", *map(str, tarballs)],
        cwd=project,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - began


def agent(base: Path, tree: Path, *args: str) -> tuple[float, dict[str, Any]]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(base / "home"),
        "DEV8_SNAPSHOT_REPOSITORY": str(base / "share" / "snapshots"),
        "DEV8_SNAPSHOT_PASSWORD": PASSWORD,
        "DEV8_WORKSPACE_DIR": str(tree),
        "DEV8_SNAPSHOT_CACHE": str(base / "cache"),
    }
    began = time.perf_counter()
    done = subprocess.run(["/bin/sh", str(AGENT), *args], env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - began, json.loads(done.stdout.strip().splitlines()[-1])


def count_files(tree: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(tree))


def size_of(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def sample(scratch: Path, tarballs: list[Path]) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(dir=scratch))
    (base / "home").mkdir()
    tree = base / "tree"
    install = npm_install(tree, tarballs)
    first_time, first = agent(base, tree, "snapshot", "manual")
    (tree / "index.js").write_text("console.log('hello, edited');\n")
    edit_time, edit = agent(base, tree, "snapshot", "interval")
    same_time, same = agent(base, tree, "snapshot", "interval")
    assert same["event"] == "unchanged", same
    restore_time, restored = agent(base, base / "restored", "restore")
    assert restored["event"] == "restored" and count_files(base / "restored") == count_files(tree)
    figures = {
        "files": float(count_files(tree)),
        "npm_install_s": install,
        "first_s": first_time,
        "first_added_mb": first["bytes_added"] / 1e6,
        "repository_mb": size_of(base / "share" / "snapshots") / 1e6,
        "edit_s": edit_time,
        "edit_added_kb": edit["bytes_added"] / 1e3,
        "unchanged_s": same_time,
        "restore_s": restore_time,
    }
    shutil.rmtree(base)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("restic") is None:
        raise SystemExit("restic is not installed: run scripts/install-restic.sh")
    with tempfile.TemporaryDirectory(prefix="dev8-bench-snapshots-") as scratch_dir:
        scratch = Path(scratch_dir)
        tarballs = make_packages(scratch)
        samples = []
        for number in range(args.samples):
            figures = sample(scratch, tarballs)
            samples.append(figures)
            print(
                f"sample {number + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()), flush=True
            )
    median = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    print(
        f"\nnode project, {median['files']:.0f} files (median of {len(samples)}):\n"
        f"  npm install (offline, from local tarballs)   {median['npm_install_s']:.2f} s\n"
        f"  first snapshot                               {median['first_s']:.2f} s, "
        f"{median['first_added_mb']:.2f} MB added, repository {median['repository_mb']:.2f} MB\n"
        f"  snapshot after editing one file              {median['edit_s']:.2f} s, "
        f"{median['edit_added_kb']:.1f} kB added\n"
        f"  snapshot when nothing changed                {median['unchanged_s']:.2f} s (nothing kept)\n"
        f"  restore into an empty tree (adds to a start) {median['restore_s']:.2f} s"
    )


if __name__ == "__main__":
    from benchlib import before_and_after  # --before REV: the same run over REV's code first

    compared = before_and_after(__file__)
    sys.exit(main() if compared is None else compared)
