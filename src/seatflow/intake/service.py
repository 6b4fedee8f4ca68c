"""Booking intake and read models for host applications and the CLI.

`create_booking` writes the booking and its intake row in one transaction,
then starts the workflow. If Temporal is unreachable the booking is kept and
the intake relay starts its workflow later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from seatflow.domain import search_attributes as sa
from seatflow.domain.intake import NewBooking
from seatflow.domain.messages import BookingOutcome, BookingWorkflowInput
from seatflow.domain.planning import EngineConfig
from seatflow.domain.restaurant import InvalidBooking
from seatflow.domain.review import InvalidDecision, parse_cancel
from seatflow.domain.states import FINAL, AssignmentState
from seatflow.domain.states import TERMINAL as _TERMINAL
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.storage.booking_view import load_booking_view
from seatflow.storage.intake import (
    find_existing_booking,
    insert_booking_once,
    intake_details,
    mark_intake_started,
)
from seatflow.storage.lifecycle import cancel_booking as store_cancel_booking

WORKFLOW_NAME = "BookingAssignmentWorkflow"


@dataclass(frozen=True)
class CreatedBooking:
    booking_id: str
    workflow_id: str
    workflow_started: bool = True
    # False when a retry with the same idempotency key (or booking id) got the
    # booking an earlier call created: no second booking, workflow or email.
    created: bool = True


class NotAvailable(InvalidBooking):
    """Availability was required and the asked time has no valid plan now."""

    def __init__(self, message: str, *, start: datetime, nearest: list[datetime]):
        super().__init__("not_available", message)
        self.start = start
        self.nearest = nearest


def static_details(booking_id: str, restaurant_id: str, party_size: int, start: datetime) -> str:
    """The workflow's details in the Temporal UI (markdown): what the booking
    asks for and where the guest's details are. Never the guest's name or email."""
    return (
        f"Booking `{booking_id}`: party of {party_size} at restaurant `{restaurant_id}`, "
        f"{start.isoformat()}.\n\n"
        "State, attempts and last reason: *Current Details*. The guest's name and email "
        f"stay in PostgreSQL: `seatflow bookings show {booking_id}`."
    )


async def start_booking_workflow(
    client: Client,
    *,
    booking_id: str,
    restaurant_id: str,
    party_size: int,
    start: datetime,
    task_queue: str,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
) -> WorkflowHandle[Any, Any]:
    """Start the booking's workflow; a second start joins the first."""
    workflow_id = booking_workflow_id(booking_id)
    try:
        return await client.start_workflow(
            WORKFLOW_NAME,
            BookingWorkflowInput(booking_id=booking_id, restaurant_id=restaurant_id),
            id=workflow_id,
            task_queue=task_queue,
            result_type=BookingOutcome,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=id_reuse_policy,
            # No guest name or email: Temporal stores these unencrypted.
            static_summary=f"{restaurant_id}: party of {party_size} at {start.isoformat()}",
            static_details=static_details(booking_id, restaurant_id, party_size, start),
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(sa.ASSIGNMENT_STATE, AssignmentState.CREATED.value),
                SearchAttributePair(sa.RESTAURANT_ID, restaurant_id),
            ]),
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle(workflow_id, result_type=BookingOutcome)


