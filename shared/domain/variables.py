"""Environment-variable names: what a workspace's environment may hold, whoever sets them (a
create request, or a template's defaults). Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.errors import shown

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Names the platform sets inside a workspace; a user may not shadow them.
RESERVED_VARIABLES = frozenset(
    {"PASSWORD", "HASHED_PASSWORD", "HOME", "USER", "PATH", "SHELL", "PORT", "HOSTNAME", "PWD", "LANG"}
)
RESERVED_PREFIXES = ("DEV8_", "CODE_SERVER_", "VSCODE_", "AZURE_")


def check_variable_name(name: str, kind: str) -> None:
    """ValueError when `name` is no variable name, or one the platform keeps for itself."""
    if not VARIABLE_NAME.fullmatch(name):
        raise ValueError(f"{kind} name {shown(name, 128)!r} must match [A-Za-z_][A-Za-z0-9_]* (at most 128)")
    if name.upper() in RESERVED_VARIABLES or name.upper().startswith(RESERVED_PREFIXES):
        raise ValueError(f"{kind} name {name!r} is reserved")


# Names of the user's environment variables (space-separated), so a workspace can give them to
# SSH sessions too, which sshd starts with a fresh environment; secrets are not among them.
SESSION_VARIABLES = "DEV8_SESSION_VARIABLES"


def session_variables(environment: Mapping[str, str]) -> dict[str, str]:
    """The variables `environment` names under SESSION_VARIABLES, with their values."""
    names = environment.get(SESSION_VARIABLES, "").split()
    return {
        name: environment[name] for name in names if name in environment and VARIABLE_NAME.fullmatch(name)
    }
