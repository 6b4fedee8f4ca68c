"""End to end through the CLI on the embedded stack: dev up, import, create,
wait, show; then the Temporal visibility API finds the booking by its search
attributes, and a manual-review booking is resolved with `review assign`."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from seatflow.domain.workflow_ids import booking_workflow_id
from tests.cli_support import Done, seatflow_cli
from tests.e2e.test_devstack import Stack, isolated_env, stack  # noqa: F401 - fixtures
from tests.support import listed

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def cli(stack: Stack, *args: str, timeout: float = 60) -> Done:  # noqa: F811
    env = dict(os.environ, SEATFLOW_HOME=str(stack.home), TEMPORAL_ADDRESS=stack.address)
    return seatflow_cli().run(args, env, cwd=ROOT, timeout=timeout)


async def visible(address: str, query: str, expected: str) -> list[str]:
    from temporalio.client import Client

    return await listed(await Client.connect(address), query, expected)


def test_cli_books_a_table_and_the_ui_filter_finds_it(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("FEATURE_ASSIGNMENT_PIPELINE_V3", "true")
    monkeypatch.setenv("SEATFLOW_RETRY_BASE_SECONDS", "0.05")
    monkeypatch.setenv("SEATFLOW_RETRY_CAP_SECONDS", "0.2")
    stack.up(workers=1, worker_env={"FEATURE_ASSIGNMENT_PIPELINE_V3": "true",
                                    "SEATFLOW_RETRY_BASE_SECONDS": "0.05",
                                    "SEATFLOW_RETRY_CAP_SECONDS": "0.2"})
    imported = cli(stack, "restaurants", "import", "examples/floorplans/small-bistro.json")
    assert imported.returncode == 0, imported.stderr
    plan = json.loads((ROOT / "examples/floorplans/small-bistro.json").read_text())
    rid = plan["restaurant"]["id"]
    tz = ZoneInfo(plan["restaurant"]["timezone"])
    day = (datetime.now(tz) + timedelta(days=3)).strftime("%Y-%m-%d")

    created = cli(stack, "bookings", "create", "--restaurant", rid, "--party", "2",
                  "--start", f"{day}T19:00", "--name", "Ada", "--email", "ada@example.com",
                  "--json")
    assert created.returncode == 0, created.stderr
    ids = json.loads(created.stdout)
    assert ids["workflow_id"] == booking_workflow_id(ids["booking_id"])

    waited = cli(stack, "bookings", "wait", ids["booking_id"], "--timeout", "30", "--json")
    assert waited.returncode == 0, waited.stderr
    shown = json.loads(cli(stack, "bookings", "show", ids["booking_id"], "--json").stdout)
    assert shown["assignment_state"] == "confirmed" and shown["status"] == "confirmed"
    two_tops = {t["id"] for t in plan["tables"] if t["capacity"] == 2}
    assert len(shown["tables"]) == 1 and shown["tables"][0] in two_tops
    assert [h["to"] for h in shown["history"]][-2:] == ["assigned", "confirmed"]
    assert shown["email"] == {**shown["email"], "sent": True, "count": 1}

    found = asyncio.run(visible(stack.address, 'AssignmentState = "confirmed" AND '
                                f'RestaurantId = "{rid}"', ids["workflow_id"]))
    assert ids["workflow_id"] in found

    # A party no allowed table combination can seat waits in manual review; the
    # UI filter lists it and an operator seats it from the CLI.
    big = cli(stack, "bookings", "create", "--restaurant", rid, "--party", "14",
              "--start", f"{day}T19:00", "--json")
    assert big.returncode == 0, big.stderr
    big_id = json.loads(big.stdout)["booking_id"]
    assert cli(stack, "bookings", "wait", big_id, "--timeout", "30").returncode == 0
    queue = json.loads(cli(stack, "review", "list", "--restaurant", rid, "--json").stdout)
    assert [r["booking_id"] for r in queue] == [big_id]
    found = asyncio.run(visible(stack.address, 'AssignmentState = "manual_review"',
                                booking_workflow_id(big_id)))
    assert booking_workflow_id(big_id) in found
    refused = cli(stack, "review", "assign", big_id, "--tables", "NOPE", "--actor", "ops")
    assert refused.returncode == 1 and "unknown table" in refused.stderr
    # Four movable tables (more than SEATFLOW_MAX_TABLES): checked like any plan,
    # refused unless the operator forces it; fixed tables are never joined.
    two_top = next(t["id"] for t in plan["tables"] if t["capacity"] == 2
                   and t.get("mobility", "movable") == "movable" and t["id"] not in shown["tables"])
    free = sorted(["S5", "S6", "S7", two_top])
    unforced = cli(stack, "review", "assign", big_id, "--tables", ",".join(free), "--actor", "ops")
    assert unforced.returncode == 1 and "--force" in unforced.stderr, unforced.stderr
    assigned = cli(stack, "review", "assign", big_id, "--tables", ",".join(free), "--actor", "ops",
                   "--force")
    assert assigned.returncode == 0, assigned.stderr
    final = json.loads(cli(stack, "bookings", "show", big_id, "--json").stdout)
    assert final["assignment_state"] == "confirmed" and sorted(final["tables"]) == free
