"""A circuit breaker for infrastructure failures.

After `threshold` consecutive infrastructure failures (database unreachable,
timeouts) it opens for `cooldown` seconds. While open, callers do not touch
the database: the activity fails with a retryable `CircuitOpen` error whose
retry delay is the rest of the cooldown, so work waits in Temporal's activity
retry and consumes no assignment attempt. After the cooldown one probe is let
through (half-open); its success closes the breaker, its failure re-opens it.

Each worker process has its own breakers, one per outside system: `database`
(the database is equally unreachable from every process) and `mail` (the
mail server's failures must never stop booking work). An event's error text
is redacted: no guest address or database password is ever recorded. Open and close transitions are written as
`observability_events` rows (source `assignment.coordinator`) as soon as the
database can take them: an `opened` event cannot be written while the
database is down, so it is queued and flushed with the `closed` one.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from seatflow.redact import redact


def is_infrastructure_error(exc: BaseException) -> bool:
    """Errors that say nothing about the booking: the database or network failed."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, ConnectionError,
                        socket.gaierror, asyncio.TimeoutError, TimeoutError, OSError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # The SQLAlchemy error's driver error, or asyncpg's own (the hot path runs
    # on the driver connection, storage.db.connection).
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        # 08: connection exceptions, 57P: operator intervention (shutdown),
        # 53: insufficient resources, 40P01 deadlock, 40001 serialization failure,
        # 25P03: the server ended a session left idle in a transaction.
        return sqlstate.startswith(("08", "57P", "53")) or sqlstate in (
            "40P01", "40001", "25P03")
    if isinstance(exc, DBAPIError):
        return False
    name = type(exc).__name__
    return name in ("ConnectionDoesNotExistError", "CannotConnectNowError",
                    "ConnectionFailureError", "InterfaceError")


@dataclass
class BreakerEvent:
    event_type: str  # circuit_breaker.opened | circuit_breaker.closed
    at: datetime
    context: dict[str, Any]


@dataclass
class CircuitBreaker:
    name: str = "database"
    threshold: int = 5
    cooldown: float = 15.0
    clock: Callable[[], float] = time.monotonic
    state: str = "closed"  # closed | open | half_open
    failures: int = 0
    opened_at: float | None = None
    opens: int = 0
    pending_events: list[BreakerEvent] = field(default_factory=list)
    _opened_wall: datetime | None = None

    def remaining(self) -> float:
        """Seconds until a probe may run; 0 when calls may proceed."""
        if self.state != "open" or self.opened_at is None:
            return 0.0
        left = self.opened_at + self.cooldown - self.clock()
        if left <= 0:
            self.state = "half_open"
            return 0.0
        return left

    def allow(self) -> bool:
        return self.remaining() <= 0

    def record_success(self) -> None:
        if self.state in ("open", "half_open"):
            open_seconds = (
                self.clock() - self.opened_at if self.opened_at is not None else 0.0
            )
            self.pending_events.append(BreakerEvent(
                "circuit_breaker.closed", datetime.now(UTC),
                {"breaker": self.name, "open_seconds": round(open_seconds, 3),
                 "opened_at": self._opened_wall.isoformat() if self._opened_wall else None},
            ))
        self.state = "closed"
        self.failures = 0
        self.opened_at = None

    def record_failure(self, error: BaseException | str) -> None:
        self.failures += 1
        if self.state == "half_open" or (self.state == "closed" and self.failures >= self.threshold):
            if self.state == "closed":
                self.opens += 1
                self._opened_wall = datetime.now(UTC)
                self.pending_events.append(BreakerEvent(
                    "circuit_breaker.opened", self._opened_wall,
                    {"breaker": self.name, "consecutive_failures": self.failures,
                     "cooldown_seconds": self.cooldown, "error": redact(str(error))[:300]},
                ))
            self.state = "open"
            self.opened_at = self.clock()

    @property
    def gauge(self) -> int:
        """0 closed, 1 half-open, 2 open: for the state gauge."""
        self.remaining()
        return {"closed": 0, "half_open": 1, "open": 2}[self.state]

    def take_events(self) -> list[BreakerEvent]:
        events, self.pending_events = self.pending_events, []
        return events
