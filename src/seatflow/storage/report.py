"""The operations report's counts, read from PostgreSQL.

Scope: the bookings created in [since, until), optionally of one restaurant;
everything booking-related (attempts, transitions, emails, permits, shadow
comparisons) is taken for those bookings. Circuit-breaker events are taken by
time, and with a restaurant filter also the process-wide ones (restaurant_id
NULL), because an open breaker stops every restaurant. `seatflow.ops.report` turns
the counts into rates, targets and alert states.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seatflow.domain.assignment import MANUAL_STRATEGY, AttemptOutcome, Pipeline
from seatflow.domain.figures import (
    BREAKER_CLOSED,
    BREAKER_OPENED,
    SHADOW_COMPARISON,
    STATE_TRANSITION,
    VERSION_CONFLICT,
    BreakerEvent,
    ReportCounts,
)
from seatflow.domain.states import AUTOMATIC_OUTCOMES, SETTLED, AssignmentState


async def load_report_counts(
    engine: AsyncEngine, *, since: datetime, until: datetime, restaurant_id: str | None = None
) -> ReportCounts:
    params: dict[str, Any] = {"since": since, "until": until, "r": restaurant_id}
    out: dict[str, Any] = {}
    async with engine.connect() as conn:
        await _booking_figures(conn, params, out)
        out["permit_wait_p95_ms"] = await _permit_wait_p95(conn, params)
        await _event_figures(conn, params, out)
        out["breaker_events"] = await _breaker_events(conn, params)
    return ReportCounts(**out)


def _round(value: Any, digits: int = 4) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else round(number, digits)


# Bookings in scope; every query below joins on it.
SCOPE = (
    "WITH scope AS (SELECT * FROM bookings b WHERE b.created_at >= :since "
    "AND b.created_at < :until AND (CAST(:r AS text) IS NULL OR b.restaurant_id = CAST(:r AS text))"
    ") "
)

# The state sets and names the figures use, bound as parameters (defined once,
# in seatflow.domain).
STATES: dict[str, Any] = {
    "outcomes": [st.value for st in AUTOMATIC_OUTCOMES],
    "settled": sorted(st.value for st in SETTLED),
    "review": AssignmentState.MANUAL_REVIEW.value,
    "failed": AssignmentState.FAILED.value,
    "confirmed": AttemptOutcome.CONFIRMED.value,
    "manual": MANUAL_STRATEGY,
    "v3": Pipeline.V3.value,
}


async def _booking_figures(conn: AsyncConnection, params: dict[str, Any], out: dict[str, Any]) -> None:
    rows = (await conn.execute(
        text(SCOPE + "SELECT assignment_state, count(*) FROM scope GROUP BY assignment_state"),
        params)).all()
    out["by_state"] = {str(s): int(n) for s, n in sorted(rows)}
    row = (await conn.execute(text(
        SCOPE + """,
        flagged AS (
            SELECT s.*, EXISTS (
                SELECT 1 FROM booking_assignment_state_history h
                WHERE h.booking_id = s.id AND h.to_state = :review) AS reviewed
            FROM scope s),
        decided AS (
            SELECT * FROM flagged WHERE assignment_state = ANY(CAST(:outcomes AS text[]))
               OR confirmed_at IS NOT NULL)
        SELECT
            (SELECT count(*) FROM flagged WHERE assignment_state <> ALL(
                CAST(:settled AS text[]))) AS in_flight,
            count(*) AS decided,
            count(*) FILTER (WHERE confirmed_at IS NOT NULL) AS confirmed,
            count(*) FILTER (WHERE reviewed) AS reviewed,
            count(*) FILTER (WHERE assignment_state = :failed AND NOT reviewed) AS failed
        FROM decided
        """), {**params, **STATES})).one()
    out.update(in_flight=int(row.in_flight), decided=int(row.decided),
               confirmed=int(row.confirmed), reviewed=int(row.reviewed), failed=int(row.failed))

    row = (await conn.execute(text(
        SCOPE + """,
        v3 AS (
            SELECT s.id,
                   bool_or(a.result = :confirmed AND a.strategy IS DISTINCT FROM :manual) AS ok,
                   bool_or(s.assignment_state = ANY(CAST(:outcomes AS text[]))
                           OR s.confirmed_at IS NOT NULL) AS decided
            FROM scope s JOIN booking_assignment_attempts a ON a.booking_id = s.id
            WHERE a.pipeline = :v3 GROUP BY s.id)
        SELECT count(*) FILTER (WHERE decided) AS n, count(*) FILTER (WHERE decided AND ok) AS ok
        FROM v3
        """), {**params, **STATES})).one()
    out.update(v3_decided=int(row.n), v3_confirmed=int(row.ok))

    row = (await conn.execute(text(
        SCOPE + """
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY x) AS p95,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY x) AS p99,
               max(x) AS max, count(x) AS n
        FROM (SELECT EXTRACT(EPOCH FROM confirmed_at - created_at) AS x FROM scope
              WHERE confirmed_at IS NOT NULL
                AND assignment_strategy IS DISTINCT FROM :manual) l
        """), {**params, **STATES})).one()
    out["latency_seconds"] = {
        "p50": _round(row.p50), "p95": _round(row.p95), "p99": _round(row.p99),
        "max": _round(row.max),
    }
    out["latency_count"] = int(row.n)


async def _permit_wait_p95(conn: AsyncConnection, params: dict[str, Any]) -> float | None:
    value = (await conn.execute(text(
        SCOPE + "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY p.wait_ms) "
        "FROM permit_intervals p JOIN scope s ON s.id = p.booking_id"), params)).scalar()
    if value is None:  # no permits recorded: fall back to the attempts' own figure
        value = (await conn.execute(text(
            SCOPE + "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY a.permit_wait_ms) "
            "FROM booking_assignment_attempts a JOIN scope s ON s.id = a.booking_id "
            "WHERE a.permit_wait_ms IS NOT NULL"), params)).scalar()
    return _round(value, 3)


async def _event_figures(conn: AsyncConnection, params: dict[str, Any], out: dict[str, Any]) -> None:
    row = (await conn.execute(text(
        SCOPE + """
        SELECT count(*) FILTER (WHERE e.event_type = :transition) AS transitions,
               count(*) FILTER (WHERE e.event_type = :conflict) AS conflicts,
               count(*) FILTER (WHERE e.event_type = :shadow) AS shadow,
               count(*) FILTER (WHERE e.event_type = :shadow
                                AND (e.context->>'agree')::boolean) AS agree
        FROM observability_events e JOIN scope s ON s.id = e.booking_id
        WHERE e.event_type IN (:transition, :conflict, :shadow)
        """), {**params, "transition": STATE_TRANSITION, "conflict": VERSION_CONFLICT,
               "shadow": SHADOW_COMPARISON})).one()
    out.update(transitions=int(row.transitions), version_conflicts=int(row.conflicts),
               shadow_comparisons=int(row.shadow), shadow_agreements=int(row.agree))

    row = (await conn.execute(text(
        SCOPE + """
        SELECT count(*) FILTER (WHERE o.status = 'sent') AS sent,
               COALESCE(sum(GREATEST(o.send_attempts - 1, 0)) FILTER (WHERE o.status = 'sent'), 0)
                   AS duplicates,
               COALESCE(sum(o.duplicates_suppressed), 0) AS suppressed
        FROM email_outbox o JOIN scope s ON s.id = o.booking_id
        """), params)).one()
    out.update(emails_sent=int(row.sent), duplicate_emails=int(row.duplicates),
               duplicates_suppressed=int(row.suppressed))


async def _breaker_events(conn: AsyncConnection, params: dict[str, Any]) -> tuple[BreakerEvent, ...]:
    rows = (await conn.execute(text(
        "SELECT event_type, context, created_at FROM observability_events "
        "WHERE event_type IN (:opened, :closed) AND created_at >= :since AND created_at < :until "
        "AND (CAST(:r AS text) IS NULL OR restaurant_id IS NULL "
        "OR restaurant_id = CAST(:r AS text)) ORDER BY created_at, id"),
        {**params, "opened": BREAKER_OPENED, "closed": BREAKER_CLOSED})).all()
    return tuple(BreakerEvent(str(t), dict(c or {}), at) for t, c, at in rows)
