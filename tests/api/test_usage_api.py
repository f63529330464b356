"""GET /usage through the app: the caller's rows per environment (deleted ones included), totals,
another user's environments never counted, and a bad month refused."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.api.test_environments_api import error_of


def test_usage_lists_the_callers_environments_deleted_ones_included(api: Api) -> None:
    kept = api.create(name="kept")
    gone = api.create(name="gone")
    api.create(user="bob", name="bobs")
    for env in (kept, gone):
        assert api.settled(env["id"])["status"] == "RUNNING"
    assert api.call("DELETE", f"/environments/{gone['id']}").status_code == 202
    assert api.settled(gone["id"])["status"] is None

    answer = api.call("GET", "/usage")
    assert answer.status_code == 200, answer.text
    usage = answer.json()
    assert usage["currency"] == "USD"
    rows = {row["environment_id"]: row for row in usage["environments"]}
    assert set(rows) == {kept["id"], gone["id"]}  # bob's is not alice's
    assert rows[gone["id"]]["deleted"] is True and rows[kept["id"]]["deleted"] is False
    assert all(row["storage_gb_hours"] > 0 and row["cost"] > 0 for row in rows.values())
    totals = usage["totals"]
    assert abs(totals["cost"] - sum(row["cost"] for row in rows.values())) < 1e-5
    shown = api.call("GET", f"/environments/{kept['id']}").json()["environment"]["usage"]
    assert set(shown) == {"compute_seconds", "storage_gb_hours", "cost_to_date"}
    assert shown["compute_seconds"] > 0  # it has been RUNNING

    assert api.call("GET", "/usage?month=1999-01").json()["environments"] == []
    error_of(api.call("GET", "/usage?month=2026-13"), 400, "VALIDATION_ERROR")
    error_of(api.call("GET", "/usage?month=2026-12%0A"), 400, "VALIDATION_ERROR")  # not an empty month
    error_of(api.call("GET", "/usage", None), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("budget", [0.01, 0])  # 0: the user may spend nothing (not "no budget")
def test_a_token_budget_too_small_for_an_hour_refuses_the_create(api: Api, budget: float) -> None:
    import time

    import jwt

    from tests.conftest import JWT_SECRET

    now = int(time.time())
    claims = {"sub": "frugal", "iss": "dev8-tests", "aud": "dev8-api", "iat": now, "exp": now + 600}
    tight = jwt.encode({**claims, "dev8_monthly_budget": budget}, JWT_SECRET, algorithm="HS256")
    refused = api.call(
        "POST",
        "/environments",
        None,
        json={"name": "x", "template": "node"},
        headers={"Authorization": f"Bearer {tight}"},
    )
    body = error_of(refused, 403, "BUDGET_EXCEEDED")
    assert body["details"]["budget"] == budget
    assert api.call("GET", "/environments", "frugal").json()["environments"] == []
    roomy = jwt.encode({**claims, "dev8_monthly_budget": 25}, JWT_SECRET, algorithm="HS256")
    allowed = api.call(
        "POST",
        "/environments",
        None,
        json={"name": "x", "template": "node"},
        headers={"Authorization": f"Bearer {roomy}"},
    )
    assert allowed.status_code == 201, allowed.text
