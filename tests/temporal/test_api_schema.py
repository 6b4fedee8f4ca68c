"""Property-based tests of the live API from its own OpenAPI document
(schemathesis): every operation, valid and invalid inputs, a few hundred
examples in all; then schemathesis's state machine following the document's
links (create a booking -> show, cancel, review it; hold -> release, list,
book on it). No answer may be a 5xx, and every answer must conform to the
document (status code, content type, body schema, headers)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
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
    # The run reached real work (bookings and holds made), not only validation errors.
    assert statuses[200] > 0 and statuses[201] > 0 and statuses[422] > 0, statuses


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
    schema.hooks.register_hook_with_name(valid_often, "flatmap_body")
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



# --- Stateful: schemathesis follows the document's links -------------------
#
# create booking -> show / cancel / review / resend (its booking_id), create
# hold -> release / list / book on it (its hold_id, party and start), and a
# booking made on a hold -> show / cancel / review. Hypothesis drives the
# scenarios as a state machine; every answer is checked like the stateless
# run's.
#
# A state machine's choices are replayed by Hypothesis: which rules may run
# and how many ids a step picks from depend on the answers of earlier steps
# (a 201 puts the new id in a bundle, a 409 does not). So the same choices must
# get the same answers, or Hypothesis stops with FlakyStrategyDefinition. A
# shared restaurant breaks that: an Idempotency-Key generated again in a later
# scenario finds the earlier booking (200 or 409 instead of 201), the token's
# holds there run into its hold limit, tables fill up. So every scenario gets a
# fresh restaurant with more free tables than a scenario has steps (nothing a
# scenario does depends on how far the worker got), and the generated bodies
# are valid bookings and holds often enough to create something.

STEPS = 8  # per scenario
SCENARIOS = 30
STATEFUL_TABLES = STEPS + 2  # four-tops that never join: a party of 1-4 always fits


@st.composite
def bookable(draw: st.DrawFn) -> dict[str, Any]:
    """A party and a local start inside the stateful restaurant's all-day
    service and horizon (its timezone is UTC)."""
    day = (datetime.now(UTC) + timedelta(days=draw(st.integers(2, 60)))).date()
    hour, quarter = draw(st.integers(8, 21)), draw(st.integers(0, 3))
    return {"party_size": draw(st.integers(1, 4)),
            "start": f"{day.isoformat()}T{hour:02d}:{quarter * 15:02d}"}


def valid_often(context: Any, body: Any) -> Any:
    """flatmap_body hook: a booking's or a hold's generated body as it is, or
    with a bookable party and start (without a random hold_id or zone)."""
    operation = context.operation
    if operation is None or operation.method.upper() != "POST" or not isinstance(body, dict) \
            or not operation.path.endswith(("/bookings", "/holds")):
        return st.just(body)
    kept = {k: v for k, v in body.items() if k not in ("hold_id", "zone_preference")}
    return st.one_of(st.just(body), bookable().map(lambda fields: {**kept, **fields}))


@dataclass
class Tally:
    """What the stateful run did, so the test can tell it followed the links."""

    scenarios: int = 0
    steps: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    bookings: set[str] = field(default_factory=set)
    holds: set[str] = field(default_factory=set)
    linked: Counter[str] = field(default_factory=Counter)  # calls made with a created id


def run_stateful(fuzz_api: ApiServer, fuzz_tokens: Tokens,
                 new_restaurant: Callable[[], str]) -> Tally:
    schema = schemathesis.openapi.from_url(f"{fuzz_api.url}/openapi.json")
    # only the document's own links: inferred ones start at random ids
    schema.config.phases.stateful.inference.algorithms = []
    schema.hooks.register_hook_with_name(valid_often, "flatmap_body")
    tally = Tally()

    class Scenario(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.restaurant = new_restaurant()
            tally.scenarios += 1

        def before_call(self, case: Any) -> None:
            if "restaurant_id" in (case.path_parameters or {}):
                case.path_parameters["restaurant_id"] = self.restaurant

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            operator = "review" in case.path or "resend" in case.path
            token = fuzz_tokens.operator if operator else fuzz_tokens.host_all
            return {"headers": {"Authorization": f"Bearer {token}"}, "timeout": 30}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            tally.steps += 1
            tally.statuses[response.status_code] += 1
            label = f"{case.method.upper()} {case.path}"
            params = case.path_parameters or {}
            if params.get("booking_id") in tally.bookings:
                tally.linked[label] += 1
            if params.get("hold_id") in tally.holds:
                tally.linked[label] += 1
            if isinstance(case.body, dict) and case.body.get("hold_id") in tally.holds:
                tally.linked[f"{label} on a hold"] += 1
            if response.status_code in (200, 201) and case.method.upper() == "POST":
                made = response.json()
                if case.path.endswith("/bookings"):
                    tally.bookings.add(made["booking_id"])
                elif case.path.endswith("/holds"):
                    tally.holds.add(made["hold_id"])

        def validate_response(self, response: Any, case: Any,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None,
                                   recorder=self.recorder)

    Scenario.run(settings=settings(
        max_examples=SCENARIOS, stateful_step_count=STEPS, deadline=None, database=None,
        derandomize=True, phases=[Phase.generate], suppress_health_check=list(HealthCheck)))
    return tally


async def test_stateful_links_create_show_cancel_review_never_5xx(
    fuzz_api: ApiServer, fuzz_tokens: Tokens, fuzz_queue: str, dev_env: Any,
    db_engine: AsyncEngine, test_settings: Any,
) -> None:
    loop = asyncio.get_running_loop()

    async def make() -> str:
        rid = f"flow-{uuid.uuid4().hex[:8]}"
        await import_plan(db_engine, floorplan(rid, [
            {"id": f"T{i}", "capacity": 4} for i in range(1, STATEFUL_TABLES + 1)]))
        return rid

    def new_restaurant() -> str:
        return asyncio.run_coroutine_threadsafe(make(), loop).result(timeout=60)

    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=fuzz_queue):
        tally = await asyncio.to_thread(run_stateful, fuzz_api, fuzz_tokens, new_restaurant)
    print(f"schemathesis stateful: {tally.scenarios} scenarios, {tally.steps} steps, "
          f"statuses {dict(sorted(tally.statuses.items()))}, "
          f"{len(tally.bookings)} bookings and {len(tally.holds)} holds created, "
          f"calls on them {dict(sorted(tally.linked.items()))}")
    assert not any(status >= 500 for status in tally.statuses), tally.statuses
    assert tally.scenarios >= SCENARIOS // 2 and tally.bookings and tally.holds
    # the links were followed: created ids reached show, cancel, review and
    # release, and a hold was booked on
    for operation in ("GET /v1/bookings/{booking_id}", "POST /v1/bookings/{booking_id}/cancel",
                      "POST /v1/bookings/{booking_id}/review",
                      "DELETE /v1/restaurants/{restaurant_id}/holds/{hold_id}",
                      "POST /v1/restaurants/{restaurant_id}/bookings on a hold"):
        assert tally.linked[operation] > 0, (operation, tally.linked)
