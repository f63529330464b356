"""Where `dev8 login` keeps the API's URL and the token: one file, readable by its owner only."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:7071"  # `make dev`
TOKEN_VARIABLE = "DEV8_TOKEN"  # noqa: S105  # the name of a variable, not a secret
URL_VARIABLE = "DEV8_API_URL"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str | None


def path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dev8" / "credentials.json"


def load(url: str | None = None) -> Credentials:
    """The URL and token to use: the command's --url, then DEV8_API_URL / DEV8_TOKEN, then the
    saved login."""
    saved: dict[str, str] = {}
    try:
        saved = json.loads(path().read_text())
    except (OSError, ValueError):
        saved = {}
    return Credentials(
        url=url or os.environ.get(URL_VARIABLE) or saved.get("url") or DEFAULT_URL,
        token=os.environ.get(TOKEN_VARIABLE) or saved.get("token"),
    )


def save(credentials: Credentials) -> Path:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"url": credentials.url, "token": credentials.token}, file)
    os.replace(temporary, target)
    return target


def forget() -> bool:
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True
