"""Safe rollout (docs/deploy.md): flags, cohorts, the legacy path and the
kill switch that moves bookings in flight to the legacy path with no deploy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from seatflow.config import ConfigError, load_flags, load_settings
from seatflow.service.bookings import start_booking_workflow
from seatflow.storage.lifecycle import cancel_booking
from tests.support import (
    SETTLED,
    booking_tables,
    fetch,
    floorplan,
    import_plan,
    new_booking,
    save_history,
    scalar,
    slot,
    wait_for_state,
)
from worker import build_worker

RESTAURANTS = [f"restaurant-{i}" for i in range(1000)]


def cohort(percent: int, **extra: str) -> set[str]:
    flags = load_flags(FEATURE_ASSIGNMENT_PIPELINE_V3="true",
                       FEATURE_ASSIGNMENT_PIPELINE_V3_ROLLOUT_PERCENT=str(percent), **extra)
    return {r for r in RESTAURANTS if flags.v3_enabled_for(r)}


def test_rollout_cohorts_are_nested_as_the_percentage_grows() -> None:
    ten, fifty, hundred = cohort(10), cohort(50), cohort(100)
    assert ten <= fifty <= hundred == set(RESTAURANTS)
    assert 50 <= len(ten) <= 150 and 400 <= len(fifty) <= 600  # a fair hash
    assert cohort(0) == set()


def test_allowlist_wins_over_the_percentage() -> None:
    allowed = cohort(100, FEATURE_ASSIGNMENT_PIPELINE_V3_RESTAURANTS="restaurant-1, restaurant-7")
    assert allowed == {"restaurant-1", "restaurant-7"}
    assert cohort(0, FEATURE_ASSIGNMENT_PIPELINE_V3_RESTAURANTS="restaurant-3") == {"restaurant-3"}


def test_v3_off_means_legacy_for_everyone() -> None:
    flags = load_flags(FEATURE_ASSIGNMENT_PIPELINE_V3="false",
                       FEATURE_ASSIGNMENT_PIPELINE_V3_RESTAURANTS="restaurant-1")
    assert not any(flags.v3_enabled_for(r) for r in RESTAURANTS[:50])


@pytest.mark.parametrize(
    ("variable", "value"),
    [("FEATURE_ASSIGNMENT_PIPELINE_V3", "maybe"),
     ("FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL", "0"),
     ("FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL", "21"),
     ("FEATURE_ASSIGNMENT_PIPELINE_V3_ROLLOUT_PERCENT", "150")],
)
def test_invalid_flags_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_flags(**{variable: value})


async def test_legacy_path_seats_with_first_fit_and_records_its_events(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, pg_url: str, mailbox: Path, unique_id: str, queue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_ASSIGNMENT_PIPELINE_V3", "false")
    settings = load_settings(DATABASE_URL=pg_url, SEATFLOW_MAILBOX_DIR=str(mailbox),
                             SEATFLOW_LEGACY_DELAYS_SECONDS="0.05,0.05,0.05")
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 4},
                                                 {"id": "T2", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2)
    async with build_worker(dev_env.client, db_engine, settings, task_queue=queue):
        handle = await start_booking_workflow(dev_env.client, booking_id=booking, restaurant_id=rid,
                                              party_size=2, start=slot(), task_queue=queue)
        outcome = await handle.result()
        await save_history(handle, "legacy_path")
    assert outcome.state == "confirmed" and outcome.pipeline == "legacy"
    assert await booking_tables(db_engine, booking) == ["T2"]  # ascending capacity, first fit
    events = await fetch(db_engine, "SELECT event_type FROM observability_events WHERE "
                         "booking_id = CAST(:id AS uuid) AND source = 'auto_assign'", id=booking)
    assert [e[0] for e in events] == ["auto_assign.summary"]
    # The legacy try is an attempt like any other: its row names the pipeline
    # and the plans the first fit proposed.
    assert await fetch(db_engine, "SELECT pipeline, result, plans_tried FROM "
                       "booking_assignment_attempts WHERE booking_id = CAST(:id AS uuid)",
                       id=booking) == [("legacy", "confirmed", [["T2"]])]
    assert len(list(mailbox.glob("*.eml"))) == 1


async def test_kill_switch_moves_a_booking_in_v3_backoff_to_the_legacy_path(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, pg_url: str, mailbox: Path, unique_id: str, queue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_ASSIGNMENT_PIPELINE_V3", "true")
    settings = load_settings(DATABASE_URL=pg_url, SEATFLOW_MAILBOX_DIR=str(mailbox),
                             SEATFLOW_RETRY_BASE_SECONDS=3.0,
                             SEATFLOW_LEGACY_DELAYS_SECONDS="0.05,0.05,0.05")
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    start_at = slot()
    holder = await new_booking(db_engine, rid, 2, start=start_at)
    waiting = await new_booking(db_engine, rid, 2, start=start_at)
    async with build_worker(dev_env.client, db_engine, settings, task_queue=queue):
        await start_booking_workflow(dev_env.client, booking_id=holder, restaurant_id=rid,
                                     party_size=2, start=start_at, task_queue=queue)
        assert await wait_for_state(db_engine, holder, SETTLED) == "confirmed"
        handle = await start_booking_workflow(dev_env.client, booking_id=waiting,
                                              restaurant_id=rid, party_size=2, start=start_at,
                                              task_queue=queue)
        for _ in range(100):  # until the first V3 attempt failed and the backoff began
            if await scalar(db_engine, "SELECT count(*) FROM booking_assignment_attempts WHERE "
                            "booking_id = CAST(:id AS uuid)", id=waiting):
                break
            await asyncio.sleep(0.05)
        # Operator flips the kill switch (no deploy, no restart); the table frees up.
        monkeypatch.setenv("FEATURE_ASSIGNMENT_PIPELINE_V3", "false")
        await cancel_booking(db_engine, holder, actor="guest", reason="cancelled")
        outcome = await handle.result()
    assert outcome.state == "confirmed" and outcome.pipeline == "legacy"
    attempts = await fetch(db_engine, "SELECT attempt_no, pipeline, result FROM "
                           "booking_assignment_attempts WHERE booking_id = CAST(:id AS uuid) "
                           "ORDER BY attempt_no", id=waiting)
    assert attempts == [(1, "v3", "no_plan"), (2, "legacy", "confirmed")]
    assert await scalar(db_engine, "SELECT count(*) FROM email_outbox WHERE booking_id = "
                        "CAST(:id AS uuid)", id=waiting) == 1
    assert len(list(mailbox.glob(f"{waiting}*.eml"))) == 1
