"""`seatflow shadow-report` on crafted comparison and error events (real PostgreSQL).

Each test writes events for its own restaurant id and reads them back with the
`--restaurant` filter, so tests sharing the database never see each other.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from seatflow.cli.shadow import parse_since, shadow_report_command
from seatflow.domain.shadow import COMPARISON_EVENT, ERROR_EVENT, EVENT_SOURCE
from seatflow.ops.shadow_report import load_report


async def comparison(
    engine: AsyncEngine, restaurant: str, legacy: list[str] | None, v3: list[str] | None,
    *, booking_id: str | None = None, at: datetime | None = None,
) -> str:
    """One comparison event: None means not seated, a list means seated there."""
    booking_id = booking_id or str(uuid.uuid4())
    legacy_outcome = "seated" if legacy is not None else "not_seated"
    v3_outcome = "seated" if v3 is not None else "not_seated"
    agree_outcome = legacy_outcome == v3_outcome
    agree_tables = agree_outcome and sorted(legacy or []) == sorted(v3 or [])
    context = {
        "legacy": {"outcome": legacy_outcome, "tables": legacy or []},
        "v3": {"outcome": v3_outcome, "tables": v3 or [],
               "strategy": "optimal_fit" if v3 else None},
        "agree_outcome": agree_outcome, "agree_tables": agree_tables,
        "agree": agree_outcome and agree_tables,
        "why": None if agree_outcome and agree_tables else "crafted disagreement",
    }
    await _insert(engine, booking_id, restaurant, COMPARISON_EVENT, context, at)
    return booking_id


async def shadow_error(engine: AsyncEngine, restaurant: str, *, at: datetime | None = None) -> str:
    booking_id = str(uuid.uuid4())
    await _insert(engine, booking_id, restaurant, ERROR_EVENT,
                  {"booking_id": booking_id, "stage": "search", "error": "engine exploded"}, at)
    return booking_id


async def _insert(engine: AsyncEngine, booking_id: str, restaurant: str, event_type: str,
                  context: dict[str, Any], at: datetime | None) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO observability_events (booking_id, restaurant_id, source, "
                 "event_type, context, created_at) VALUES (CAST(:b AS uuid), :r, :s, :t, "
                 "CAST(:c AS jsonb), COALESCE(CAST(:at AS timestamptz), clock_timestamp()))"),
            {"b": booking_id, "r": restaurant, "s": EVENT_SOURCE, "t": event_type,
             "c": json.dumps(context), "at": at},
        )


async def crafted_evening(engine: AsyncEngine, restaurant: str) -> dict[str, list[str]]:
    """Ten bookings: 6 agree at the same table, 1 both seat elsewhere, 1 V3-only,
    1 legacy-only, 1 neither. Legacy 8/10 seated, V3 8/10: a gap of 0 points."""
    ids: dict[str, list[str]] = {"same": [], "moved": [], "v3_only": [], "legacy_only": [],
                                 "neither": []}
    for i in range(6):
        ids["same"].append(await comparison(engine, restaurant, [f"T{i}"], [f"T{i}"]))
    ids["moved"].append(await comparison(engine, restaurant, ["T1", "T2"], ["T7"]))
    ids["v3_only"].append(await comparison(engine, restaurant, None, ["A1", "A2", "A3"]))
    ids["legacy_only"].append(await comparison(engine, restaurant, ["T9"], None))
    ids["neither"].append(await comparison(engine, restaurant, None, None))
    return ids


def invoke(*args: str, env: dict[str, str]) -> Any:
    app = typer.Typer()
    app.command("shadow-report")(shadow_report_command)
    app.command("unused", hidden=True)(lambda: None)  # keep shadow-report a subcommand
    return CliRunner().invoke(app, ["shadow-report", *args], env=env)


# -------------------------------------------------------------------- tests


async def test_crafted_evening_gives_the_expected_rates_and_passes_the_gate(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"report-{unique_id}"
    ids = await crafted_evening(db_engine, rid)
    report = (await load_report(db_engine, restaurant=rid)).to_dict()
    assert report["compared"] == 10
    assert report["legacy"] == {"seated": 8, "success_rate": 80.0}
    assert report["v3"] == {"seated": 8, "success_rate": 80.0}
    assert report["outcome_agreement"] == {"agree": 8, "rate": 80.0, "both_seated": 7,
                                           "both_not_seated": 1}
    assert report["table_agreement"] == {"agree": 6, "of_both_seated": 7, "rate": 85.7}
    assert report["full_agreement"] == {"agree": 7, "rate": 70.0}
    assert report["v3_only_successes"]["count"] == 1
    assert [e["booking_id"] for e in report["v3_only_successes"]["examples"]] == ids["v3_only"]
    assert report["v3_only_successes"]["examples"][0]["v3_tables"] == ["A1", "A2", "A3"]
    assert [e["booking_id"] for e in report["legacy_only_successes"]["examples"]] == \
        ids["legacy_only"]
    assert [e["booking_id"] for e in report["table_mismatches"]["examples"]] == ids["moved"]
    assert report["shadow_errors"]["count"] == 0
    assert report["gate"]["gap_points"] == 0.0
    assert report["gate"]["verdict"] == "pass" and report["gate"]["passed"] is True
    assert report["gate"]["reasons"] == []


async def test_one_shadow_error_fails_the_gate(db_engine: AsyncEngine, unique_id: str) -> None:
    rid = f"report-{unique_id}"
    await crafted_evening(db_engine, rid)
    failed = await shadow_error(db_engine, rid)
    report = await load_report(db_engine, restaurant=rid)
    data = report.to_dict()
    assert data["shadow_errors"]["count"] == 1
    assert data["shadow_errors"]["examples"][0]["booking_id"] == failed
    assert data["gate"]["verdict"] == "fail"
    assert any("1 shadow error" in r for r in data["gate"]["reasons"])
    assert failed in report.render()


async def test_v3_more_than_five_points_below_legacy_fails_the_gate(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"report-{unique_id}"
    for i in range(18):
        await comparison(db_engine, rid, [f"T{i}"], [f"T{i}"])
    for i in range(2):
        await comparison(db_engine, rid, [f"T{i}"], None)
    data = (await load_report(db_engine, restaurant=rid)).to_dict()
    assert data["legacy"]["success_rate"] == 100.0 and data["v3"]["success_rate"] == 90.0
    assert data["gate"]["gap_points"] == -10.0
    assert data["gate"]["verdict"] == "fail"
    assert "10.0 points below legacy" in data["gate"]["reasons"][0]


async def test_exactly_five_points_is_within_the_gate(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"report-{unique_id}"
    for i in range(19):
        await comparison(db_engine, rid, [f"T{i}"], [f"T{i}"])
    await comparison(db_engine, rid, ["T1"], None)
    data = (await load_report(db_engine, restaurant=rid)).to_dict()
    assert data["gate"]["gap_points"] == -5.0 and data["gate"]["verdict"] == "pass"


async def test_no_comparisons_is_no_data_not_a_pass(db_engine: AsyncEngine, unique_id: str) -> None:
    data = (await load_report(db_engine, restaurant=f"report-{unique_id}")).to_dict()
    assert data["compared"] == 0 and data["legacy"]["success_rate"] is None
    assert data["gate"]["verdict"] == "no_data" and data["gate"]["passed"] is False


async def test_since_leaves_out_older_comparisons_and_errors(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"report-{unique_id}"
    old = datetime.now(UTC) - timedelta(days=3)
    await comparison(db_engine, rid, ["T1"], None, at=old)
    await shadow_error(db_engine, rid, at=old)
    recent = await comparison(db_engine, rid, ["T2"], ["T2"])
    since = datetime.now(UTC) - timedelta(days=1)
    data = (await load_report(db_engine, restaurant=rid, since=since)).to_dict()
    assert data["compared"] == 1 and data["shadow_errors"]["count"] == 0
    assert data["gate"]["verdict"] == "pass"
    everything = (await load_report(db_engine, restaurant=rid)).to_dict()
    assert everything["compared"] == 2 and everything["gate"]["verdict"] == "fail"
    del recent


async def test_a_duplicate_comparison_counts_once_and_is_flagged(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"report-{unique_id}"
    booking = await comparison(db_engine, rid, ["T1"], ["T1"])
    await comparison(db_engine, rid, ["T1"], ["T1"], booking_id=booking)
    data = (await load_report(db_engine, restaurant=rid)).to_dict()
    assert data["compared"] == 1 and data["duplicate_comparisons"] == 1
    assert data["gate"]["verdict"] == "fail"


async def test_cli_prints_a_table_by_default_and_json_on_request(
    db_engine: AsyncEngine, pg_url: str, unique_id: str,
) -> None:
    rid = f"report-{unique_id}"
    ids = await crafted_evening(db_engine, rid)
    env = {"DATABASE_URL": pg_url}
    # The command runs its own event loop: keep it off the test's.
    table = await asyncio.to_thread(invoke, "--restaurant", rid, env=env)
    assert table.exit_code == 0, table.output
    assert "bookings compared" in table.output and "10" in table.output
    assert "agreement on outcome" in table.output and "80.0%  (8/10)" in table.output
    assert ids["v3_only"][0] in table.output and ids["legacy_only"][0] in table.output
    assert "Rollout gate" in table.output and "PASS" in table.output

    as_json = await asyncio.to_thread(invoke, "--restaurant", rid, "--since", "1h", "--json",
                                      env=env)
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["compared"] == 10 and data["restaurant"] == rid
    assert data["gate"]["verdict"] == "pass"


def test_cli_rejects_a_bad_since_as_a_usage_error() -> None:
    result = invoke("--since", "last tuesday", env={"DATABASE_URL": "postgresql://x@nowhere/db"})
    assert result.exit_code == 2
    assert "--since" in result.output


def test_since_accepts_iso_times_and_look_backs() -> None:
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert parse_since("24h", now=now) == now - timedelta(hours=24)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("90m", now=now) == now - timedelta(minutes=90)
    assert parse_since("2025-05-30") == datetime(2025, 5, 30, tzinfo=UTC)
    assert parse_since("2025-05-30T18:00+01:00") == datetime(2025, 5, 30, 17, tzinfo=UTC)
    with pytest.raises(ValueError, match="look-back"):
        parse_since("yesterday")
