"""schemathesis against the local host, with the app's own OpenAPI document: every operation with
generated inputs (valid and invalid), then workflows that follow the document's links
(create -> get -> stop -> start -> delete). No answer may be a server error, break its schema,
carry an undocumented status code, header or content type. Bounded and seeded (derandomized), so a
run is the same every time and takes about a minute."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.contract import ROUTES
from tests.api.conftest import Api, token

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 12
WORKFLOWS = 25
LIFECYCLE = ("createEnvironment", "getEnvironment", "stopEnvironment", "startEnvironment")
LIFECYCLE += ("deleteEnvironment",)
STEPS = 8
BOUNDED = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}


@pytest.fixture
def schema(app_env: pytest.MonkeyPatch) -> Iterator[tuple[Any, Api]]:
    """The document as the host serves it, with limits a fuzzer will not hit by accident (the rate
    limits and quotas have tests of their own)."""
    import httpx

    from devhost.dev8 import local_host
    from devhost.host.server import serve_in_thread
    from shared import wiring

    app_env.setenv("DEV8_SIMULATED_BOOT_POLLS", "0")
    app_env.setenv("DEV8_RATE_COMMANDS_PER_MINUTE", "100000")
    app_env.setenv("DEV8_RATE_READS_PER_MINUTE", "100000")
    app_env.setenv("DEV8_RATE_AUTH_FAILURES_PER_MINUTE", "100000")
    app_env.setenv("DEV8_MAX_ENVIRONMENTS_PER_USER", "1000")
    app_env.setenv("DEV8_MAX_RUNNING_PER_USER", "100")
    wiring.reset()
    import function_app

    served = local_host(function_app.create_app(), port=0)
    with serve_in_thread(served), httpx.Client(base_url=served.url, timeout=60) as client:
        loaded = schemathesis.openapi.from_url(f"{served.url}/api/v1/openapi.json")
        loaded.config.update(base_url=f"{served.url}/api")
        # ASCII strings: the document's patterns (printable names, variable names) are then the
        # whole rule, so generated requests are mostly ones the API takes and workflows go deep.
        loaded.config.generation.update(codec="ascii")
        yield loaded, Api(client, served)


def _auth(user: str = "fuzz") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


def test_every_operation_answers_as_documented(schema: tuple[Any, Api]) -> None:
    loaded, api = schema
    env = api.create(user="fuzz")  # so that some generated ids and bodies meet a real environment
    api.settled(env["id"], user="fuzz")
    statuses: Counter[str] = Counter()
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == len(ROUTES) - 1  # all but the document itself (schemathesis leaves it out)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, **BOUNDED)
        def check(case: Any) -> None:
            response = case.call(headers=_auth())
            statuses[f"{case.operation.label} {response.status_code}"] += 1
            case.validate_response(response, checks=CHECKS)

        check()
    print("\n".join(f"{n:4d}  {key}" for key, n in sorted(statuses.items())))
    assert any(key.endswith(" 201") for key in statuses), "no create ever succeeded"


def test_workflows_follow_the_links_through_the_lifecycle(schema: tuple[Any, Api]) -> None:
    loaded, api = schema
    seen: Counter[str] = Counter()
    # The lifecycle's operations only: every route had its fuzzing above; here each step should
    # be a link followed, not a guess at an id. PATCH stays with the fuzzing: its resizes (409
    # while running, 400 past the bounds) would spend the walk's steps going nowhere.
    # Valid inputs only: a link's id with a mutated body or header walks nowhere (the fuzzing above
    # sends the invalid ones).
    loaded.config.generation.update(modes=["positive"])
    lifecycle = loaded.include(operation_id=[*LIFECYCLE, "getConnection", "listEvents"])

    walks = count()

    class Workflow(lifecycle.as_state_machine()):  # type: ignore[misc]
        # Each walk is a user of its own. Hypothesis builds a walk's steps from the answers before
        # them and holds a walk that repeats another's choices to the same answers; with one user
        # for all, an Idempotency-Key drawn again (replayed, or 409 with another body) or an
        # environment an earlier walk left answered otherwise, and it stopped the test as flaky.
        def __init__(self) -> None:
            super().__init__()
            self.user = f"workflow-{next(walks)}"

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": _auth(self.user)}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            seen[f"{case.operation.definition.raw.get('operationId')} {response.status_code}"] += 1
            if response.status_code in (201, 202):  # as a client would: wait for the change to settle
                api.settled(response.json()["environment"]["id"], user=self.user)

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    Workflow.run(settings=settings(max_examples=WORKFLOWS, stateful_step_count=STEPS, **BOUNDED))
    print("\n".join(f"{n:4d}  {key}" for key, n in sorted(seen.items())))
    walked = {key.split()[0] for key, n in seen.items() if key.split()[1].startswith("2")}
    assert set(LIFECYCLE) <= walked, seen
