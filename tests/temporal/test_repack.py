"""Re-packing through the workflow and the one-transaction attempt, on real PostgreSQL:
a party of 6 arrives when the only 6-top holds a party of 4 that a free 4-top
could also seat; the 4 moves and the 6 is seated, in one transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from seatflow.config import Settings
from seatflow.domain.planning import Move, Plan
from seatflow.domain.states import AssignmentState
from seatflow.service.bookings import start_booking_workflow
from seatflow.storage.attempts import AttemptRecord, AttemptSpec, SearchOutcome, run_attempt
from seatflow.storage.lifecycle import verify_booking
from tests.support import booking_tables, fetch, floorplan, import_plan, new_booking, scalar, slot
from worker import build_worker


async def place(engine: AsyncEngine, booking_id: str, plans: tuple[Plan, ...],
                moves: tuple[Move, ...] = ()) -> AttemptRecord:
    """The booking's next automatic attempt, with a planner that proposes
    exactly `plans` and `moves` (what the engine would hand the database)."""
    ctx = await verify_booking(engine, booking_id, now=datetime.now(UTC))
    spec = AttemptSpec(booking_id=booking_id, restaurant_id=ctx.restaurant_id,
                       expected_version=ctx.version, attempt_no=ctx.attempts_used + 1,
                       on_failure=AssignmentState.ASSIGNMENT_PENDING, max_parallel=3,
                       slot_wait_seconds=2.0)
    return await run_attempt(engine, spec, lambda _snapshot, _request: SearchOutcome(plans, moves))


async def seat_at(engine: AsyncEngine, booking_id: str, tables: tuple[str, ...],
                  strategy: str = "optimal_fit") -> None:
    """Confirm a booking on chosen tables (as an earlier, less clever assignment did)."""
    result = await place(engine, booking_id, (Plan(tables=tables, score=0.0, strategy=strategy),))
    assert result.outcome == "confirmed"


async def test_party_of_six_repacks_a_four_off_the_only_six_top(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str,
    mailbox: Path,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "SIX", "capacity": 6, "mobility": "fixed"},
        {"id": "FOUR", "capacity": 4, "mobility": "fixed"},
    ]))
    start = slot()
    four = await new_booking(db_engine, rid, 4, start=start)
    await seat_at(db_engine, four, ("SIX",))
    six = await new_booking(db_engine, rid, 6, start=start)
    queue = f"repack-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        handle = await start_booking_workflow(dev_env.client, booking_id=six, restaurant_id=rid,
                                              party_size=6, start=start, task_queue=queue)
        outcome = await handle.result()
    assert outcome.state == "confirmed" and outcome.strategy == "repack"
    assert await booking_tables(db_engine, six) == ["SIX"]
    assert await booking_tables(db_engine, four) == ["FOUR"]
    moved = await fetch(db_engine, "SELECT reason, metadata->'to_tables' FROM "
                        "booking_assignment_state_history WHERE booking_id = CAST(:id AS uuid) "
                        "AND reason LIKE 'repacked_for:%'", id=four)
    assert moved == [(f"repacked_for:{six}", ["FOUR"])]
    assert await scalar(db_engine, "SELECT assignment_state FROM bookings WHERE id = "
                        "CAST(:id AS uuid)", id=four) == "confirmed"
    # The moved guest is not re-emailed: still one outbox row, never a second.
    assert await scalar(db_engine, "SELECT count(*) FROM email_outbox WHERE booking_id = "
                        "CAST(:id AS uuid)", id=four) == 1
    assert [p.name for p in mailbox.glob("*.eml")] == [f"{six}-confirmation.eml"]


async def test_a_move_that_lost_its_race_aborts_the_whole_set(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "SIX", "capacity": 6, "mobility": "fixed"},
        {"id": "FOUR", "capacity": 4, "mobility": "fixed"},
    ]))
    start = slot()
    four = await new_booking(db_engine, rid, 4, start=start)
    await seat_at(db_engine, four, ("SIX",))
    rival = await new_booking(db_engine, rid, 4, start=start)
    await seat_at(db_engine, rival, ("FOUR",))  # took the 4-top meanwhile
    six = await new_booking(db_engine, rid, 6, start=start)
    result = await place(db_engine, six, *repack(four))
    assert result.outcome == "failed"
    assert await booking_tables(db_engine, four) == ["SIX"]  # nothing moved
    assert await booking_tables(db_engine, six) == []


async def version_of(engine: AsyncEngine, booking_id: str) -> int:
    return int(await scalar(engine, "SELECT assignment_state_version FROM bookings "
                            "WHERE id = CAST(:id AS uuid)", id=booking_id))


async def six_and_four(
    engine: AsyncEngine, unique_id: str, *, four_strategy: str = 'optimal_fit',
    promises_tables: bool = False,
) -> tuple[str, str, str]:
    """A 4 seated on the only 6-top; a 6 that needs it; the 4-top free. With
    `promises_tables`, the restaurant tells its guests their table."""
    rid = f"r-{unique_id}"
    await import_plan(engine, {**floorplan(rid, [
        {"id": "SIX", "capacity": 6, "mobility": "fixed"},
        {"id": "FOUR", "capacity": 4, "mobility": "fixed"},
    ]), "promises_tables": promises_tables})
    start = slot()
    four = await new_booking(engine, rid, 4, start=start)
    await seat_at(engine, four, ("SIX",), four_strategy)
    six = await new_booking(engine, rid, 6, start=start)
    return rid, four, six


def repack(four: str) -> tuple[tuple[Plan, ...], tuple[Move, ...]]:
    """The 6 on the 6-top, the 4 moved to the 4-top."""
    return ((Plan(tables=("SIX",), score=0.0, strategy="repack"),),
            (Move(booking_id=four, from_tables=("SIX",), to_tables=("FOUR",)),))


async def test_moves_roll_back_when_the_new_booking_cannot_be_allocated(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid, four, six = await six_and_four(db_engine, unique_id)
    before = await version_of(db_engine, four)
    async with db_engine.begin() as conn:  # the freed table went out of service meanwhile
        from sqlalchemy import text
        await conn.execute(text("UPDATE dining_tables SET status = 'out_of_service' "
                                "WHERE restaurant_id = :r AND code = 'SIX'"), {"r": rid})
    result = await place(db_engine, six, *repack(four))
    assert result.outcome == "failed"
    assert result.reason == "all 1 plans were taken at confirm time"
    assert await booking_tables(db_engine, four) == ["SIX"]  # the move was rolled back
    assert await version_of(db_engine, four) == before
    assert await scalar(db_engine, "SELECT count(*) FROM observability_events WHERE booking_id = "
                        "CAST(:id AS uuid) AND event_type = 'booking.tables_changed'", id=four) == 0
    assert await booking_tables(db_engine, six) == []


async def test_a_booking_placed_by_hand_is_never_moved(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    _rid, four, six = await six_and_four(db_engine, unique_id, four_strategy="manual")
    before = await version_of(db_engine, four)
    result = await place(db_engine, six, *repack(four))
    assert result.outcome == "failed" and "placed by hand" in str(result.reason)
    assert await booking_tables(db_engine, four) == ["SIX"]
    assert await version_of(db_engine, four) == before


async def test_a_move_is_a_versioned_write_and_the_pending_confirmation_is_left_as_written(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    _rid, four, six = await six_and_four(db_engine, unique_id)
    before = await version_of(db_engine, four)
    written = await fetch(db_engine, "SELECT subject, body, html, ics FROM email_outbox WHERE "
                          "booking_id = CAST(:id AS uuid) AND kind = 'confirmation'", id=four)
    result = await place(db_engine, six, *repack(four))
    assert result.outcome == "confirmed" and result.notify == ()
    assert await booking_tables(db_engine, four) == ["FOUR"]
    assert await version_of(db_engine, four) == before + 1
    # Counted, so the snapshot tells the engine this guest was moved already.
    assert await scalar(db_engine, "SELECT times_moved FROM bookings WHERE id = "
                        "CAST(:id AS uuid)", id=four) == 1
    assert await scalar(db_engine, "SELECT times_moved FROM bookings WHERE id = "
                        "CAST(:id AS uuid)", id=six) == 0
    history = await fetch(db_engine, "SELECT from_state, to_state, version, reason, "
                          "metadata->'to_tables' FROM booking_assignment_state_history "
                          "WHERE booking_id = CAST(:id AS uuid) AND version = :v",
                          id=four, v=before + 1)
    assert history == [("confirmed", "confirmed", before + 1, f"repacked_for:{six}", ["FOUR"])]
    assert await scalar(db_engine, "SELECT count(*) FROM observability_events WHERE booking_id = "
                        "CAST(:id AS uuid) AND event_type = 'booking.tables_changed'", id=four) == 1
    assert await scalar(db_engine, "SELECT topic FROM state_event_outbox WHERE dedupe_key = :k",
                        k=f"{four}:{before + 1}") == "booking.tables_changed"
    # The confirmation names no table, so the move changes nothing in it.
    after = await fetch(db_engine, "SELECT subject, body, html, ics FROM email_outbox WHERE "
                        "booking_id = CAST(:id AS uuid) AND kind = 'confirmation'", id=four)
    assert after == written
    assert "SIX" not in after[0].body and "FOUR" not in after[0].body


async def test_a_restaurant_that_promises_tables_rewrites_a_pending_confirmation(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    _rid, four, six = await six_and_four(db_engine, unique_id, promises_tables=True)
    assert "Table SIX" in await scalar(
        db_engine, "SELECT body FROM email_outbox WHERE booking_id = CAST(:id AS uuid) "
        "AND kind = 'confirmation'", id=four)
    result = await place(db_engine, six, *repack(four))
    assert result.outcome == "confirmed" and result.notify == ()
    row = (await fetch(db_engine, "SELECT body, html FROM email_outbox WHERE booking_id = "
                       "CAST(:id AS uuid) AND kind = 'confirmation'", id=four))[0]
    assert "Table FOUR (Main)" in row.body and "SIX" not in row.body
    assert "Table FOUR (Main)" in row.html and "SIX" not in row.html
    assert await scalar(db_engine, "SELECT count(*) FROM email_outbox WHERE booking_id = "
                        "CAST(:id AS uuid)", id=four) == 1


async def test_a_moved_guest_already_emailed_gets_a_table_changed_email_when_tables_are_promised(
    db_engine: AsyncEngine, unique_id: str, tmp_path: Path,
) -> None:
    from seatflow.mail import FileMailbox, send_outbox_email
    from seatflow.storage.db import connection
    from seatflow.storage.placement import MOVED_BOOKING, RELEASE, _tell_moved_guest, allocate

    rid, four, six = await six_and_four(db_engine, unique_id, promises_tables=True)
    mailbox = FileMailbox(tmp_path)
    sent = await send_outbox_email(db_engine, mailbox, four, "confirmation", "b@seatflow.local")
    assert sent.sent
    result = await place(db_engine, six, *repack(four))
    assert result.outcome == "confirmed" and result.notify == (four,)
    note = await send_outbox_email(db_engine, mailbox, four, "table_changed", "b@seatflow.local")
    assert note.sent
    assert sorted(p.name for p in tmp_path.glob("*.eml")) == sorted(
        [f"{four}-confirmation.eml", f"{four}-table_changed.eml"])
    text_of = (tmp_path / f"{four}-table_changed.eml").read_text()
    assert "Table FOUR (Main)" in text_of and "different table" in text_of
    # Moved again (by hand here: re-packing never moves a guest twice): the
    # re-armed table_changed email is a new message, not a duplicate.
    async with connection(db_engine) as conn:
        row = await MOVED_BOOKING.row(conn, id=four)
        await RELEASE.run(conn, ids=[four, six])
        assert await allocate(conn, four, rid, ("SIX",), row["start_at"],
                              row["occupied_until"]) is None
        assert await _tell_moved_guest(conn, four, row, ("SIX",))
    again = await send_outbox_email(db_engine, mailbox, four, "table_changed", "b@seatflow.local")
    assert again.sent
    assert "Table SIX (Main)" in (tmp_path / f"{four}-table_changed.eml").read_text()
    assert await scalar(db_engine, "SELECT send_attempts FROM email_outbox WHERE booking_id = "
                        "CAST(:id AS uuid) AND kind = 'table_changed'", id=four) == 1


async def five_moved_for_a_party_of_twenty(
    engine: AsyncEngine, unique_id: str, tmp_path: Path, *, promises_tables: bool,
) -> tuple[list[str], AttemptRecord]:
    """Five 2s, each on one of the row of 4-tops A1-A5 and already emailed;
    a 20 that needs the whole row, so a re-pack moves each 2 to a free 2-top."""
    from seatflow.mail import FileMailbox, send_outbox_email

    rid = f"r-{unique_id}"
    row = [f"A{i}" for i in range(1, 6)]
    await import_plan(engine, {**floorplan(
        rid, [{"id": a, "capacity": 4} for a in row]
        + [{"id": f"B{i}", "capacity": 2, "mobility": "fixed"} for i in range(1, 6)],
        adjacency=[list(pair) for pair in pairwise(row)],
    ), "promises_tables": promises_tables})
    start = slot()
    twos = []
    for table in row:
        two = await new_booking(engine, rid, 2, start=start)
        await seat_at(engine, two, (table,))
        sent = await send_outbox_email(engine, FileMailbox(tmp_path), two, "confirmation",
                                       "b@seatflow.local")
        assert sent.sent
        twos.append(two)
    twenty = await new_booking(engine, rid, 20, start=start)
    moves = tuple(Move(booking_id=two, from_tables=(f"A{i}",), to_tables=(f"B{i}",))
                  for i, two in enumerate(twos, start=1))
    result = await place(engine, twenty, (Plan(tables=tuple(row), score=0.0,
                                               strategy="repack"),), moves)
    assert result.outcome == "confirmed"
    assert [await booking_tables(engine, two) for two in twos] == [[f"B{i}"] for i in range(1, 6)]
    return twos, result


async def test_a_re_pack_that_moves_five_bookings_tells_their_guests_nothing_by_default(
    db_engine: AsyncEngine, unique_id: str, tmp_path: Path,
) -> None:
    twos, result = await five_moved_for_a_party_of_twenty(db_engine, unique_id, tmp_path,
                                                          promises_tables=False)
    assert result.notify == ()
    assert await scalar(db_engine, "SELECT count(*) FROM email_outbox WHERE booking_id = "
                        "ANY(CAST(:ids AS uuid[])) AND kind <> 'confirmation'", ids=twos) == 0
    assert sorted(p.name for p in tmp_path.glob("*.eml")) == sorted(
        f"{two}-confirmation.eml" for two in twos)


async def test_a_re_pack_tells_each_moved_guest_once_when_the_restaurant_promises_tables(
    db_engine: AsyncEngine, unique_id: str, tmp_path: Path,
) -> None:
    from seatflow.mail import FileMailbox, send_outbox_email

    twos, result = await five_moved_for_a_party_of_twenty(db_engine, unique_id, tmp_path,
                                                          promises_tables=True)
    assert sorted(result.notify) == sorted(twos)
    for i, two in enumerate(twos, start=1):
        assert "Table A" in (tmp_path / f"{two}-confirmation.eml").read_text()
        note = await send_outbox_email(db_engine, FileMailbox(tmp_path), two, "table_changed",
                                       "b@seatflow.local")
        assert note.sent
        changed = (tmp_path / f"{two}-table_changed.eml").read_text()
        assert f"Table B{i} (Main)" in changed and "different table" in changed
    assert await scalar(db_engine, "SELECT count(*) FROM email_outbox WHERE booking_id = "
                        "ANY(CAST(:ids AS uuid[])) AND kind = 'table_changed'", ids=twos) == 5


async def test_the_snapshot_says_who_placed_a_booking_by_hand_and_re_packing_leaves_it(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    from seatflow.domain.planning import BookingRequest
    from seatflow.engine import search
    from seatflow.storage.restaurants import load_snapshot

    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "SIX", "capacity": 6, "mobility": "fixed"},
        {"id": "FOUR", "capacity": 4, "mobility": "fixed", "zone": "patio"},
    ]))
    start = slot()
    four = await new_booking(db_engine, rid, 4, start=start, zone="main")
    await seat_at(db_engine, four, ("SIX",), "manual")
    async with db_engine.connect() as conn:
        snapshot = await load_snapshot(conn, rid, start, start)
    [held] = snapshot.allocations
    assert (held.booking_id, held.assignment_strategy, held.zone_preference) == (
        four, "manual", "main")
    request = BookingRequest("six", 6, held.start, held.end)
    result = search(snapshot, request, now=datetime.now(UTC))
    assert result.plans == () and result.moves == ()


async def test_a_swap_is_applied_as_one_set(db_engine: AsyncEngine, unique_id: str) -> None:
    """Two bookings trading tables: neither move can go first (each takes the
    other's table in the same window), so the set is applied as a whole. The
    re-pack is refused if one of them changed tables meanwhile, and nothing moves."""
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "A4", "capacity": 4, "mobility": "fixed"},
        {"id": "B4", "capacity": 4, "mobility": "fixed"},
        {"id": "C2", "capacity": 2, "mobility": "fixed"},
    ]))
    start = slot()
    first = await new_booking(db_engine, rid, 4, start=start)
    await seat_at(db_engine, first, ("A4",))
    second = await new_booking(db_engine, rid, 3, start=start)
    await seat_at(db_engine, second, ("B4",))
    before = (await version_of(db_engine, first), await version_of(db_engine, second))
    new = await new_booking(db_engine, rid, 2, start=start)
    swap = (Move(booking_id=first, from_tables=("A4",), to_tables=("B4",)),
            Move(booking_id=second, from_tables=("B4",), to_tables=("A4",)))
    stale = (Move(booking_id=first, from_tables=("A4",), to_tables=("B4",)),
             Move(booking_id=second, from_tables=("C2",), to_tables=("A4",)))
    c2 = (Plan(tables=("C2",), score=0.0, strategy="repack"),)
    refused = await place(db_engine, new, c2, stale)
    assert refused.outcome == "failed" and "changed tables" in str(refused.reason)
    assert await booking_tables(db_engine, first) == ["A4"]
    assert await booking_tables(db_engine, second) == ["B4"]
    result = await place(db_engine, new, c2, swap)  # attempt 2
    assert result.outcome == "confirmed"
    assert await booking_tables(db_engine, first) == ["B4"]
    assert await booking_tables(db_engine, second) == ["A4"]
    assert await booking_tables(db_engine, new) == ["C2"]
    after = (await version_of(db_engine, first), await version_of(db_engine, second))
    assert after == (before[0] + 1, before[1] + 1)


async def window(engine: AsyncEngine, booking_id: str, start: datetime, minutes: int) -> None:
    """Give a booking an exact window (the test needs windows no turn time gives)."""
    from datetime import timedelta

    async with engine.begin() as conn:
        await conn.execute(text(
            "UPDATE bookings SET start_at = :s, end_at = :e, occupied_until = :e "
            "WHERE id = CAST(:id AS uuid)"),
            {"s": start, "e": start + timedelta(minutes=minutes), "id": booking_id})


async def test_a_retry_searches_as_the_first_attempt_did_and_a_swap_found_is_applied(
    db_engine: AsyncEngine, test_settings: Settings, unique_id: str,
) -> None:
    """Through the attempt activity on real PostgreSQL: a retry searches with
    the same rules and budgets as attempt 1 (no slower search of its own), so
    with the exact search starved of steps both say re-packing is undecided and
    move nothing; given its steps, the exact search finds the only
    re-assignment, a swap plus a move, and the database applies it as one set.

    The floor (all windows 120 min from T): a 4 asks for T; only T4 seats it,
    and "p" holds it from T+60. p can only go to A (B is held by "c" from T+120,
    who does not overlap the request and stays); A holds "a" from T, who can
    only go to B, which holds "b" from T-90; b can only go to A. So a and b
    trade tables and p takes A."""
    from dataclasses import replace
    from datetime import timedelta

    from activities.booking import BookingActivities
    from seatflow.domain.messages import AttemptRequest
    from seatflow.mail import FileMailbox

    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "T4", "capacity": 4, "mobility": "fixed"},
        {"id": "A", "capacity": 2, "mobility": "fixed"},
        {"id": "B", "capacity": 2, "mobility": "fixed"},
    ]))
    t = slot()
    seated: dict[str, str] = {}
    for name, offset, table in (("b", -90, "B"), ("a", 0, "A"), ("p", 60, "T4"), ("c", 120, "B")):
        seated[name] = await new_booking(db_engine, rid, 2, start=t)
        await window(db_engine, seated[name], t + timedelta(minutes=offset), 120)
        await seat_at(db_engine, seated[name], (table,))
    four = await new_booking(db_engine, rid, 4, start=t)
    await window(db_engine, four, t, 120)
    ctx = await verify_booking(db_engine, four, now=datetime.now(UTC))

    acts = BookingActivities(db_engine, FileMailbox(Path(test_settings.mailbox_path())),
                             test_settings)
    # three bookings move: above the default cap of 2, so this venue allows 3
    allowed = replace(acts.config, repack_max_moves=3)
    acts.config = replace(allowed, max_exact_steps=0, max_repack_steps=0)

    def attempt(no: int, version: int) -> AttemptRequest:
        return AttemptRequest(booking_id=four, restaurant_id=rid, expected_version=version,
                              attempt_no=no, on_failure="assignment_pending")

    first = await acts.run_attempt(attempt(1, ctx.version))
    assert first.outcome == "failed" and first.state == "assignment_pending"
    assert "re-packing undecided within its budget" in str(first.reason)
    second = await acts.run_attempt(attempt(2, first.version))
    assert (second.outcome, second.reason) == ("failed", first.reason)
    assert await booking_tables(db_engine, seated["a"]) == ["A"]  # nothing moved
    acts.config = allowed
    third = await acts.run_attempt(attempt(3, second.version))
    assert third.outcome == "confirmed" and third.tables == ("T4",)
    where = {name: await booking_tables(db_engine, b) for name, b in seated.items()}
    assert where == {"a": ["B"], "b": ["A"], "p": ["A"], "c": ["B"]}
    moved = await fetch(db_engine, "SELECT booking_id::text FROM booking_assignment_state_history "
                        "WHERE reason = :r", r=f"repacked_for:{four}")
    assert sorted(m[0] for m in moved) == sorted([seated["a"], seated["b"], seated["p"]])


async def test_an_attempt_retried_after_its_commit_still_names_the_moved_guests(
    db_engine: AsyncEngine, unique_id: str, tmp_path: Path,
) -> None:
    """The worker died after the commit and before Temporal recorded the
    result: the retried attempt finds its own work done and reports it whole,
    so the guest re-packing moved (at a restaurant that promised the table)
    is still told (it was not, before v1)."""
    from seatflow.mail import FileMailbox, send_outbox_email

    _rid, four, six = await six_and_four(db_engine, unique_id, promises_tables=True)
    sent = await send_outbox_email(db_engine, FileMailbox(tmp_path), four, "confirmation",
                                   "b@seatflow.local")
    assert sent.sent
    ctx = await verify_booking(db_engine, six, now=datetime.now(UTC))
    spec = AttemptSpec(booking_id=six, restaurant_id=ctx.restaurant_id,
                       expected_version=ctx.version, attempt_no=1,
                       on_failure=AssignmentState.ASSIGNMENT_PENDING, max_parallel=3,
                       slot_wait_seconds=2.0)
    plans, moves = repack(four)
    first = await run_attempt(db_engine, spec, lambda _s, _r: SearchOutcome(plans, moves))
    again = await run_attempt(db_engine, spec, lambda _s, _r: SearchOutcome(plans, moves))
    assert (first.outcome, first.notify, first.tables) == ("confirmed", (four,), ("SIX",))
    assert (again.outcome, again.notify, again.tables, again.version) == (
        "confirmed", (four,), ("SIX",), first.version)
    assert await booking_tables(db_engine, four) == ["FOUR"]  # moved once, not twice
