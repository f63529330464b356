"""The `dev8` commands on environments. Output is for people by default (rich tables, a
progress bar on stderr) and for scripts with --json (stdout holds only the JSON); exit codes say
what happened (cli/app.py). Account commands are in cli/account.py."""

from __future__ import annotations

import os
import shlex
import sys
import webbrowser
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import credentials
from cli.api import ApiError
from cli.app import (
    EnvironmentId,
    Exit,
    Json,
    Timeout,
    Url,
    Wait,
    app,
    created,
    describe,
    emit,
    err,
    out,
    session,
    table,
)
from cli.waiting import wait_for

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
            table(
                ["template", "name", "ports"],
                [[t["name"], t["display_name"], t["ports"]] for t in catalog["templates"]],
            )
        )
        sizes = catalog["sizes"]
        out.print(
            table(
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
    dotfiles: Annotated[
        str | None, typer.Option("--dotfiles", help="An https git URL of your dotfiles, installed at start.")
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option("--secret", help="A secret: the NAME of your variable that holds it (repeatable)."),
    ] = None,
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
    if dotfiles:
        body["dotfiles_url"] = dotfiles
    variables = {}
    for pair in env or []:
        key, sep, value = pair.partition("=")
        if not sep:
            err.print(f"--env takes NAME=VALUE, not {pair!r}")
            raise typer.Exit(Exit.USAGE)
        variables[key] = value
    if variables:
        body["environment_variables"] = variables
    # A secret's value comes from this process's environment, never its command line (ps shows that).
    missing = [name for name in secret or [] if name not in os.environ]
    if missing:
        err.print(f"--secret names a variable of yours; not set: {', '.join(missing)}")
        raise typer.Exit(Exit.USAGE)
    if secret:
        body["secrets"] = {name: os.environ[name] for name in secret}
    with session(url) as api:
        created(api, api.create(body), wait, timeout, as_json)


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
    emit(as_json, found, lambda: out.print(table(["id", "name", "status", "template", "size", "url"], rows)))


@app.command()
def get(environment_id: EnvironmentId, url: Url = None, as_json: Json = False) -> None:
    """One environment, with its provisioning progress."""
    with session(url) as api:
        env = api.environment(environment_id)
    emit(as_json, env, lambda: describe(env))


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


@app.command()
def ssh(
    environment_id: EnvironmentId,
    command: Annotated[
        list[str] | None, typer.Argument(help="A command to run there (after --); none: a shell.")
    ] = None,
    identity: Annotated[
        Path | None, typer.Option("--identity", "-i", help="The private key of your SSH_PUBLIC_KEY.")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="An ssh -o option (repeatable).")
    ] = None,
    url: Url = None,
) -> None:
    """Connect to a running environment over SSH (key only: give SSH_PUBLIC_KEY as a secret)."""
    with session(url) as api:
        env = api.environment(environment_id)
    connection = env.get("ssh_connection_string")
    if not connection:
        why = "start it first" if env["status"] != "RUNNING" else "it has no SSH server"
        err.print(f"[red]Error:[/red] {environment_id} is {env['status']}: {why}.", highlight=False)
        raise typer.Exit(Exit.API_ERROR)
    *ssh_argv, destination = shlex.split(connection)  # "ssh -p PORT user@host", from the API
    extra = [*(["-i", str(identity)] if identity else []), *(f"-o{o}" for o in option or [])]
    sys.stdout.flush()
    os.execvp(ssh_argv[0], [*ssh_argv, *extra, destination, *(command or [])])  # noqa: S606  # ssh itself


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
    emit(as_json, env, lambda: describe(env))


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
def events(
    environment_id: EnvironmentId,
    every: Annotated[bool, typer.Option("--all", help="The whole trail, not the latest 100.")] = False,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """The environment's audit trail, newest first."""
    with session(url) as api:
        found = api.events(environment_id, every)
    rows = [[e["at"], e["from_status"], e["to_status"], e["actor"], e["reason"]] for e in found]
    emit(as_json, found, lambda: out.print(table(["at", "from", "to", "by", "reason"], rows)))


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
    emit(as_json, found, lambda: out.print(table(["id", "taken", "why", "files", "bytes added"], rows)))


@app.command()
def resize(
    environment_id: EnvironmentId,
    size: Annotated[str | None, typer.Option("--size", "-s", help="small, medium, large...")] = None,
    cpu: Annotated[float | None, typer.Option("--cpu", help="CPU cores.")] = None,
    memory: Annotated[float | None, typer.Option("--memory", help="Memory in GB.")] = None,
    storage: Annotated[int | None, typer.Option("--storage", help="Storage in GB (only grows).")] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Running: stop and start it now with the new size.")
    ] = False,
    wait: Wait = False,
    timeout: Timeout = 900,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Change the size: at the next start, or now with --restart."""
    wanted = {"size": size, "cpu_cores": cpu, "memory_gb": memory, "storage_gb": storage}
    body: dict[str, Any] = {name: value for name, value in wanted.items() if value is not None}
    if not body:
        err.print("Give --size, or any of --cpu, --memory, --storage.")
        raise typer.Exit(Exit.USAGE)
    if restart:
        body["restart"] = True
    with session(url) as api:
        try:
            env = api.update(environment_id, body)
        except ApiError as refused:
            if refused.code == "INVALID_STATE" and refused.details == {"status": "RUNNING"} and not restart:
                # The API's words name its body's field; here that is an option.
                raise replace(refused, message=f"{refused.message} (here: --restart)") from None
            raise
        restarting = env["status"] == "STOPPING"
        err.print(f"{environment_id}: {'restarting' if restarting else 'resized at the next start'}.")
        if wait and restarting:
            env = wait_for(api, environment_id, "RUNNING", timeout, err) or env
    emit(as_json, env, lambda: describe(env))


@app.command()
def metrics(
    environment_id: EnvironmentId,
    hours: Annotated[int, typer.Option("--hours", min=1, max=24, help="How far back.")] = 1,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """CPU, memory and disk of the workspace, a sample a minute."""
    with session(url) as api:
        found = api.metrics(environment_id, hours)
    rows = [[p["at"], p["cpu_percent"], p["memory_mb"], p["disk_mb"]] for p in found["samples"]]
    emit(as_json, found, lambda: out.print(table(["at", "cpu %", "memory MB", "disk MB"], rows)))


from cli import account, keeping  # noqa: E402, F401  # their commands register on the same app, after these


def run() -> None:
    """The console script."""
    app()
