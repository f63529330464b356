"""Local backend: from POST /environments to the VS Code workbench visible in headless Chromium.

A real `python -m devhost` with the `local` compute backend (a code-server per environment). Each
sample: start Chromium with a fresh profile (nothing cached: a first visit), then create, poll GET
every 100 ms until RUNNING, GET /connection, open the URL, log in, wait for `.monaco-workbench` to be
visible; then delete the environment and wait for its 404 before the next sample (so the samples do
not compete for the CPU). The browser starts before the create because a user's browser is open
when they press Create; its start is printed beside the sample, not counted in it.
Prints each sample split into create -> RUNNING, RUNNING -> login page and login -> workbench,
and the medians.

Needs code-server (scripts/install-code-server.sh) and Chromium (scripts/install-browser.sh).
Run: `make bench-e2e`, or `.venv/bin/python tests/benchmarks/workbench_ready.py [--samples 5]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT  # also puts the repository on sys.path

from tests.e2e import harness
from tests.e2e.harness import Browser, DevHost, kill_all


def sample(host: DevHost, browser: Browser, number: int) -> tuple[float, float, float, float]:
    """(browser start, create -> RUNNING, create -> login page, create -> workbench), seconds."""
    api = host.api()
    try:
        launched = time.perf_counter()
        page = browser.new_page()
        began = time.perf_counter()
        env_id = api.create(f"bench-{number}", size="small")["id"]
        while (env := api.get(env_id)) is not None and env["status"] == "CREATING":
            time.sleep(0.1)
        if env is None or env["status"] != "RUNNING":
            raise RuntimeError(f"sample {number}: the environment settled as {env}")
        running = time.perf_counter()
        connection = api.connection(env_id)
        page.goto(connection["vs_code_url"])
        login = time.perf_counter()
        harness.sign_in(page, connection["password"])
        harness.wait_for_workbench(page)
        visible = time.perf_counter()
        if number == 0:
            browser.screenshot(page, "workbench")
        browser.close_pages()
        api.command(env_id, "delete")
        api.wait_gone(env_id)
        return began - launched, running - began, login - began, visible - began
    finally:
        api.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    missing = harness.missing_tools()
    if missing:
        print("cannot run: missing " + "; ".join(missing), file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="dev8-bench-e2e-") as workdir:
        host = DevHost.start(Path(workdir), compute_backend="local")
        browser = Browser(Path(workdir))
        results = []
        try:
            for number in range(args.samples):
                start, to_running, to_login, to_workbench = sample(host, browser, number)
                results.append((to_running, to_login, to_workbench))
                print(
                    f"sample {number + 1}: RUNNING after {to_running:.2f} s, login page after "
                    f"{to_login:.2f} s, workbench visible after {to_workbench:.2f} s (login -> workbench "
                    f"{to_workbench - to_login:.2f} s; the browser had started in {start:.2f} s before)",
                    flush=True,
                )
            shot = Path(workdir) / "workbench.png"
            if shot.exists():  # kept outside the temporary directory, to look at after the run
                kept = ROOT / ".dev8" / "bench-workbench.png"
                kept.parent.mkdir(exist_ok=True)
                kept.write_bytes(shot.read_bytes())
                print(f"screenshot of the first sample's workbench: {kept}")
        finally:
            browser.close()
            host.stop()
            kill_all(host.leftovers())
    running, login, visible = (statistics.median(column) for column in zip(*results, strict=True))
    after_login = statistics.median(w - g for _, g, w in results)
    print(
        f"\nlocal backend, median of {len(results)}: create -> RUNNING {running:.2f} s; "
        f"create -> workbench visible {visible:.2f} s (goal < 8 s; login page at {login:.2f} s, "
        f"login -> workbench {after_login:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    from benchlib import before_and_after  # --before REV: the same run over REV's code first

    compared = before_and_after(__file__)
    sys.exit(main() if compared is None else compared)
