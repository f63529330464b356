"""Dev8's function app on the generic local host: its host.json, task hub and setting defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import azure.functions as func

from devhost.host.server import LocalHost

ROOT = Path(__file__).resolve().parents[1]
TASK_HUB = "Dev8"


def setting_default(name: str) -> str | None:
    """A DEV8_* setting left unset takes the app's own default (Azure needs the app setting; the
    Bicep sets every one)."""
    from shared.settings import Settings

    field = Settings.model_fields.get(name.removeprefix("DEV8_").lower())
    return str(field.default) if name.startswith("DEV8_") and field is not None else None


def local_host(app: func.FunctionApp | None = None, **options: Any) -> LocalHost:
    """function_app.py's app (or the one given, e.g. a fresh `create_app()`) on the local host."""
    if app is None:
        import function_app

        app = function_app.app
    from shared.adapters.tables.loop import close_running_loop

    return LocalHost(
        app,
        host_json=ROOT / "host.json",
        task_hub=TASK_HUB,
        setting_default=setting_default,
        on_stop=(close_running_loop,),
        **options,
    )
