"""Which errors open the database circuit breaker: infrastructure failures,
whether SQLAlchemy wrapped them or the hot path met asyncpg's own
(`storage.db.connection` runs statements on the driver connection)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from seatflow.breaker import is_infrastructure_error


@pytest.mark.parametrize(("exc", "infrastructure"), [
    (asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), True),
    (asyncpg.exceptions.SerializationError("could not serialize"), True),
    (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
    (asyncpg.exceptions.TooManyConnectionsError("too many clients"), True),
    (asyncpg.exceptions.IdleInTransactionSessionTimeoutError("idle-in-transaction"), True),
    (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), True),
    (asyncpg.exceptions.InterfaceError("connection is closed"), True),
    (ConnectionResetError(), True),
    (asyncpg.exceptions.UniqueViolationError("duplicate key"), False),
    (asyncpg.exceptions.ExclusionViolationError("conflicting key value"), False),
    (ValueError("a bug"), False),
])
def test_asyncpg_errors_are_sorted_by_their_sqlstate(exc: BaseException,
                                                     infrastructure: bool) -> None:
    assert is_infrastructure_error(exc) is infrastructure


def test_sqlalchemy_wrapped_errors_are_sorted_by_the_driver_error() -> None:
    deadlock = DBAPIError("UPDATE", {}, asyncpg.exceptions.DeadlockDetectedError("deadlock"))
    unique = IntegrityError("INSERT", {}, asyncpg.exceptions.UniqueViolationError("dup"))
    assert is_infrastructure_error(deadlock)
    assert not is_infrastructure_error(unique)
