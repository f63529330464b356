"""Paging GET /environments (issue 13, item 7): `limit` and an opaque `next`, a stable order,
boundaries that hold when the list changes between calls, and bad paging input refused."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.test_environments_api import error_of


@pytest.fixture
def roomy(app_env: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Api:
    app_env.setenv("DEV8_MAX_RUNNING_PER_USER", "10")  # five environments at once
    return request.getfixturevalue("api")  # type: ignore[no-any-return]


def pages(api: Api, limit: int) -> list[list[str]]:
    found, token = [], None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"next": token} if token else {})}
        body = api.call("GET", "/environments", params=params).json()
        found.append([env["id"] for env in body["environments"]])
        token = body["next"]
        if token is None:
            return found


def test_pages_cover_the_list_once_in_its_order(roomy: Api) -> None:
    api = roomy
    made = [api.create(name=f"e{n}")["id"] for n in range(5)]
    everything = [env["id"] for env in api.call("GET", "/environments").json()["environments"]]
    assert everything == made  # the unpaged answer is as before: the whole list, oldest first
    assert pages(api, 2) == [made[0:2], made[2:4], made[4:5]]
    assert pages(api, 5) == [made]
    assert pages(api, 100) == [made]


def test_a_boundary_holds_when_the_list_changes_between_pages(roomy: Api) -> None:
    api = roomy
    made = [api.create(name=f"e{n}")["id"] for n in range(4)]
    first = api.call("GET", "/environments", params={"limit": 2}).json()
    assert [env["id"] for env in first["environments"]] == made[:2]
    api.settled(made[1])
    assert api.call("DELETE", f"/environments/{made[1]}").status_code == 202  # the page's last item
    api.settled(made[1])
    rest = api.call("GET", "/environments", params={"limit": 2, "next": first["next"]}).json()
    assert [env["id"] for env in rest["environments"]] == made[2:4] and rest["next"] is None


@pytest.mark.parametrize("limit", ["0", "101", "-1", "x", "1.5", ""])
def test_a_bad_limit_is_400(api: Api, limit: str) -> None:
    details = error_of(api.call("GET", "/environments", params={"limit": limit}), 400, "VALIDATION_ERROR")
    assert details["details"][0]["field"] == "limit"


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        "x" * 300,
        base64.urlsafe_b64encode(b'["not a time", "env-1"]').decode(),
        base64.urlsafe_b64encode(b"{}").decode(),
    ],
)
def test_a_token_this_api_did_not_give_is_400(api: Api, token: str) -> None:
    details = error_of(
        api.call("GET", "/environments", params={"limit": 2, "next": token}), 400, "VALIDATION_ERROR"
    )
    assert details["details"][0]["field"] == "next"