async def create_booking(
    engine: AsyncEngine,
    client: Client | None,
    new: NewBooking,
    *,
    task_queue: str,
    now: datetime | None = None,
    require_availability: bool = False,
    engine_config: EngineConfig | None = None,
) -> CreatedBooking:
    """Insert a booking and start its workflow. Raises InvalidBooking when it
    can never be seated as asked (nothing is written then).

    Idempotent on `new.idempotency_key` (or `new.booking_id`): a retry of the
    same request returns the booking the first call created (`created` False)
    and starts nothing new; the same key with a different request raises
    IdempotencyConflict. With `require_availability`, a time that has no valid
    plan right now raises NotAvailable with the nearest available start times,
    and nothing is written (accept-then-review stays the default).
    """
    now = now or datetime.now(UTC)
    existing = await find_existing_booking(engine, new)
    if existing is None and require_availability:
        from seatflow.availability import check_start

        slot, nearest = await check_start(
            engine, new.restaurant_id, new.party_size, new.start,
            config=engine_config or EngineConfig(), now=now,
        )
        if not slot.available:
            offered = ", ".join(t.strftime("%H:%M") for t in nearest) or "none that day"
            raise NotAvailable(
                f"no table for a party of {new.party_size} at {slot.start:%Y-%m-%d %H:%M}"
                f" ({slot.reason}); nearest available: {offered}",
                start=slot.start, nearest=nearest,
            )
    booking_id, created = await insert_booking_once(engine, new, now=now)
    workflow_id = booking_workflow_id(booking_id)
    if client is None:
        return CreatedBooking(booking_id, workflow_id, workflow_started=False, created=created)
    restaurant_id, party_size, start = new.restaurant_id, new.party_size, new.start
    if not created or start.tzinfo is None:  # read back what was stored
        stored = await intake_details(engine, booking_id)
        restaurant_id, party_size, start = stored.restaurant_id, stored.party_size, stored.start
    try:
        # Idempotent: a retry joins the workflow the first call started (or
        # starts it, when the first call stopped between commit and start).
        await start_booking_workflow(
            client, booking_id=booking_id, restaurant_id=restaurant_id,
            party_size=party_size, start=start, task_queue=task_queue,
        )
    except Exception as exc:  # noqa: BLE001 - kept for the intake relay, reported to the caller
        await mark_intake_started(engine, booking_id, error=f"{type(exc).__name__}: {exc}")
        return CreatedBooking(booking_id, workflow_id, workflow_started=False, created=created)
    await mark_intake_started(engine, booking_id)
    return CreatedBooking(booking_id, workflow_id, created=created)


def table_order(code: str) -> tuple[str, int, str]:
    """T2 before T10: the order a floor plan reads in."""
    digits = "".join(ch for ch in code if ch.isdigit())
    prefix = code.rstrip("0123456789")
    return (prefix, int(digits) if digits and code.endswith(digits) else -1, code)


async def booking_view(engine: AsyncEngine, booking_id: str) -> dict[str, Any]:
    """Everything an operator needs to answer "why is booking X not confirmed?"

    Fields are the contract of `bookings show --json`; tables in floor-plan order.
    """
    view = await load_booking_view(engine, booking_id)
    view["tables"] = sorted(view["tables"], key=table_order)
    return view


# ------------------------------------------------- operator actions (CLI, host app)

TERMINAL = tuple(s.value for s in sorted(_TERMINAL))


class BookingActionRefused(Exception):
    """The action was refused or lost a race; the message says what happened."""


def _resolved(view: dict[str, Any]) -> str:
    reason = f" ({view['last_reason']})" if view.get("last_reason") else ""
    return f"booking {view['booking_id']} was already resolved: {view['assignment_state']}{reason}"


def _is_closed_workflow(exc: RPCError) -> bool:
    return exc.status == RPCStatusCode.NOT_FOUND or "completed" in str(exc).lower()


