"""The schema and the storage guarantees on real PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.breaker import is_infrastructure_error
from seatflow.domain.states import IllegalTransition
from seatflow.storage.db import connection, downgrade, make_engine, statement, upgrade
from seatflow.storage.transitions import VersionConflict, transition
from tests.support import fetch, floorplan, import_plan, new_booking, scalar, slot

APP_TABLES = {
    "restaurants", "restaurant_services", "service_turn_times", "zones", "dining_tables",
    "table_adjacency", "bookings", "allocations", "booking_assignment_state_history",
    "booking_assignment_attempts", "observability_events", "state_event_outbox", "email_outbox",
    "permit_intervals", "intake_outbox", "holds",
}


async def test_migrations_apply_to_an_empty_database_and_downgrade_cleanly() -> None:
    from seatflow.storage.embedded import start_embedded_postgres

    home = Path(tempfile.mkdtemp(prefix="seatflow-migrate-"))
    url = start_embedded_postgres(home / "pg", persistent=False)
    engine = make_engine(url, pool_size=1, max_overflow=0)

    async def tables() -> set[str]:
        async with engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))
            return {r[0] for r in rows} - {"alembic_version"}

    try:
        assert await tables() == set()
        upgrade(url)
        assert await tables() == APP_TABLES
        downgrade(url, "base")
        assert await tables() == set()
        upgrade(url)  # and up again: the downgrade left nothing behind
        assert await tables() == APP_TABLES
    finally:
        await engine.dispose()
        import pgserver

        pgserver.get_server(home / "pg").cleanup()
        shutil.rmtree(home, ignore_errors=True)


async def _table_id(engine: AsyncEngine, rid: str, code: str) -> int:
    return int(await scalar(engine, "SELECT id FROM dining_tables WHERE restaurant_id = :r "
                            "AND code = :c", r=rid, c=code))


async def test_exclusion_constraint_rejects_an_overlap_written_in_sql_and_accepts_back_to_back(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2},
                                                 {"id": "T2", "capacity": 2}]))
    bookings = [await new_booking(db_engine, rid, 2) for _ in range(4)]
    t1, t2 = await _table_id(db_engine, rid, "T1"), await _table_id(db_engine, rid, "T2")
    start = slot()
    insert = text("INSERT INTO allocations (booking_id, restaurant_id, table_id, occupied) "
                  "VALUES (CAST(:b AS uuid), :r, :t, tstzrange(:s, :e, '[)'))")
    async with db_engine.begin() as conn:
        await conn.execute(insert, {"b": bookings[0], "r": rid, "t": t1, "s": start,
                                    "e": start + timedelta(hours=2)})
        # Back to back: [19:00, 21:00) then [21:00, 22:00) on the same table.
        await conn.execute(insert, {"b": bookings[1], "r": rid, "t": t1,
                                    "s": start + timedelta(hours=2), "e": start + timedelta(hours=3)})
        # The same window on another table.
        await conn.execute(insert, {"b": bookings[2], "r": rid, "t": t2, "s": start,
                                    "e": start + timedelta(hours=2)})
    with pytest.raises(IntegrityError, match="allocations_no_double_booking"):
        async with db_engine.begin() as conn:
            await conn.execute(insert, {"b": bookings[3], "r": rid, "t": t1,
                                        "s": start + timedelta(minutes=119),
                                        "e": start + timedelta(hours=4)})
    assert await scalar(db_engine, "SELECT count(*) FROM allocations WHERE restaurant_id = :r",
                        r=rid) == 3


async def test_a_transition_naming_a_stale_version_fails_and_changes_nothing(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2)

    async def snapshot() -> tuple[object, ...]:
        return (
            tuple(await fetch(db_engine, "SELECT assignment_state, assignment_state_version, "
                              "last_reason FROM bookings WHERE id = CAST(:id AS uuid)", id=booking)),
            await scalar(db_engine, "SELECT count(*) FROM booking_assignment_state_history "
                         "WHERE booking_id = CAST(:id AS uuid)", id=booking),
            await scalar(db_engine, "SELECT count(*) FROM observability_events "
                         "WHERE booking_id = CAST(:id AS uuid)", id=booking),
            await scalar(db_engine, "SELECT count(*) FROM state_event_outbox "
                         "WHERE booking_id = CAST(:id AS uuid)", id=booking),
        )

    async with connection(db_engine) as conn:
        assert await transition(conn, booking, 0, "capacity_verified") == 1
    before = await snapshot()
    with pytest.raises(VersionConflict, match="expected 0, found 1"):
        async with connection(db_engine) as conn:
            await transition(conn, booking, 0, "assignment_pending", reason="stale")
    with pytest.raises(IllegalTransition, match="capacity_verified to confirmed"):
        async with connection(db_engine) as conn:
            await transition(conn, booking, 1, "confirmed")
    assert await snapshot() == before
    async with connection(db_engine) as conn:
        assert await transition(conn, booking, 1, "assignment_pending") == 2
    outbox = await fetch(db_engine, "SELECT topic, dedupe_key FROM state_event_outbox WHERE "
                         "booking_id = CAST(:id AS uuid) ORDER BY id", id=booking)
    assert outbox == [("booking.assignment_state.capacity_verified", f"{booking}:1"),
                      ("booking.assignment_state.assignment_pending", f"{booking}:2")]
    event = await fetch(db_engine, "SELECT source, context->>'from', context->>'to', "
                        "(context->>'version')::int FROM observability_events WHERE booking_id = "
                        "CAST(:id AS uuid) ORDER BY id DESC LIMIT 1", id=booking)
    assert event == [("assignment.state_machine", "capacity_verified", "assignment_pending", 2)]


async def test_transition_sets_only_allowlisted_columns_and_changes_nothing_otherwise(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    """Column names are written into the SQL text: a name outside the allowlist
    (a typo, or text from a caller) is refused before anything is written."""
    from seatflow.storage.transitions import SETTABLE_COLUMNS

    rid = f"cols-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2)
    for columns in ({"guest_email": "x@example.com"},
                    {"status = 'cancelled', guest_name": "x"}):
        async with connection(db_engine) as conn:
            with pytest.raises(ValueError, match="cannot set column"):
                await transition(conn, booking, 0, "capacity_verified", set_columns=columns)
    rows = await fetch(db_engine, "SELECT assignment_state, assignment_state_version, status, "
                                  "guest_name FROM bookings WHERE id = CAST(:b AS uuid)", b=booking)
    assert tuple(rows[0]) == ("created", 0, "pending", "Test Guest")
    assert "status" in SETTABLE_COLUMNS


async def test_a_database_error_never_repeats_the_guest_data_it_was_given(
    db_engine: AsyncEngine,
) -> None:
    """The worker logs an infrastructure error's message: it must not carry
    the statement's parameters (a guest's address, an email body)."""
    import uuid as uuid_module

    from sqlalchemy.exc import IntegrityError

    address = "ada.lovelace@example.org"
    with pytest.raises(IntegrityError) as failed:
        async with db_engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO email_outbox (booking_id, kind, recipient, subject, body) "
                "VALUES (CAST(:b AS uuid), 'confirmation', :to, 'Your table', :body)"),
                {"b": str(uuid_module.uuid4()), "to": address, "body": f"Dear Ada ({address})"})
    message = str(failed.value)
    assert "foreign key" in message  # the error itself is still explained
    assert address not in message and "Dear Ada" not in message
    # The same on the driver connection the hot path uses (storage.db.connection).
    from asyncpg.exceptions import ForeignKeyViolationError

    with pytest.raises(ForeignKeyViolationError) as raw_failed:
        async with connection(db_engine) as raw:
            await statement(
                "INSERT INTO email_outbox (booking_id, kind, recipient, subject, body) "
                "VALUES (CAST(:b AS uuid), 'confirmation', :to, 'Your table', :body)",
            ).run(raw, b=str(uuid_module.uuid4()), to=address, body=f"Dear Ada ({address})")
    message = str(raw_failed.value)
    assert "foreign key" in message
    assert address not in message and "Dear Ada" not in message


async def test_a_driver_connection_that_died_is_never_handed_out_again(pg_url: str) -> None:
    """The hot path runs on the pool's asyncpg connection (storage.db.connection):
    when its server process dies, the pool drops it, and the next caller gets
    a live one (a pool of one: without that, the next caller got the dead one)."""
    from asyncpg.exceptions import AdminShutdownError, InterfaceError

    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    pid_of = statement("SELECT pg_backend_pid()")
    try:
        async with connection(engine) as raw:
            dead = await pid_of.value(raw)
        killer = make_engine(pg_url, pool_size=1, max_overflow=0)
        async with killer.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": dead})
            for _ in range(100):  # gone, not only signalled
                await conn.rollback()
                if not (await conn.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                        {"p": dead})).scalar():
                    break
                await asyncio.sleep(0.05)
        await killer.dispose()
        with pytest.raises((AdminShutdownError, InterfaceError)):
            async with connection(engine, transaction=False) as raw:
                await pid_of.value(raw)
        for transaction in (False, True):
            async with connection(engine, transaction=transaction) as raw:
                assert await pid_of.value(raw) != dead
    finally:
        await engine.dispose()


async def test_a_driver_connection_left_in_a_transaction_is_never_pooled(pg_url: str) -> None:
    """A caller that begins a transaction on the driver connection and leaves
    it open must not hand it to the next caller with its locks (the pool's
    reset only rolls back SQLAlchemy's own transactions): it is dropped."""
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    pid_of = statement("SELECT pg_backend_pid()")
    try:
        async with connection(engine, transaction=False) as raw:
            leaked = await pid_of.value(raw)
            await raw.execute("BEGIN")
            await raw.execute("SELECT pg_advisory_xact_lock(424242)")
        async with connection(engine) as raw:
            assert await pid_of.value(raw) != leaked
            assert await statement("SELECT pg_try_advisory_xact_lock(424242)").value(raw)
    finally:
        await engine.dispose()


async def test_driver_statements_are_inside_the_connections_transaction(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    """`driver(conn)` on a connection whose transaction SQLAlchemy has not begun
    yet: its statements still belong to that transaction (a rollback undoes
    them), never committed on their own."""
    from seatflow.storage.db import driver

    rid = f"drv-{unique_id}"
    async with db_engine.connect() as conn:
        raw = await driver(conn)
        await raw.execute("INSERT INTO restaurants (id, name, timezone) VALUES ($1, 'x', 'UTC')",
                          rid)
        await conn.rollback()
    assert await scalar(db_engine, "SELECT count(*) FROM restaurants WHERE id = :r",
                        r=rid) == 0


async def test_a_transaction_left_idle_is_ended_by_the_server_and_its_locks_freed(
    pg_url: str,
) -> None:
    """A process that stops inside a transaction (frozen, cut off) without
    closing its socket must not keep its locks: PostgreSQL ends the session
    after `idle_in_transaction_seconds` (storage.db.make_engine), the next
    statement fails as a lost connection, the pool drops it, and another
    session takes the lock at once."""
    from asyncpg.exceptions import InterfaceError, PostgresError

    engine = make_engine(pg_url, pool_size=1, max_overflow=0, idle_in_transaction_seconds=0.3)
    other = make_engine(pg_url, pool_size=1, max_overflow=0)
    pid_of = statement("SELECT pg_backend_pid()")
    take = statement("SELECT pg_try_advisory_xact_lock(:k)")
    try:
        with pytest.raises((InterfaceError, PostgresError)) as ended:
            async with connection(engine) as raw:
                frozen = await pid_of.value(raw)
                assert await take.value(raw, k=515151)
                async with connection(other) as free:  # held while the session lives
                    assert not await take.value(free, k=515151)
                for _ in range(100):  # until the server has ended the session
                    await asyncio.sleep(0.1)
                    async with connection(other) as free:
                        if not await statement(
                                "SELECT count(*) FROM pg_stat_activity WHERE pid = :p"
                        ).value(free, p=frozen):
                            break
                await pid_of.value(raw)
        assert is_infrastructure_error(ended.value)  # retried, and counted by the breaker
        async with connection(other) as free:
            assert await take.value(free, k=515151)
        async with connection(engine) as raw:
            assert await pid_of.value(raw) != frozen
    finally:
        await engine.dispose()
        await other.dispose()


async def test_every_session_of_the_engine_bounds_an_idle_transaction(
    db_engine: AsyncEngine,
) -> None:
    from seatflow.storage.db import IDLE_IN_TRANSACTION_SECONDS

    ms = "SELECT setting FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'"
    async with connection(db_engine) as raw:
        assert await statement(ms).value(raw) == str(round(IDLE_IN_TRANSACTION_SECONDS * 1000))
    async with db_engine.connect() as conn:  # SQLAlchemy's own connections too
        assert (await conn.execute(text(ms))).scalar() == str(
            round(IDLE_IN_TRANSACTION_SECONDS * 1000))
