"""`seatflow report` over a crafted set of bookings, attempts and events.

The data lives in a window in 2021 under restaurant ids unique to the test, so
tests sharing the database (which write at now()) never leak into it.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.ops.report import build_report
from tests.cli_support import seatflow_cli
from tests.support import floorplan, import_plan


@dataclass
class Crafted:
    restaurant_id: str
    other_restaurant_id: str
    since: datetime
    until: datetime


async def _insert_booking(
    conn: Any, rid: str, created: datetime, state: str, *, latency: float | None = None,
    strategy: str | None = None, status: str = "pending",
) -> str:
    booking_id = str(uuid.uuid4())
    start = created + timedelta(days=3)
    await conn.execute(text(
        "INSERT INTO bookings (id, restaurant_id, party_size, start_at, end_at, occupied_until, "
        "status, assignment_state, assignment_state_version, assignment_strategy, "
        "assignment_pipeline, created_at, confirmed_at) VALUES (CAST(:id AS uuid), :r, 2, :s, "
        ":e, :o, :status, :state, 5, :strategy, 'v3', :c, :conf)"),
        {"id": booking_id, "r": rid, "s": start, "e": start + timedelta(minutes=90),
         "o": start + timedelta(minutes=95), "status": status, "state": state,
         "strategy": strategy, "c": created,
         "conf": created + timedelta(seconds=latency) if latency is not None else None})
    return booking_id


async def _attempt(conn: Any, booking_id: str, n: int, result: str, strategy: str | None,
                   at: datetime) -> None:
    await conn.execute(text(
        "INSERT INTO booking_assignment_attempts (booking_id, attempt_no, pipeline, strategy, "
        "result, created_at) VALUES (CAST(:b AS uuid), :n, 'v3', :s, :res, :at)"),
        {"b": booking_id, "n": n, "s": strategy, "res": result, "at": at})


async def _history(conn: Any, booking_id: str, to_state: str, version: int, at: datetime) -> None:
    await conn.execute(text(
        "INSERT INTO booking_assignment_state_history (booking_id, to_state, version, created_at) "
        "VALUES (CAST(:b AS uuid), :t, :v, :at)"),
        {"b": booking_id, "t": to_state, "v": version, "at": at})


async def _event(conn: Any, booking_id: str | None, rid: str | None, source: str,
                 event_type: str, context: dict[str, Any], at: datetime) -> None:
    await conn.execute(text(
        "INSERT INTO observability_events (booking_id, restaurant_id, source, event_type, "
        "context, created_at) VALUES (CAST(:b AS uuid), :r, :s, :t, CAST(:c AS jsonb), :at)"),
        {"b": booking_id, "r": rid, "s": source, "t": event_type, "c": json.dumps(context),
         "at": at})


async def _email(conn: Any, booking_id: str, *, send_attempts: int = 1,
                 suppressed: int = 0) -> None:
    await conn.execute(text(
        "INSERT INTO email_outbox (booking_id, kind, subject, body, status, send_attempts, "
        "duplicates_suppressed) VALUES (CAST(:b AS uuid), 'confirmation', 's', 'b', 'sent', "
        ":n, :d)"), {"b": booking_id, "n": send_attempts, "d": suppressed})


@pytest.fixture
async def crafted(db_engine: AsyncEngine, unique_id: str) -> Crafted:
    """22 bookings: 15 confirmed by V3 in 1..15 s, 1 confirmed by an operator after
    manual review, 2 waiting in manual review, 2 failed by the pipeline, 1
    cancelled before confirmation, 1 in flight; plus one booking of another
    restaurant and a circuit breaker that stayed open for 7 minutes."""
    rid, other = f"rep-{unique_id}", f"rep-other-{unique_id}"
    for r in (rid, other):
        await import_plan(db_engine, floorplan(r, [{"id": "T1", "capacity": 2}]))
    # A window of its own in 2021, minute-aligned and unique per test run.
    base = datetime(2021, 3, 1, tzinfo=UTC) + timedelta(
        minutes=random.randrange(0, 400_000))
    since, until = base, base + timedelta(hours=1)
    at = base + timedelta(minutes=1)
    async with db_engine.begin() as conn:
        confirmed = []
        for i in range(15):
            b = await _insert_booking(conn, rid, at + timedelta(seconds=i), "confirmed",
                                      latency=float(i + 1), strategy="optimal_fit",
                                      status="confirmed")
            await _attempt(conn, b, 1, "confirmed", "optimal_fit", at)
            await conn.execute(text(
                "INSERT INTO permit_intervals (restaurant_id, booking_id, slot, acquired_at, "
                "released_at, wait_ms) VALUES (:r, CAST(:b AS uuid), 0, :a, :a, :w)"),
                {"r": rid, "b": b, "a": at, "w": float(i * 10)})
            await _email(conn, b, send_attempts=2 if i == 0 else 1, suppressed=1 if i < 3 else 0)
            for v in range(1, 4):  # 3 transitions each: 45
                await _event(conn, b, rid, "assignment.state_machine",
                             "booking.assignment_state_transition", {"version": v}, at)
            confirmed.append(b)
        manual = await _insert_booking(conn, rid, at, "confirmed", latency=3600.0,
                                       strategy="manual", status="confirmed")
        await _history(conn, manual, "manual_review", 4, at)
        for n in range(1, 6):
            await _attempt(conn, manual, n, "no_plan", None, at)
        await _attempt(conn, manual, 6, "confirmed", "manual", at)
        await _email(conn, manual)
        for _ in range(2):
            waiting = await _insert_booking(conn, rid, at, "manual_review")
            await _history(conn, waiting, "manual_review", 4, at)
            for n in range(1, 6):
                await _attempt(conn, waiting, n, "all_plans_taken", None, at)
        for _ in range(2):
            await _insert_booking(conn, rid, at, "failed")
        await _insert_booking(conn, rid, at, "cancelled", status="cancelled")
        await _insert_booking(conn, rid, at, "assignment_in_progress")
        # 3 version conflicts against 45 + 15 transitions: 5%.
        for b in confirmed[:3]:
            await _event(conn, b, rid, "assignment.state_machine",
                         "booking.assignment_version_conflict", {}, at)
        for b in confirmed:
            await _event(conn, b, rid, "assignment.state_machine",
                         "booking.assignment_state_transition", {"version": 4}, at)
        for i, b in enumerate(confirmed[:4]):
            await _event(conn, b, rid, "assignment.shadow", "assignment.shadow.comparison",
                         {"agree": i != 0}, at)
        await _event(conn, None, None, "assignment.coordinator", "circuit_breaker.opened",
                     {"breaker": "database"}, base + timedelta(minutes=10))
        await _event(conn, None, None, "assignment.coordinator", "circuit_breaker.closed",
                     {"breaker": "database", "open_seconds": 420.0}, base + timedelta(minutes=17))
        # Another restaurant in the same window, and this restaurant outside it.
        await _insert_booking(conn, other, at, "failed")
        await _insert_booking(conn, rid, until + timedelta(minutes=5), "failed")
    return Crafted(rid, other, since, until)


async def test_report_computes_rates_percentiles_and_firing_rules(db_engine: AsyncEngine, crafted: Crafted) -> None:
    report = await build_report(db_engine, since=crafted.since, until=crafted.until,
                                restaurant_id=crafted.restaurant_id)
    data = report.to_dict()
    assert data["bookings"] == 22
    assert data["by_state"] == {"assignment_in_progress": 1, "cancelled": 1, "confirmed": 16,
                                "failed": 2, "manual_review": 2}
    assert data["decided"] == 20 and data["in_flight"] == 1
    assert data["confirmation_rate"] == pytest.approx(16 / 20)
    assert data["manual_review_rate"] == pytest.approx(3 / 20)
    assert data["error_rate"] == pytest.approx(2 / 20)
    assert (data["v3_confirmed"], data["v3_bookings"]) == (15, 18)
    # percentile_cont over 1..15 s: operator assignments are not pipeline latency.
    assert data["latency_seconds"]["p50"] == pytest.approx(8.0)
    assert data["latency_seconds"]["p95"] == pytest.approx(14.3)
    assert data["latency_seconds"]["p99"] == pytest.approx(14.86)
    assert data["latency_seconds"]["count"] == 15
    assert data["permit_wait_p95_ms"] == pytest.approx(133.0)
    assert (data["version_conflicts"], data["transitions"]) == (3, 60)
    assert data["transition_error_rate"] == pytest.approx(0.05)
    assert data["emails_sent"] == 16
    assert data["duplicate_emails"] == 1 and data["duplicates_suppressed"] == 3
    assert data["breaker_opens"] == 1
    assert data["breaker_longest_open_seconds"] == pytest.approx(420.0)
    assert data["shadow_agreement_rate"] == pytest.approx(0.75)
    alerts = {a["name"]: a["status"] for a in data["alerts"]}
    assert alerts == {
        "SeatflowAssignmentErrorRateHigh": "FIRING",  # 10% > 5% (P1)
        "SeatflowCircuitBreakerOpen": "FIRING",  # 7 min > 5 min (P2)
        "SeatflowManualReviewRateHigh": "ok",  # 15% <= 20%
        "SeatflowAssignmentLatencyP95High": "FIRING",  # 14.3 s > 5 s (P3)
    }
    assert data["p1_firing"] is True


async def test_report_of_a_quiet_range_has_no_data_and_fires_nothing(db_engine: AsyncEngine, crafted: Crafted) -> None:
    report = await build_report(db_engine, since=crafted.since - timedelta(days=400),
                                until=crafted.since - timedelta(days=399),
                                restaurant_id=crafted.restaurant_id)
    assert report.bookings == 0 and report.confirmation_rate is None
    assert {a.status for a in report.alerts} <= {"ok", "no_data"}
    assert not report.p1_firing


async def test_report_command_prints_json_and_exits_4_when_p1_fires(pg_url: str, crafted: Crafted) -> None:
    async def cli(*args: str) -> tuple[int, str, str]:
        done = await seatflow_cli().arun(["report", *args], {**os.environ, "DATABASE_URL": pg_url})
        return done.returncode, done.stdout, done.stderr

    window = ["--since", crafted.since.isoformat(), "--until", crafted.until.isoformat()]
    code, out, err = await cli(*window, "--restaurant", crafted.restaurant_id, "--json")
    assert code == 4, err
    data = json.loads(out)
    assert data["p1_firing"] is True and data["restaurant_id"] == crafted.restaurant_id
    # The other restaurant's single booking failed: its own report fires too,
    # and holds only that booking.
    code, out, err = await cli(*window, "--restaurant", crafted.other_restaurant_id, "--json")
    assert json.loads(out)["bookings"] == 1 and code == 4, err
    # The readable table names every figure and the rules.
    code, out, err = await cli(*window, "--restaurant", crafted.restaurant_id)
    assert code == 4, err
    for figure in ("confirmation rate", "manual review rate", "latency P95", "permit wait P95",
                   "duplicate emails", "circuit-breaker opens", "SeatflowAssignmentErrorRateHigh",
                   "FIRING"):
        assert figure in out
    code, _, err = await cli("--since", "yesterday-ish")
    assert code == 2 and "--since" in err
