"""Your account's commands: what you used and spent, everything held about you, and its erasure."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from cli.app import Exit, Json, Url, app, emit, err, out, session, table


@app.command()
def usage(
    month: Annotated[
        str | None, typer.Option("--month", help="YYYY-MM (UTC); this month by default.")
    ] = None,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """What you used and spent in a month, per environment (deleted ones included)."""
    with session(url) as api:
        found = api.usage(month)
    rows = [
        [
            e["environment_id"],
            e["name"] + (" (deleted)" if e["deleted"] else ""),
            round(e["compute_seconds"] / 3600, 2),
            round(e["storage_gb_hours"], 1),
            f"{e['cost']:.4f}",
        ]
        for e in found["environments"]
    ]
    totals = found["totals"]
    rows.append(
        [
            "total",
            "",
            round(totals["compute_seconds"] / 3600, 2),
            round(totals["storage_gb_hours"], 1),
            f"{totals['cost']:.4f}",
        ]
    )
    columns = ["id", "name", "compute hours", "storage GB-hours", f"cost ({found['currency']})"]
    emit(as_json, found, lambda: out.print(f"{found['month']}", table(columns, rows)))


@app.command("export")
def export_my_data(url: Url = None) -> None:
    """Everything the backend holds about you, as JSON (never a secret)."""
    with session(url) as api:
        found = api.export()
    print(json.dumps(found, indent=2))


@app.command("delete-my-data")
def delete_my_data(
    yes: Annotated[bool, typer.Option("--yes", help="Yes: delete everything, for good.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until nothing is left.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds --wait waits at most.")] = 900,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Delete every environment, workspace, snapshot and record about you (asks for --yes)."""
    if not yes:
        err.print("This deletes all your environments and everything held about you. Add --yes to do it.")
        raise typer.Exit(Exit.USAGE)
    with session(url) as api:
        answer = api.forget_me()
        err.print("Deleting everything held about you.")
        deadline = time.monotonic() + timeout
        while wait and api.export()["environments"]:
            if time.monotonic() > deadline:
                err.print("[yellow]Gave up waiting:[/yellow] still deleting.", highlight=False)
                raise typer.Exit(Exit.TIMED_OUT)
            time.sleep(1.0)
    emit(
        as_json, answer, lambda: err.print("Done." if wait else "Under way: `dev8 list` empties as it goes.")
    )
