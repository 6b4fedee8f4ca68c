"""Shadow mode (docs/deploy.md) on real PostgreSQL and real Temporal servers.

The shadow workflow is started directly on its own queue, served by the worker
from `build_shadow_worker`, after a legacy path simulated through the same
storage functions the booking workflow uses.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.shadow import ShadowActivities
from seatflow.config import Settings
from seatflow.domain.planning import BookingRequest, RestaurantSnapshot
from seatflow.domain.shadow import (
    COMPARISON_EVENT,
    ERROR_EVENT,
    NOT_SEATED,
    SEATED,
    ShadowComparison,
    ShadowInput,
    ShadowSearch,
)
from seatflow.domain.states import AssignmentState
from seatflow.domain.workflow_ids import shadow_workflow_id
from seatflow.engine import quote_tables
from seatflow.storage import lifecycle
from seatflow.storage.attempts import AttemptSpec, SearchOutcome, run_attempt
from seatflow.storage.shadow import read_only
from shadow_worker import build_shadow_worker
from tests.support import booking_tables, fetch, floorplan, import_plan, new_booking, scalar, slot
from workflows.shadow import ShadowAssignmentWorkflow


@pytest.fixture
def shadow_queue() -> str:
    return f"shadow-test-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------ helpers


async def legacy_seat(engine: AsyncEngine, booking_id: str) -> tuple[tuple[str, ...], str]:
    """The legacy path's attempt: verify, then one attempt whose planner is
    the legacy first fit. Returns the tables and the time of the floor it
    planned on (the shadow's as_of)."""
    ctx = await lifecycle.verify_booking(engine, booking_id, now=datetime.now(UTC))

    def first_fit(snapshot: RestaurantSnapshot, request: BookingRequest) -> SearchOutcome:
        plans = tuple(quote_tables(snapshot, request))
        assert plans, "the simulated legacy path expects to seat this booking"
        return SearchOutcome(plans)

    result = await run_attempt(engine, AttemptSpec(
        booking_id=booking_id, restaurant_id=ctx.restaurant_id, expected_version=ctx.version,
        attempt_no=1, on_failure=AssignmentState.ASSIGNMENT_PENDING, max_parallel=3,
        slot_wait_seconds=2.0, pipeline="legacy"), first_fit)
    assert result.outcome == "confirmed", result.reason
    return result.tables, result.as_of


async def dump_application_tables(engine: AsyncEngine) -> dict[str, list[str]]:
    """Every row of every application table except observability_events."""
    async with engine.connect() as conn:
        names = (await conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' AND table_name <> 'observability_events' "
            "ORDER BY table_name"))).scalars().all()
        dump: dict[str, list[str]] = {}
        for name in names:
            rows = (await conn.execute(text(f'SELECT t::text FROM "{name}" t'))).scalars().all()
            dump[name] = sorted(rows)
    assert "bookings" in dump and "allocations" in dump
    return dump


async def shadow_events(engine: AsyncEngine, booking_id: str, event_type: str) -> list[Any]:
    rows = await fetch(
        engine,
        "SELECT source, restaurant_id, context FROM observability_events "
        "WHERE booking_id = CAST(:id AS uuid) AND event_type = :t ORDER BY id",
        id=booking_id, t=event_type,
    )
    return [(r[0], r[1], r[2] if isinstance(r[2], dict) else json.loads(r[2])) for r in rows]


async def run_shadow(client: Client, queue: str, inp: ShadowInput, *,
                     workflow_id: str | None = None) -> ShadowComparison:
    return await client.execute_workflow(
        ShadowAssignmentWorkflow.run, inp,
        id=workflow_id or shadow_workflow_id(inp.booking_id), task_queue=queue,
    )


# -------------------------------------------------------------------- tests


