"""The `dev8` commands. Output is for people by default (rich tables, a progress bar on stderr)
and for scripts with --json (stdout holds only the JSON); exit codes say what happened."""

from __future__ import annotations

import json
import os
import sys
import webbrowser
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli import credentials
from cli.api import Api, ApiError, Unreachable
from cli.waiting import WaitFailed, WaitTimedOut, wait_for


class Exit(IntEnum):
    """What a script can tell from `$?`."""

    OK = 0
    API_ERROR = 1  # the API refused the request (its message is printed)
    USAGE = 2  # a bad option or argument (click's own code)
    UNAUTHORIZED = 3  # no token, or the API did not accept it: run `dev8 login`
    NOT_FOUND = 4  # no such environment (or another owner's)
    FAILED = 5  # --wait saw the environment end in ERROR
    TIMED_OUT = 6  # --wait gave up
    UNREACHABLE = 7  # nothing answered at the API's URL


app = typer.Typer(help="Dev8 cloud development environments.", no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of tables.")]
Url = Annotated[str | None, typer.Option("--url", help="The API's base URL (default: the saved login).")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait until it gets there, with progress.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds --wait waits at most.")]
EnvironmentId = Annotated[str, typer.Argument(help="The environment's id (env-...).")]


@contextmanager
def session(url: str | None, token: str | None = None) -> Iterator[Api]:
    """An API client (with `token`, else the saved or $DEV8_TOKEN one), and every failure turned
    into a plain message and its exit code."""
    saved = credentials.load(url)
    if token is not None:
        saved = credentials.Credentials(saved.url, token)
    api = Api(saved.url, saved.token)
    try:
        yield api
    except ApiError as error:
        err.print(f"[red]Error:[/red] {error.message} [dim]({error.code})[/dim]", highlight=False)
        for problem in error.details if isinstance(error.details, list) else []:
            if isinstance(problem, dict) and "field" in problem:
                err.print(f"  {problem['field']}: {problem.get('message', '')}", highlight=False)
        if error.status == 401:
            if not saved.token:
                err.print("Not logged in: run `dev8 login` or set DEV8_TOKEN.")
            raise typer.Exit(Exit.UNAUTHORIZED) from None
        raise typer.Exit(Exit.NOT_FOUND if error.status == 404 else Exit.API_ERROR) from None
    except Unreachable as problem:
        err.print(f"[red]Error:[/red] {problem}. Is the API running (`make dev`)?", highlight=False)
        raise typer.Exit(Exit.UNREACHABLE) from None
    except WaitFailed as failed:
        err.print(f"[red]{failed.environment['id']} is in ERROR:[/red] {failed}", highlight=False)
        raise typer.Exit(Exit.FAILED) from None
    except WaitTimedOut as late:
        err.print(f"[yellow]Gave up waiting:[/yellow] {late}", highlight=False)
        raise typer.Exit(Exit.TIMED_OUT) from None
    finally:
        api.close()


def emit(as_json: bool, data: Any, human: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        human()


def _table(columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(*columns, box=None, header_style="bold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    return table


def _describe(env: dict[str, Any]) -> None:
    fields = ["id", "name", "status", "status_reason", "template", "size", "vs_code_url"]
    fields += ["ssh_connection_string", "idle_stop_at", "estimated_cost_per_hour"]
    out.print(_table(["field", "value"], [[name, env.get(name)] for name in fields]))
    if env.get("progress"):
        out.print(
            _table(
                ["phase", "started", "ended"],
                [[s["phase"], s["started_at"], s["ended_at"]] for s in env["progress"]],
            )
        )


# --- login ---------------------------------------------------------------------------------------


@app.command()
def login(
    url: Url = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="A file holding the token (else $DEV8_TOKEN).")
    ] = None,
) -> None:
    """Save the API's URL and your token (from $DEV8_TOKEN or --token-file), after checking it."""
    token = token_file.read_text().strip() if token_file else os.environ.get(credentials.TOKEN_VARIABLE)
    if not token:
        err.print("Give a token: set DEV8_TOKEN or pass --token-file (`make dev` prints one).")
        raise typer.Exit(Exit.USAGE)
    chosen = credentials.Credentials(credentials.load(url).url, token)
    with session(url, token) as api:
        api.templates()  # a call that needs a valid token
    where = credentials.save(chosen)
    err.print(f"Logged in to {chosen.url} (saved in {where}).")


@app.command()
def logout() -> None:
    """Forget the saved token."""
    err.print("Logged out." if credentials.forget() else "Not logged in.")


# --- the catalog and environments -------------------------------------------------------------------


@app.command()
def templates(url: Url = None, as_json: Json = False) -> None:
    """The templates and sizes you can create."""
    with session(url) as api:
        catalog = api.templates()

    def human() -> None:
        out.print(
            _table(
                ["template", "name", "ports"],
                [[t["name"], t["display_name"], t["ports"]] for t in catalog["templates"]],
            )
        )
        sizes = catalog["sizes"]
        out.print(
            _table(
                ["size", "cpu", "memory GB", "storage GB", "$/hour"],
                [
                    [s["name"], s["cpu_cores"], s["memory_gb"], s["storage_gb"], s["estimated_cost_per_hour"]]
                    for s in sizes
                ],
            )
        )

    emit(as_json, catalog, human)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="A name for the environment.")],
    template: Annotated[
        str, typer.Option("--template", "-t", help="node, python, go, fullstack...")
    ] = "node",
    size: Annotated[str | None, typer.Option("--size", "-s", help="small, medium, large...")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE (repeatable).")] = None,
    repository: Annotated[str | None, typer.Option("--repo", help="An https git URL to clone.")] = None,
    wait: Wait = False,
    timeout: Timeout = 900,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Create an environment (with --wait, until it runs)."""
    body: dict[str, Any] = {"name": name, "template": template}
    if size:
        body["size"] = size
    if repository:
        body["repository_url"] = repository
    variables = {}
    for pair in env or []:
        key, sep, value = pair.partition("=")
        if not sep:
            err.print(f"--env takes NAME=VALUE, not {pair!r}")
            raise typer.Exit(Exit.USAGE)
        variables[key] = value
    if variables:
        body["environment_variables"] = variables
    with session(url) as api:
        made = api.create(body)
        err.print(f"Created {made['id']} ({made['status']}).")
        if wait:
            made = wait_for(api, made["id"], "RUNNING", timeout, err) or made
    emit(as_json, made, lambda: _describe(made))


@app.command("list")
def list_environments(
    status: Annotated[str | None, typer.Option("--status", help="Only those in this status.")] = None,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Your environments."""
    with session(url) as api:
        found = api.environments(status)
    rows = [[e["id"], e["name"], e["status"], e["template"], e["size"], e["vs_code_url"]] for e in found]
    emit(as_json, found, lambda: out.print(_table(["id", "name", "status", "template", "size", "url"], rows)))


@app.command()
def get(environment_id: EnvironmentId, url: Url = None, as_json: Json = False) -> None:
    """One environment, with its provisioning progress."""
    with session(url) as api:
        env = api.environment(environment_id)
    emit(as_json, env, lambda: _describe(env))


@app.command("open")
def open_environment(
    environment_id: EnvironmentId,
    browser: Annotated[bool, typer.Option("--browser", help="Open the IDE in your browser.")] = False,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """The IDE's URL and password (or open it in a browser)."""
    with session(url) as api:
        details = api.connection(environment_id)
    if browser and details.get("vs_code_url"):
        webbrowser.open(details["vs_code_url"])

    def human() -> None:
        out.print(f"URL:      {details['vs_code_url']}", highlight=False)
        out.print(f"Password: {details['password']}", highlight=False)
        if details.get("ssh_connection_string"):
            out.print(f"SSH:      {details['ssh_connection_string']}", highlight=False)

    emit(as_json, details, human)


def _lifecycle(
    verb: str,
    target: str | None,
    environment_id: str,
    wait: bool,
    timeout: float,
    url: str | None,
    as_json: bool,
) -> None:
    with session(url) as api:
        env: dict[str, Any] | None = api.command(environment_id, verb)
        assert env is not None
        err.print(f"{environment_id}: {env['status']}.")
        if wait:
            env = wait_for(api, environment_id, target, timeout, err)
    if env is None:
        emit(as_json, {"id": environment_id, "deleted": True}, lambda: None)
        return
    emit(as_json, env, lambda: _describe(env))


@app.command()
def start(
    environment_id: EnvironmentId,
    wait: Wait = False,
    timeout: Timeout = 900,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Start a stopped environment."""
    _lifecycle("start", "RUNNING", environment_id, wait, timeout, url, as_json)


@app.command()
def stop(
    environment_id: EnvironmentId,
    wait: Wait = False,
    timeout: Timeout = 900,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Stop a running environment (its workspace is kept)."""
    _lifecycle("stop", "STOPPED", environment_id, wait, timeout, url, as_json)


@app.command()
def delete(
    environment_id: EnvironmentId,
    wait: Wait = False,
    timeout: Timeout = 900,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Delete an environment and its workspace."""
    _lifecycle("delete", None, environment_id, wait, timeout, url, as_json)


@app.command()
def events(environment_id: EnvironmentId, url: Url = None, as_json: Json = False) -> None:
    """The environment's audit trail, newest first."""
    with session(url) as api:
        found = api.events(environment_id)
    rows = [[e["at"], e["from_status"], e["to_status"], e["actor"], e["reason"]] for e in found]
    emit(as_json, found, lambda: out.print(_table(["at", "from", "to", "by", "reason"], rows)))


@app.command()
def logs(
    environment_id: EnvironmentId,
    tail: Annotated[int, typer.Option("--tail", "-n", min=1, max=1000, help="Lines from the end.")] = 200,
    container: Annotated[str, typer.Option("--container", help="ide or tls.")] = "ide",
    url: Url = None,
    as_json: Json = False,
) -> None:
    """The container's recent log (secrets taken out)."""
    with session(url) as api:
        found = api.logs(environment_id, container, tail)

    def human() -> None:
        text = found["logs"]
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")

    emit(as_json, found, human)


@app.command()
def snapshots(
    environment_id: EnvironmentId,
    take: Annotated[bool, typer.Option("--take", help="Ask the running workspace for one now.")] = False,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """The workspace's snapshots (or --take one)."""
    with session(url) as api:
        if take:
            asked = api.take_snapshot(environment_id)
            emit(
                as_json,
                asked,
                lambda: err.print(f"Asked for a snapshot ({asked['id']}); it is listed once taken."),
            )
            return
        found = api.snapshots(environment_id)
    rows = [[s["id"], s["taken_at"], s["reason"], s["files"], s["bytes_added"]] for s in found]
    emit(as_json, found, lambda: out.print(_table(["id", "taken", "why", "files", "bytes added"], rows)))


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
    emit(as_json, found, lambda: out.print(f"{found['month']}", _table(columns, rows)))


@app.command("export")
def export_my_data(url: Url = None) -> None:
    """Everything the backend holds about you, as JSON (never a secret)."""
    with session(url) as api:
        found = api.export()
    print(json.dumps(found, indent=2))


def run() -> None:
    """The console script."""
    app()
