"""Paging GET /environments (issue 13, item 7) and an environment's audit trail: `limit` and an
opaque `next`, a stable order, boundaries that hold when the list changes between calls, and bad
paging input refused."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cli.api import Api as CliApi
from tests.api.conftest import Api, token
from tests.api.test_environments_api import error_of


@pytest.fixture
def roomy(app_env: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Api:
    app_env.setenv("DEV8_MAX_RUNNING_PER_USER", "10")  # five environments at once
    return request.getfixturevalue("api")  # type: ignore[no-any-return]


def pages(api: Api, limit: int, path: str = "/environments") -> list[list[Any]]:
    """Every page of `path`: the ids of environments, or the (from, to, reason) of events."""
    found, token = [], None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"next": token} if token else {})}
        body = api.call("GET", path, params=params).json()
        if "events" in body:
            found.append([(e["from_status"], e["to_status"], e["reason"]) for e in body["events"]])
        else:
            found.append([env["id"] for env in body["environments"]])
        token = body["next"]
        if token is None:
            return found


def trail(api: Api, env_id: str) -> list[Any]:
    """The audit trail as the unpaged call gives it (the latest 100, newest first)."""
    events = api.call("GET", f"/environments/{env_id}/events").json()
    assert set(events) == {"events"}  # no `next` unless paging was asked for, as before
    return [(e["from_status"], e["to_status"], e["reason"]) for e in events["events"]]


def cycled(api: Api) -> str:
    """An environment created, stopped and started again: seven events or more."""
    env_id = str(api.create()["id"])
    api.settled(env_id)
    for command in ("stop", "start"):
        assert api.call("POST", f"/environments/{env_id}/{command}").status_code == 202
        api.settled(env_id)
    return env_id


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


@pytest.mark.parametrize("limit", ["0", "101", "-1", "x", "1.5", ["1", "2"]])
def test_a_bad_limit_is_400(api: Api, limit: str | list[str]) -> None:
    # Given twice, a limit arrives as "1,2", as the Functions host joins a repeated parameter.
    details = error_of(api.call("GET", "/environments", params={"limit": limit}), 400, "VALIDATION_ERROR")
    assert details["details"][0]["field"] == "limit"


def test_an_empty_limit_or_token_is_none(api: Api) -> None:
    """The Functions host does not pass a parameter with an empty value on, so `?limit=&next=` is
    the whole list, as without them."""
    made = api.create()["id"]
    answer = api.call("GET", "/environments", params={"limit": "", "next": ""})
    assert answer.status_code == 200, answer.text
    assert [env["id"] for env in answer.json()["environments"]] == [made] and "next" not in answer.json()


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


def test_the_audit_trail_pages_newest_first_and_covers_it_once(api: Api) -> None:
    env_id = cycled(api)
    whole = trail(api, env_id)
    assert len(whole) >= 7 and whole[-1][:2] == (None, "CREATING") and whole[0][1] == "RUNNING"
    for limit in (1, 2, 3, len(whole), 100):
        got = pages(api, limit, f"/environments/{env_id}/events")
        assert [event for page in got for event in page] == whole, limit
        assert all(len(page) == limit for page in got[:-1]) and 0 < len(got[-1]) <= limit


def test_a_trail_page_boundary_holds_while_new_events_arrive(api: Api) -> None:
    env_id = cycled(api)
    before = trail(api, env_id)
    path = f"/environments/{env_id}/events"
    first = api.call("GET", path, params={"limit": 3}).json()
    assert [e["reason"] for e in first["events"]] == [e[2] for e in before[:3]]
    assert api.call("POST", f"/environments/{env_id}/stop").status_code == 202  # newer events
    api.settled(env_id)
    rest = api.call("GET", path, params={"limit": 100, "next": first["next"]}).json()
    assert [(e["from_status"], e["to_status"], e["reason"]) for e in rest["events"]] == before[3:]
    assert rest["next"] is None
    assert trail(api, env_id)[-len(before) :] == before  # the new ones came first


def test_a_trail_page_of_another_owners_environment_is_404(api: Api) -> None:
    env_id = cycled(api)
    token = api.call("GET", f"/environments/{env_id}/events", params={"limit": 1}).json()["next"]
    answer = api.call("GET", f"/environments/{env_id}/events", "mallory", params={"limit": 1, "next": token})
    error_of(answer, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        base64.urlsafe_b64encode(b'["2026-12-01T00:00:00+00:00", "env-1"]').decode(),  # the list's kind
        base64.urlsafe_b64encode(b'{"before": 0}').decode(),
        base64.urlsafe_b64encode(b'{"before": -5}').decode(),
        base64.urlsafe_b64encode(b'{"before": true}').decode(),
        base64.urlsafe_b64encode(b'{"before": "9"}').decode(),
        base64.urlsafe_b64encode(b'{"before": 9, "and": 1}').decode(),
    ],
)
def test_a_trail_token_this_api_did_not_give_is_400(api: Api, token: str) -> None:
    env_id = str(api.create()["id"])
    answer = api.call("GET", f"/environments/{env_id}/events", params={"limit": 2, "next": token})
    assert error_of(answer, 400, "VALIDATION_ERROR")["details"][0]["field"] == "next"
    anonymous = api.call("GET", f"/environments/{env_id}/events", None, params={"next": token})
    error_of(anonymous, 401, "UNAUTHORIZED")  # who is asking comes first


def test_a_trail_token_past_any_version_starts_from_the_newest(api: Api) -> None:
    env_id = cycled(api)
    huge = base64.urlsafe_b64encode(b'{"before": 99999999999999999999}').decode()
    body = api.call("GET", f"/environments/{env_id}/events", params={"next": huge}).json()
    assert [(e["from_status"], e["to_status"], e["reason"]) for e in body["events"]] == trail(api, env_id)


@pytest.fixture
def busy(app_env: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Api:
    app_env.setenv("DEV8_RATE_COMMANDS_PER_MINUTE", "1000")  # a hundred resizes in a second or two
    return request.getfixturevalue("api")  # type: ignore[no-any-return]


def test_a_trail_longer_than_a_page_is_reached_whole_through_next(busy: Api) -> None:
    """More than 100 events (a resize of a STOPPED environment is one each): the unpaged call gives
    the latest 100, as it always did; `next` reaches the rest; the command line's --all follows it."""
    api = busy
    env_id = cycled(api)
    assert api.call("POST", f"/environments/{env_id}/stop").status_code == 202
    api.settled(env_id)
    made = len(trail(api, env_id))
    for n in range(111 - made):
        resized = api.call("PATCH", f"/environments/{env_id}", json={"cpu_cores": 2.0 if n % 2 else 1.0})
        assert resized.status_code == 200, resized.text
    latest = trail(api, env_id)
    assert len(latest) == 100 and latest[0][2].startswith("resize to")
    whole = [event for page in pages(api, 100, f"/environments/{env_id}/events") for event in page]
    assert len(whole) == 111 and whole[:100] == latest and whole[-1] == (None, "CREATING", "created")

    cli = CliApi(api.host.url, token("alice"))
    try:
        every = cli.events(env_id, every=True)
    finally:
        cli.close()
    assert [(e["from_status"], e["to_status"], e["reason"]) for e in every] == whole