async def test_shadow_agrees_with_a_legacy_two_top_and_records_one_comparison(
    time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str, shadow_queue: str,
) -> None:
    rid = f"shadow-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "T1", "capacity": 2}, {"id": "T2", "capacity": 4}, {"id": "T3", "capacity": 6},
    ]))
    booking = await new_booking(db_engine, rid, 2)
    tables, as_of = await legacy_seat(db_engine, booking)
    assert tables == ("T1",)
    inp = ShadowInput(booking, rid, SEATED, legacy_tables=tables, as_of=as_of)

    before = await dump_application_tables(db_engine)
    client = time_skipping_env.client
    async with build_shadow_worker(client, db_engine, test_settings, task_queue=shadow_queue):
        comparison = await run_shadow(client, shadow_queue, inp)
        # A re-run child (or a retried activity) finds the comparison and adds none.
        again = await run_shadow(client, shadow_queue, inp,
                                 workflow_id=f"shadow-rerun-{booking}")
    after = await dump_application_tables(db_engine)

    assert comparison.agree_outcome and comparison.agree_tables and comparison.why is None
    assert comparison.v3_tables == ("T1",) and comparison.v3_strategy
    assert again.agree
    assert before == after  # no side effects outside observability_events
    events = await shadow_events(db_engine, booking, COMPARISON_EVENT)
    assert len(events) == 1
    source, restaurant, context = events[0]
    assert (source, restaurant) == ("assignment.shadow", rid)
    assert context["legacy"] == {"outcome": "seated", "tables": ["T1"]}
    assert context["v3"]["outcome"] == "seated" and context["v3"]["tables"] == ["T1"]
    assert context["agree_outcome"] is context["agree_tables"] is context["agree"] is True
    assert context["why"] is None
    assert context["v3_states"] == [
        "created", "capacity_verified", "assignment_pending", "assignment_in_progress",
        "assigned", "confirmed",
    ]
    # Only the comparison: the shadow's walk wrote no state-machine event.
    assert await scalar(db_engine, "SELECT count(*) FROM observability_events WHERE "
                        "booking_id = CAST(:id AS uuid) AND source = 'assignment.shadow'",
                        id=booking) == 1
    assert await booking_tables(db_engine, booking) == ["T1"]


async def test_shadow_sees_the_floor_as_of_the_legacy_quote(
    time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str, shadow_queue: str,
) -> None:
    rid = f"shadow-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "T1", "capacity": 2}, {"id": "T2", "capacity": 2}, {"id": "T3", "capacity": 4},
    ]))
    start = slot()
    earlier = await new_booking(db_engine, rid, 2, start=start)
    assert (await legacy_seat(db_engine, earlier))[0] == ("T1",)
    booking = await new_booking(db_engine, rid, 2, start=start)
    tables, as_of = await legacy_seat(db_engine, booking)
    assert tables == ("T2",)
    # Seated after the legacy quote: the shadow must not see this one.
    later = await new_booking(db_engine, rid, 2, start=start)
    await asyncio.sleep(0.01)
    assert (await legacy_seat(db_engine, later))[0] == ("T3",)

    client = time_skipping_env.client
    async with build_shadow_worker(client, db_engine, test_settings, task_queue=shadow_queue):
        comparison = await run_shadow(
            client, shadow_queue, ShadowInput(booking, rid, SEATED, tables, as_of=as_of))
    assert comparison.v3_tables == ("T2",), comparison.why
    assert comparison.agree
    (_, _, context), = await shadow_events(db_engine, booking, COMPARISON_EVENT)
    assert context["allocations_seen"] == 1  # T1 of the earlier booking; not its own, not later
    assert context["as_of"] == as_of


async def test_v3_seats_a_party_of_nine_that_legacy_pairs_cannot(
    time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str, shadow_queue: str,
) -> None:
    rid = f"shadow-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "A1", "capacity": 4}, {"id": "A2", "capacity": 4}, {"id": "A3", "capacity": 4},
    ], adjacency=[["A1", "A2"], ["A2", "A3"]]))
    booking = await new_booking(db_engine, rid, 9)
    as_of = datetime.now(UTC).isoformat()
    inp = ShadowInput(booking, rid, NOT_SEATED, legacy_reason="no table fits a party of 9",
                      as_of=as_of)
    before = await dump_application_tables(db_engine)
    client = time_skipping_env.client
    # Three tables at any time: by default such plans wait until two hours before
    # the start (SEATFLOW_WIDE_PLAN_LEAD_MINUTES), and this booking is further ahead.
    anytime = test_settings.model_copy(update={"wide_plan_lead_minutes": 525600})
    async with build_shadow_worker(client, db_engine, anytime, task_queue=shadow_queue):
        comparison = await run_shadow(client, shadow_queue, inp)
    assert await dump_application_tables(db_engine) == before
    assert comparison.v3_outcome == SEATED and comparison.v3_tables == ("A1", "A2", "A3")
    assert not comparison.agree_outcome and not comparison.agree_tables
    assert comparison.why and "legacy did not seat" in comparison.why
    (_, _, context), = await shadow_events(db_engine, booking, COMPARISON_EVENT)
    assert context["agree"] is False and context["v3"]["strategy"] == comparison.v3_strategy


