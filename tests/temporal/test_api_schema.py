"""Property-based tests of the live API from its own OpenAPI document
(schemathesis): every operation, valid and invalid inputs, a few hundred
examples in all. No answer may be a 5xx, and every answer must conform to the
document (status code, content type, body schema, headers)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api_support import ApiServer, Tokens, new_tokens, temporal_address, tokens_json
from tests.support import floorplan, import_plan
from worker import build_worker

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 20}


@pytest_asyncio.fixture(scope="module")
async def fuzz_restaurant(db_engine: AsyncEngine) -> str:
    rid = f"fuzz-{uuid.uuid4().hex[:8]}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "T1", "capacity": 4}, {"id": "T2", "capacity": 2}, {"id": "T3", "capacity": 2},
    ], adjacency=[["T2", "T3"]]))
    return rid


@pytest.fixture(scope="module")
def fuzz_tokens() -> Tokens:
    return new_tokens()


@pytest.fixture(scope="module")
def fuzz_queue() -> str:
    return f"fuzz-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def fuzz_api(pg_url: str, dev_env: Any, fuzz_tokens: Tokens, fuzz_restaurant: str,
             fuzz_queue: str) -> Iterator[ApiServer]:
    with ApiServer(database_url=pg_url, temporal_address=temporal_address(dev_env),
                   task_queue=fuzz_queue,
                   tokens_json=tokens_json(fuzz_tokens, fuzz_restaurant)) as server:
        yield server


async def test_every_operation_conforms_and_never_fails_with_5xx(
    fuzz_api: ApiServer, fuzz_tokens: Tokens, fuzz_restaurant: str, fuzz_queue: str,
    dev_env: Any, db_engine: AsyncEngine, test_settings: Any,
) -> None:
    # A worker runs the bookings the cases create (and cancels, and decisions),
    # while the cases run in a thread: schemathesis calls are blocking.
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=fuzz_queue):
        statuses, examples = await asyncio.to_thread(
            run_all, fuzz_api, fuzz_tokens, fuzz_restaurant)
    print(f"schemathesis: {examples} examples, statuses {dict(sorted(statuses.items()))}")
    assert examples >= 300
    assert not any(status >= 500 for status in statuses), statuses
    # The run reached real work, not only validation errors.
    assert statuses[200] + statuses[201] > 0 and statuses[422] > 0, statuses


def run_all(fuzz_api: ApiServer, fuzz_tokens: Tokens, fuzz_restaurant: str
            ) -> tuple[Counter[int], int]:
    # A real booking, so generated cases can also reach the paths behind the lookup.
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=11, minute=0, second=0,
                                                            microsecond=0)
    made = requests.post(
        f"{fuzz_api.url}/v1/restaurants/{fuzz_restaurant}/bookings",
        headers={"Authorization": f"Bearer {fuzz_tokens.host_all}"},
        json={"party_size": 2, "start": start.isoformat()}, timeout=30,
    )
    assert made.status_code == 201, made.text
    real_booking = made.json()["booking_id"]
    held = requests.post(
        f"{fuzz_api.url}/v1/restaurants/{fuzz_restaurant}/holds",
        headers={"Authorization": f"Bearer {fuzz_tokens.host_all}"},
        json={"party_size": 2, "start": (start + timedelta(hours=3)).isoformat()}, timeout=30,
    )
    assert held.status_code == 201, held.text
    real_hold = held.json()["hold_id"]

    schema = schemathesis.openapi.from_url(f"{fuzz_api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12
    statuses: Counter[int] = Counter()
    examples = 0
    for operation in operations:
        operator = "review" in operation.path or "resend" in operation.path
        token = fuzz_tokens.operator if operator else fuzz_tokens.host_all
        for mode, count in EXAMPLES.items():
            examples += fuzz(operation, mode, count, token, fuzz_restaurant, real_booking,
                             statuses, hold=real_hold)
    return statuses, examples


def fuzz(operation: Any, mode: GenerationMode, count: int, token: str, restaurant: str,
         booking: str, statuses: Counter[int], *, hold: str) -> int:
    """Run `count` generated cases of one operation; returns how many ran."""
    ran = 0

    @settings(max_examples=count, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
    def run(case: Any, real: bool) -> None:
        nonlocal ran
        if real and mode == GenerationMode.POSITIVE:
            params = case.path_parameters or {}
            if "restaurant_id" in params:
                params["restaurant_id"] = restaurant
            if "booking_id" in params:
                params["booking_id"] = booking
            if "hold_id" in params:
                params["hold_id"] = hold  # a real hold: released by the first that gets it
            if isinstance(case.body, dict) and "hold_id" in case.body:
                case.body["hold_id"] = hold
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, timeout=30,
        )
        statuses[response.status_code] += 1
        ran += 1

    try:
        run()
    except Unsatisfiable:
        assert mode == GenerationMode.NEGATIVE  # e.g. /healthz: nothing to make invalid
    return ran

