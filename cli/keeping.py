"""Commands that keep and bring back work: an environment's settings (its name, idle timeout and
whether retention may retire it), a snapshot restored, and the environments retention retired."""

from __future__ import annotations

from typing import Annotated, Any

import typer

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


@app.command("set")
def set_settings(
    environment_id: EnvironmentId,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    idle_timeout: Annotated[
        int | None, typer.Option("--idle-timeout", help="Minutes without use before it stops (5-240).")
    ] = None,
    keep: Annotated[
        bool | None,
        typer.Option("--keep/--no-keep", help="Keep it from retention (or let retention retire it)."),
    ] = None,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Rename it, change its idle timeout, or keep it from retention (sizes: `dev8 resize`)."""
    wanted = {"name": name, "idle_timeout_minutes": idle_timeout, "keep": keep}
    body = {field: value for field, value in wanted.items() if value is not None}
    if not body:
        err.print("Give --name, --idle-timeout, or --keep/--no-keep.")
        raise typer.Exit(Exit.USAGE)
    with session(url) as api:
        env = api.update(environment_id, body)
    emit(as_json, env, lambda: describe(env))


@app.command()
def restore(
    environment_id: EnvironmentId,
    snapshot_id: Annotated[str, typer.Argument(help="The snapshot's id (`dev8 snapshots ENV`).")],
    new: Annotated[
        bool, typer.Option("--new", help="Into a new environment, leaving this one as it is.")
    ] = False,
    wait: Wait = False,
    timeout: Timeout = 900,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Restore a snapshot: at the stopped environment's next start, or --new into a new one."""
    with session(url) as api:
        if not new:
            planned = api.restore_snapshot(environment_id, snapshot_id, new_environment=False)
            emit(
                as_json,
                planned,
                lambda: err.print(
                    f"{environment_id} restores {snapshot_id} at its next start (`dev8 start`)."
                ),
            )
            return
        made = api.restore_snapshot(environment_id, snapshot_id, new_environment=True)
        created(api, made, wait, timeout, as_json, f" from {snapshot_id}")


@app.command()
def retired(
    bring_back: Annotated[
        str | None, typer.Option("--restore", help="Bring this one back (env-...) from its snapshot.")
    ] = None,
    wait: Wait = False,
    timeout: Timeout = 900,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """The environments retention retired that can still be restored (or --restore one)."""
    with session(url) as api:
        if bring_back:
            created(
                api, api.restore_retired(bring_back), wait, timeout, as_json, f" from retired {bring_back}"
            )
            return
        found: list[dict[str, Any]] = api.retired()
    rows = [
        [e["id"], e["name"], e["template"], e["size"], e["retired_at"], e["restorable_until"]] for e in found
    ]
    columns = ["id", "name", "template", "size", "retired", "restorable until"]
    emit(as_json, found, lambda: out.print(table(columns, rows)))
