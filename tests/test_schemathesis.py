"""A bounded schemathesis run against the real API (uvicorn, chdb, the test Temporal):
whatever it sends, no operation answers 5xx or a status its OpenAPI does not document.

Bounded: a few examples per operation and generation mode, no shrinking, the same examples
every run (a failure reproduces; the report has a curl line). POSTs create at most that
many records; postbacks carry no valid network key, so nothing reaches Temporal."""

import asyncio
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.harness import Relay
from tests.served import serving

EXAMPLES = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Readiness answers 503 by design while a dependency is slow (its Temporal check gives up after
# 3 s, as it may on a loaded machine): documented, and checked like any other answer but 5xx.
READINESS_CHECKS = CHECKS[1:]


def _run(openapi: dict[str, Any], base_url: str, headers: dict[str, str]) -> list[str]:
    """Every operation in both generation modes; the failures, one line per operation."""
    schema = schemathesis.openapi.from_dict(openapi)
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the OpenAPI is invalid: {result.err()}")
            continue
        operation = result.ok()
        checks = READINESS_CHECKS if operation.path == "/readyz" else CHECKS
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: schemathesis.Case[Any]) -> None:
                response = case.call(base_url=base_url, headers=headers, timeout=10)
                # Called within this iteration, so the loop's `checks` is the one meant.
                case.validate_response(response, checks=checks)  # noqa: B023

            try:
                exercise()
            except Unsatisfiable:
                continue  # nothing to make invalid: no parameter, or only free strings
            except (Exception, FailureGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


async def test_no_operation_answers_5xx_or_an_undocumented_status(relay: Relay) -> None:
    openapi = (await relay.http.get("/openapi.json")).json()
    try:
        async with serving(relay.runtime) as url:
            # Off the event loop: it serves the requests the run sends.
            failures = await asyncio.to_thread(_run, openapi, url, relay.admin)
    finally:
        # The run may have set another workspace timezone; later tests expect UTC.
        await relay.http.put("/api/settings", json={"timezone": "UTC"}, headers=relay.admin)
    assert not failures, "\n\n".join(failures)
