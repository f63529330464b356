"""The HTTP API as the command line uses it: httpx, the bearer token, errors as ApiError."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


@dataclass
class ApiError(Exception):
    """An answer that is not a success: the API's own message and code, shown as they are."""

    status: int
    code: str
    message: str
    details: Any = None

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class Unreachable(Exception):
    """Nothing answered at the API's URL."""


class Api:
    def __init__(self, base_url: str, token: str | None, transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=TIMEOUT,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self._http.base_url} ({type(exc).__name__})") from None
        if response.is_success:
            return response.json() if response.content else None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        raise ApiError(
            response.status_code,
            str(body.get("code") or f"HTTP_{response.status_code}"),
            str(body.get("error") or response.reason_phrase or "request failed"),
            body.get("details"),
        )

    # --- the routes the command line uses ----------------------------------------------------

    def templates(self) -> dict[str, Any]:
        return dict(self.call("GET", "/templates"))

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", "/environments", json=body)["environment"])

    def environments(self, status: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100, **({"status": status} if status else {})}
        while True:  # every page
            page = self.call("GET", "/environments", params=params)
            found.extend(page["environments"])
            if not page.get("next"):
                return found
            params["next"] = page["next"]

    def environment(self, environment_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/environments/{environment_id}")["environment"])

    def command(self, environment_id: str, verb: str) -> dict[str, Any]:
        if verb == "delete":
            answer = self.call("DELETE", f"/environments/{environment_id}")
        else:
            answer = self.call("POST", f"/environments/{environment_id}/{verb}")
        return dict(answer["environment"])

    def update(self, environment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("PATCH", f"/environments/{environment_id}", json=body)["environment"])

    def metrics(self, environment_id: str, hours: int) -> dict[str, Any]:
        return dict(self.call("GET", f"/environments/{environment_id}/metrics", params={"hours": hours}))

    def forget_me(self) -> dict[str, Any]:
        return dict(self.call("DELETE", "/me"))

    def connection(self, environment_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/environments/{environment_id}/connection"))

    def events(self, environment_id: str, every: bool = False) -> list[dict[str, Any]]:
        """The latest 100 events, newest first; with `every`, the whole trail, page by page."""
        path = f"/environments/{environment_id}/events"
        if not every:
            return list(self.call("GET", path)["events"])
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = self.call("GET", path, params=params)
            found += page["events"]
            if not page.get("next"):
                return found
            params["next"] = page["next"]

    def logs(self, environment_id: str, container: str, tail: int) -> dict[str, Any]:
        params = {"container": container, "tail": tail}
        return dict(self.call("GET", f"/environments/{environment_id}/logs", params=params))

    def snapshots(self, environment_id: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/environments/{environment_id}/snapshots")["snapshots"])

    def usage(self, month: str | None) -> dict[str, Any]:
        return dict(self.call("GET", "/usage", params={"month": month} if month else {}))

    def export(self) -> dict[str, Any]:
        return dict(self.call("GET", "/me/export"))

    def take_snapshot(self, environment_id: str) -> dict[str, Any]:
        return dict(self.call("POST", f"/environments/{environment_id}/snapshots")["snapshot_request"])

    def restore_snapshot(
        self, environment_id: str, snapshot_id: str, new_environment: bool
    ) -> dict[str, Any]:
        """With `new_environment`, the environment made from it; else what its next start restores."""
        path = f"/environments/{environment_id}/snapshots/{snapshot_id}/restore"
        answer = self.call("POST", path, json={"new_environment": new_environment})
        return dict(answer["environment"] if new_environment else answer["restore"])

    def retired(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/retired-environments")["retired_environments"])

    def restore_retired(self, environment_id: str) -> dict[str, Any]:
        return dict(self.call("POST", f"/retired-environments/{environment_id}/restore")["environment"])