async def resolve_manual_review(
    engine: AsyncEngine, client: Client, booking_id: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """An operator's decision, through the workflow's validated Update. Raises
    BookingActionRefused with what happened when it is refused, when another
    decision won the race, or when the workflow has closed."""
    handle = client.get_workflow_handle(booking_workflow_id(booking_id))
    try:
        result: dict[str, Any] = await handle.execute_update(
            "resolve_manual_review_update", payload)
        return result
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            message = cause.message
            if message.startswith(f"booking {booking_id}"):
                raise BookingActionRefused(message) from None
            raise BookingActionRefused(f"booking {booking_id}: {message}") from None
        failure = str(cause or exc)  # e.g. the workflow closed under the Update
    except RPCError as exc:
        if not _is_closed_workflow(exc):
            raise
        failure = str(exc)
    view = await booking_view(engine, booking_id)
    if view["assignment_state"] in TERMINAL:
        raise BookingActionRefused(_resolved(view))
    raise BookingActionRefused(
        f"booking {booking_id} is {view['assignment_state']} but has no open workflow "
        f"({failure}); `seatflow bookings resume {booking_id}` starts a new run"
    )


async def signal_cancel(handle: WorkflowHandle[Any, Any], actor: str | None,
                        reason: str | None) -> bool:
    """Signal `cancel_booking`; False (nothing sent) when the workflow has already
    closed or does not exist, so the caller cancels in the database instead."""
    try:
        await handle.signal("cancel_booking", {"actor": actor, "reason": reason})
    except RPCError as exc:
        if not _is_closed_workflow(exc):
            raise
        return False
    return True


async def cancel_booking_request(
    engine: AsyncEngine, client: Client | None, booking_id: str, *,
    actor: str | None, reason: str | None, wait_seconds: float = 30.0,
) -> dict[str, Any]:
    """Cancel a booking: through its workflow (signal `cancel_booking`) while it
    runs, in the database when it has closed (also when it closes before
    applying the signal). Returns the booking view; raises
    BookingActionRefused (already cancelled or failed, bad actor or reason)."""
    try:
        actor, reason = parse_cancel({"actor": actor, "reason": reason})
    except InvalidDecision as exc:
        raise BookingActionRefused(str(exc)) from None
    view = await booking_view(engine, booking_id)
    if view["assignment_state"] in FINAL:
        raise BookingActionRefused(_resolved(view))
    if client is not None:
        handle = client.get_workflow_handle(booking_workflow_id(booking_id))
        signalled = await signal_cancel(handle, actor, reason)
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while signalled:
            view = await booking_view(engine, booking_id)
            if view["assignment_state"] == "cancelled":
                return view
            if view["assignment_state"] == "failed":
                raise BookingActionRefused(_resolved(view))
            status = (await handle.describe()).status
            if status != WorkflowExecutionStatus.RUNNING:
                break  # closed without applying it: cancel in the database
            if asyncio.get_running_loop().time() > deadline:
                raise BookingActionRefused(
                    f"booking {booking_id}: cancellation requested but not yet applied "
                    f"after {wait_seconds:g}s (state {view['assignment_state']})")
            await asyncio.sleep(0.2)
    result = await store_cancel_booking(engine, booking_id, actor=actor, reason=reason)
    if not result.ok:
        raise BookingActionRefused(_resolved(await booking_view(engine, booking_id)))
    return await booking_view(engine, booking_id)


@dataclass(frozen=True)
class ResumedBooking:
    booking_id: str
    workflow_id: str
    run_id: str | None
    previous_status: str  # FAILED, TERMINATED, TIMED_OUT, CANCELED, or NONE (never started)


async def resume_booking(
    engine: AsyncEngine, client: Client, booking_id: str, *, task_queue: str
) -> ResumedBooking:
    """Start a new workflow run for a booking that is not settled (not
    confirmed, failed or cancelled) when its workflow failed, was terminated,
    timed out or was cancelled, or never started. Raises BookingActionRefused
    otherwise, saying why."""
    view = await booking_view(engine, booking_id)
    state = view["assignment_state"]
    if state in TERMINAL:
        raise BookingActionRefused(f"booking {booking_id} is already {state}; nothing to resume")
    workflow_id = booking_workflow_id(booking_id)
    try:
        status = (await client.get_workflow_handle(workflow_id).describe()).status
        previous = status.name if status is not None else "NONE"
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        status, previous = None, "NONE"
    if status == WorkflowExecutionStatus.RUNNING:
        raise BookingActionRefused(
            f"booking {booking_id} ({state}): its workflow is running; nothing to resume")
    if status in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW):
        raise BookingActionRefused(
            f"booking {booking_id} is {state} but its workflow completed; a completed run "
            "is not restarted (fix the booking in the database first)")
    start = datetime.fromisoformat(view["start"])
    try:
        handle = await client.start_workflow(
            WORKFLOW_NAME,
            BookingWorkflowInput(booking_id=booking_id, restaurant_id=view["restaurant_id"]),
            id=workflow_id, task_queue=task_queue, result_type=BookingOutcome,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            static_summary=(f"{view['restaurant_id']}: party of {view['party_size']} at "
                            f"{start.isoformat()}"),
            static_details=static_details(booking_id, view["restaurant_id"],
                                          view["party_size"], start),
        )
    except WorkflowAlreadyStartedError:
        raise BookingActionRefused(
            f"booking {booking_id}: another run started meanwhile; nothing to resume") from None
    await mark_intake_started(engine, booking_id)
    return ResumedBooking(booking_id, workflow_id, handle.result_run_id, previous)