async def test_shadow_walks_to_manual_review_when_v3_finds_nothing(
    time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str, shadow_queue: str,
) -> None:
    rid = f"shadow-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    start = slot()
    first = await new_booking(db_engine, rid, 2, start=start)
    await legacy_seat(db_engine, first)
    booking = await new_booking(db_engine, rid, 2, start=start)
    inp = ShadowInput(booking, rid, NOT_SEATED, legacy_reason="all tables taken",
                      as_of=datetime.now(UTC).isoformat())
    client = time_skipping_env.client
    async with build_shadow_worker(client, db_engine, test_settings, task_queue=shadow_queue):
        comparison = await run_shadow(client, shadow_queue, inp)
    assert comparison.agree and comparison.v3_outcome == NOT_SEATED
    (_, _, context), = await shadow_events(db_engine, booking, COMPARISON_EVENT)
    states = context["v3_states"]
    assert states[-1] == "manual_review"
    assert states.count("assignment_in_progress") == test_settings.max_attempts
    assert "taken" in context["v3_reason"]
    state = await scalar(db_engine, "SELECT assignment_state FROM bookings "
                         "WHERE id = CAST(:id AS uuid)", id=booking)
    assert state == "created"  # the shadow's walk is in memory only


async def test_a_failing_shadow_activity_records_an_error_and_leaves_the_booking_untouched(
    time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str, shadow_queue: str,
) -> None:
    rid = f"shadow-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2)
    tables, as_of = await legacy_seat(db_engine, booking)
    real = ShadowActivities(db_engine, test_settings)
    calls = 0

    @activity.defn(name="shadow_search")
    async def broken_search(inp: ShadowInput) -> ShadowSearch:
        nonlocal calls
        calls += 1
        raise RuntimeError("engine exploded")

    before = await dump_application_tables(db_engine)
    client = time_skipping_env.client
    worker = Worker(
        client, task_queue=shadow_queue, workflows=[ShadowAssignmentWorkflow],
        activities=[broken_search, real.record_shadow_comparison, real.record_shadow_error],
    )
    async with worker:
        with pytest.raises(WorkflowFailureError) as failure:
            await run_shadow(client, shadow_queue, ShadowInput(booking, rid, SEATED, tables,
                                                               as_of=as_of))
    assert "engine exploded" in str(failure.value.cause)
    assert calls == 4  # a few tries, then the shadow gives up
    assert await dump_application_tables(db_engine) == before
    assert await shadow_events(db_engine, booking, COMPARISON_EVENT) == []
    (source, restaurant, context), = await shadow_events(db_engine, booking, ERROR_EVENT)
    assert (source, restaurant) == ("assignment.shadow", rid)
    assert context["stage"] == "search" and "engine exploded" in context["error"]
    assert await booking_tables(db_engine, booking) == ["T1"]


async def test_a_shadow_of_an_unknown_booking_fails_fast_with_an_error_event(
    time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str, shadow_queue: str,
) -> None:
    missing = str(uuid.uuid4())
    client = time_skipping_env.client
    async with build_shadow_worker(client, db_engine, test_settings, task_queue=shadow_queue):
        with pytest.raises(WorkflowFailureError):
            await run_shadow(client, shadow_queue,
                             ShadowInput(missing, f"shadow-{unique_id}", NOT_SEATED))
        with pytest.raises(WorkflowFailureError):
            await run_shadow(client, shadow_queue,
                             ShadowInput(missing, f"shadow-{unique_id}", "maybe"),
                             workflow_id=f"shadow-bad-{missing}")
    rows = await fetch(db_engine, "SELECT context FROM observability_events WHERE "
                       "booking_id = CAST(:id AS uuid) AND event_type = :t ORDER BY id",
                       id=missing, t=ERROR_EVENT)
    stages = [(r[0] if isinstance(r[0], dict) else json.loads(r[0]))["stage"] for r in rows]
    assert stages == ["search", "input"]


