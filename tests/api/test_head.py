"""HEAD on every GET route (RFC 9110 9.3.2): the GET's status and headers without a body. Load
balancers probe with it (Azure Front Door's default health probe method), so /health must answer it."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.api.test_environments_api import error_of


@pytest.mark.parametrize("path", ["/health", "/live", "/ready", "/openapi.json", "/docs"])
def test_the_anonymous_routes_answer_head_as_get_without_a_body(api: Api, path: str) -> None:
    got, head = api.call("GET", path, None), api.call("HEAD", path, None)
    assert got.status_code == head.status_code == 200
    assert head.content == b"" and got.content
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert head.headers["X-Request-ID"] and head.headers["X-Request-ID"] != got.headers["X-Request-ID"]


def test_head_on_a_users_routes_is_authenticated_and_owned_like_get(api: Api) -> None:
    env_id = api.create()["id"]
    path = f"/environments/{env_id}"
    assert api.call("HEAD", path, None).status_code == 401  # no token: as GET
    assert api.call("HEAD", path, "mallory").status_code == 404  # another owner's: as GET
    mine = api.call("HEAD", path)
    assert mine.status_code == 200 and mine.content == b""
    assert api.call("HEAD", "/environments").status_code == 200
    assert api.call("HEAD", f"{path}/connection").status_code in (200, 409)  # as GET, by status


def test_head_is_not_a_way_around_a_write_route(api: Api) -> None:
    """A method a route does not take is 404, as the Functions host answers it (it has no 405:
    azure-functions-host#10098); nothing runs."""
    env_id = api.create()["id"]
    assert api.call("HEAD", f"/environments/{env_id}/stop").status_code == 404
    assert api.settled(env_id)["status"] == "RUNNING"
    error_of(api.call("PUT", "/environments"), 404, "NOT_FOUND")
    error_of(api.call("DELETE", "/environments"), 404, "NOT_FOUND")
