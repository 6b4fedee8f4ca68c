"""The manual-review queue and an operator's decision on a booking in it.

A decision goes to the booking's workflow as the validated Update
`resolve_manual_review_update`, with the actor set here from the caller's
authenticated identity (the API token, the CLI's `--actor`), never from the
decision itself. `force` on an assign is recorded with that actor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from seatflow.domain.review import InvalidDecision, parse_decision
from seatflow.domain.states import TERMINAL, AssignmentState
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.engine.validation import FORCE_HINT
from seatflow.service.bookings import (
    AlreadyResolved,
    BookingActionRefused,
    booking_view,
    is_closed_workflow,
)
from seatflow.storage.floorplans import list_restaurants
from seatflow.storage.review import manual_review_queue

UPDATE = "resolve_manual_review_update"
UPDATE_TIMEOUT_SECONDS = 20.0
# The workflow's refusal types, as the front doors' codes.
_REFUSALS = {
    "InvalidDecision": "invalid_decision",
    "NotInManualReview": "not_in_manual_review",
    "AlreadyResolved": "already_resolved",
    "AssignmentRefused": "assignment_refused",
}


async def review_queue(engine: AsyncEngine, restaurant: str | None = None) -> list[dict[str, Any]]:
    """Bookings waiting in manual review (of one restaurant, or all), earliest
    start first, as JSON values: instants in ISO 8601, with the restaurant's
    time zone so a person's screen can show them on its clock."""
    items = await manual_review_queue(engine, restaurant)
    zones = {r.id: r.timezone for r in await list_restaurants(engine)} if items else {}
    return [
        {"booking_id": i.booking_id, "restaurant_id": i.restaurant_id,
         "timezone": zones.get(i.restaurant_id),
         "party_size": i.party_size, "start": i.start.isoformat(), "attempts": i.attempts,
         "last_reason": i.last_reason, "since": i.since.isoformat() if i.since else None}
        for i in items
    ]


async def resolve_manual_review(
    engine: AsyncEngine,
    client: Client,
    booking_id: str,
    decision: Mapping[str, Any],
    *,
    actor: str,
    timeout: float = UPDATE_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """An operator's decision (`action` retry | reject | assign, with `reason`,
    `note`, `table_ids`, `force` as `seatflow.domain.review.parse_decision`
    reads them), made by `actor`. Returns the workflow's result (`booking_id`,
    `action`, `state`, `version`, `tables`, `message`).

    Raises BookingNotFound, or BookingActionRefused with its code:
    `invalid_decision` (malformed, or naming an actor), `not_in_manual_review`,
    `already_resolved` (AlreadyResolved: another decision, a cancel or the
    deadline won), `decision_refused` / `assignment_refused` (the workflow
    refused it, e.g. unknown or taken tables), `no_workflow`, `timeout` (no
    worker answered; nothing was decided), `unavailable` (Temporal)."""
    if "actor" in decision:
        raise BookingActionRefused(
            "actor is not part of a decision: it is the identity that sends it",
            code="invalid_decision")
    payload = {**decision, "actor": actor}
    try:
        parse_decision(payload)  # the workflow's validator checks it again
    except InvalidDecision as exc:
        raise BookingActionRefused(str(exc), code="invalid_decision") from None
    view = await booking_view(engine, booking_id)
    state = view["assignment_state"]
    if state != AssignmentState.MANUAL_REVIEW:  # the validator would refuse it too
        if state in TERMINAL:
            raise AlreadyResolved(view)
        raise BookingActionRefused(f"booking {booking_id} is {state}, not in manual_review",
                                   code="not_in_manual_review")
    handle = client.get_workflow_handle(booking_workflow_id(booking_id))
    try:
        result = await asyncio.wait_for(handle.execute_update(UPDATE, payload), timeout)
    except TimeoutError:
        raise BookingActionRefused(
            f"no worker answered within {timeout:g} s; nothing was decided, retry later",
            code="timeout") from None
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            raise await _refusal(engine, booking_id, cause) from None
        failure = str(cause or exc)  # e.g. the workflow closed under the Update
    except RPCError as exc:
        if not is_closed_workflow(exc):
            raise BookingActionRefused(
                f"Temporal did not take the decision ({exc.message}); retry later",
                code="unavailable") from None
        failure = str(exc)
    else:
        answer = dict(result) if isinstance(result, Mapping) else dict(vars(result))
        answer["tables"] = list(answer.get("tables") or [])
        return answer
    view = await booking_view(engine, booking_id)
    if view["assignment_state"] in TERMINAL:
        raise AlreadyResolved(view)
    raise BookingActionRefused(
        f"booking {booking_id} is {view['assignment_state']} but has no open workflow "
        f"({failure}); `seatflow bookings resume {booking_id}` starts a new run",
        code="no_workflow")


async def _refusal(engine: AsyncEngine, booking_id: str,
                   cause: ApplicationError) -> BookingActionRefused:
    code = _REFUSALS.get(cause.type or "", "decision_refused")
    if code == "decision_refused" and "not in manual_review" in cause.message:
        code = "not_in_manual_review"
    if code == "already_resolved":
        view = await booking_view(engine, booking_id)
        if view["assignment_state"] in TERMINAL:
            return AlreadyResolved(view)
    return BookingActionRefused(cause.message, code=code,
                                overridable=code == "assignment_refused"
                                and FORCE_HINT in cause.message)