def test_the_shadow_worker_registers_read_only_activities_only() -> None:
    from seatflow.config import load_settings

    activities = ShadowActivities(None, load_settings()).all()  # type: ignore[arg-type]
    registered = {a.__temporal_activity_definition.name for a in activities}  # type: ignore[attr-defined]
    assert registered == {"shadow_search", "record_shadow_comparison", "record_shadow_error"}


async def test_the_snapshot_is_read_in_a_transaction_postgresql_keeps_read_only(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    async with db_engine.connect() as raw:
        conn = await read_only(raw)
        assert (await conn.execute(text("SHOW transaction_read_only"))).scalar() == "on"
        with pytest.raises(DBAPIError, match="read-only"):
            await conn.execute(text(
                "INSERT INTO observability_events (source, event_type) VALUES ('x', :t)"),
                {"t": f"never-{unique_id}"})
        await conn.rollback()
    # The pooled connection is reset: ordinary transactions write again.
    async with db_engine.connect() as conn:
        assert (await conn.execute(text("SHOW transaction_read_only"))).scalar() == "off"


# ------------------------------------------- end to end with the legacy path

VOLATILE_KEYS = {
    "id", "table_id", "table_a", "table_b", "service_id", "lease_until", "open_until",
    "wait_ms", "permit_wait_ms", "holder", "bucket", "search_ms", "claim_token",
}
# The calendar event's stamp: when the message was written.
ICS_STAMP = re.compile(r"^DTSTAMP:.*$", re.MULTILINE)


def _normalise(value: Any, names: dict[str, str]) -> Any:
    """Rows of two restaurants made comparable: their ids named by position,
    surrogate keys, timings and clock times dropped."""
    if isinstance(value, dict):
        return {k: _normalise(v, names) for k, v in sorted(value.items())
                if k not in VOLATILE_KEYS and not k.endswith("_at") and k != "as_of"}
    if isinstance(value, list):
        return [_normalise(v, names) for v in value]
    if isinstance(value, str):
        value = ICS_STAMP.sub("DTSTAMP:-", value)
        for old, new in names.items():
            value = value.replace(old, new)
        return value
    return value


def _unhash(row: dict[str, Any]) -> dict[str, Any]:
    """The request fingerprint hashes the restaurant id too: keep only whether
    there is one (two restaurants' identical requests hash differently)."""
    if row.get("request_fingerprint") is not None:
        row["request_fingerprint"] = "<fingerprint>"
    return row


async def restaurant_dump(engine: AsyncEngine, rid: str, bookings: list[str]) -> dict[str, Any]:
    """Every application table except observability_events, as far as it
    concerns one restaurant, normalised (see `_normalise`)."""
    names = {b: f"<booking {i}>" for i, b in enumerate(bookings)} | {rid: "<restaurant>"}
    dump: dict[str, Any] = {}
    async with engine.connect() as conn:
        tables = (await conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' AND table_name NOT IN "
            "('observability_events', 'alembic_version') ORDER BY table_name"))).scalars().all()
        for name in tables:
            columns = set((await conn.execute(text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = :t"),
                {"t": name})).scalars().all())
            if "restaurant_id" in columns:
                where, params = "restaurant_id = :r", {"r": rid}
            elif "booking_id" in columns:
                where, params = "booking_id::text = ANY(:b)", {"b": bookings}
            elif name == "restaurants":
                where, params = "id = :r", {"r": rid}
            elif name == "service_turn_times":
                where, params = ("service_id IN (SELECT id FROM restaurant_services "
                                 "WHERE restaurant_id = :r)"), {"r": rid}
            else:
                continue  # global state (circuit breakers): not the booking's
            rows = (await conn.execute(
                text(f'SELECT row_to_json(t)::text FROM "{name}" t WHERE {where}'), params,
            )).scalars().all()
            dump[name] = sorted(json.dumps(_normalise(_unhash(json.loads(r)), names),
                                           sort_keys=True) for r in rows)
        seated = (await conn.execute(text(
            "SELECT a.booking_id::text, t.code, lower(a.occupied)::text FROM allocations a "
            "JOIN dining_tables t ON t.id = a.table_id WHERE a.restaurant_id = :r"),
            {"r": rid})).all()
    dump["allocated tables"] = sorted(f"{names[b]} {code} {start}" for b, code, start in seated)
    return dump


