"""What every `dev8` command shares: the typer app, the consoles, the API session with its
failures turned into messages and exit codes, and JSON-or-table output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
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


def table(columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(*columns, box=None, header_style="bold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    return table


def describe(env: dict[str, Any]) -> None:
    fields = ["id", "name", "status", "status_reason", "template", "size", "vs_code_url"]
    fields += ["ssh_connection_string", "idle_stop_at", "estimated_cost_per_hour"]
    out.print(table(["field", "value"], [[name, env.get(name)] for name in fields]))
    if env.get("progress"):
        out.print(
            table(
                ["phase", "started", "ended"],
                [[s["phase"], s["started_at"], s["ended_at"]] for s in env["progress"]],
            )
        )


def created(
    api: Api, made: dict[str, Any], wait: bool, timeout: float, as_json: bool, source: str = ""
) -> None:
    """A new environment said, waited for with --wait (until RUNNING), then shown."""
    err.print(f"Created {made['id']}{source} ({made['status']}).")
    if wait:
        made = wait_for(api, made["id"], "RUNNING", timeout, err) or made
    emit(as_json, made, lambda: describe(made))