async def run_legacy_batch(client: Client, engine: AsyncEngine, settings: Any, rid: str,
                           queue: str, history: str | None = None) -> list[str]:
    from seatflow.service.bookings import start_booking_workflow
    from worker import build_worker

    await import_plan(engine, floorplan(rid, [
        {"id": "T1", "capacity": 2}, {"id": "T2", "capacity": 4},
        {"id": "A1", "capacity": 4}, {"id": "A2", "capacity": 4}, {"id": "A3", "capacity": 4},
    ], adjacency=[["A1", "A2"], ["A2", "A3"]]))
    start = slot(days=3)
    bookings = []
    async with build_worker(client, engine, settings, task_queue=queue):
        # One at a time, so both batches take the same decisions in the same order.
        for i, party in enumerate([2, 2, 4, 9, 2, 6]):
            booking = await new_booking(engine, rid, party, start=start,
                                        email=f"guest-{i}@example.com")
            handle = await start_booking_workflow(
                client, booking_id=booking, restaurant_id=rid, party_size=party, start=start,
                task_queue=queue)
            await handle.result()
            if history and i == 0:
                from tests.support import save_history

                await save_history(handle, history)  # the shadow child's start
            bookings.append(booking)
    return bookings


async def test_a_batch_in_shadow_mode_leaves_the_same_tables_as_with_shadow_off(
    own_time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str, shadow_queue: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = test_settings.model_copy(update={
        "shadow_task_queue": shadow_queue, "legacy_delays_seconds": "0.01,0.01,0.01",
        "manual_review_timeout_seconds": 1.0,
    })
    monkeypatch.setenv("FEATURE_ASSIGNMENT_PIPELINE_V3", "false")
    client = own_time_skipping_env.client
    shadowed, plain = f"shadow-on-{unique_id}", f"shadow-off-{unique_id}"

    monkeypatch.setenv("FEATURE_ASSIGNMENT_PIPELINE_V3_SHADOW", "true")
    async with build_shadow_worker(client, db_engine, settings, task_queue=shadow_queue):
        on = await run_legacy_batch(client, db_engine, settings, shadowed,
                                    f"booking-{uuid.uuid4().hex[:8]}",
                                    history="legacy_with_shadow_child")
        compared = 0
        for _ in range(200):
            compared = await scalar(
                db_engine, "SELECT count(*) FROM observability_events WHERE restaurant_id = :r "
                "AND event_type = :t", r=shadowed, t=COMPARISON_EVENT)
            if compared >= len(on):
                break
            await asyncio.sleep(0.05)
    monkeypatch.setenv("FEATURE_ASSIGNMENT_PIPELINE_V3_SHADOW", "false")
    off = await run_legacy_batch(client, db_engine, settings, plain,
                                 f"booking-{uuid.uuid4().hex[:8]}")

    with_shadow = await restaurant_dump(db_engine, shadowed, on)
    without = await restaurant_dump(db_engine, plain, off)
    assert with_shadow["allocated tables"], "the batch seated nobody"
    assert with_shadow == without
    # Exactly one comparison per booking, none for the batch with shadow off.
    per_booking = await fetch(
        db_engine, "SELECT booking_id::text, count(*) FROM observability_events "
        "WHERE event_type = :t AND restaurant_id = ANY(:r) GROUP BY booking_id",
        t=COMPARISON_EVENT, r=[shadowed, plain])
    assert sorted(b for b, _ in per_booking) == sorted(on)
    assert all(n == 1 for _, n in per_booking)
    assert await scalar(db_engine, "SELECT count(*) FROM observability_events WHERE "
                        "restaurant_id = :r AND source = 'assignment.shadow'", r=plain) == 0
    assert await scalar(db_engine, "SELECT count(*) FROM observability_events WHERE "
                        "restaurant_id = :r AND event_type = :t", r=shadowed, t=ERROR_EVENT) == 0
