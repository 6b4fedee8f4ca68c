"""Bookings: create one, show it, wait for it, cancel it, resume its workflow,
find the stuck ones. The API and the CLI call these functions and only render
what they return or raise.

`create_booking` writes the booking and its intake row in one transaction,
then starts the workflow. If Temporal is unreachable the booking is kept and
the intake relay starts its workflow later.

Refusals raise `BookingActionRefused` (or a subclass) with a stable `code` for
programs and a message for people; an unknown booking raises `BookingNotFound`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from seatflow.domain import search_attributes as sa
from seatflow.domain.intake import NewBooking
from seatflow.domain.localtime import local_time
from seatflow.domain.messages import BookingOutcome, BookingWorkflowInput
from seatflow.domain.planning import EngineConfig
from seatflow.domain.restaurant import (
    DEFAULT_HORIZON_DAYS,
    InvalidBooking,
    check_horizon,
    parse_start,
)
from seatflow.domain.review import InvalidDecision, parse_cancel
from seatflow.domain.states import FINAL, SETTLED, TERMINAL, AssignmentState
from seatflow.domain.workflow_ids import booking_id_of, booking_workflow_id
from seatflow.service.availability import check_start
from seatflow.service.mail_workflow import send_after_close
from seatflow.storage.booking_view import load_booking_view
from seatflow.storage.intake import (
    find_existing_booking,
    insert_booking_once,
    intake_details,
    mark_intake_started,
)
from seatflow.storage.lifecycle import cancel_booking as store_cancel_booking
from seatflow.storage.restaurants import load_policy
from seatflow.storage.transitions import BookingNotFound

__all__ = [
    "WORKFLOW_NAME", "AlreadyResolved", "BookingActionRefused", "BookingNotFound",
    "CancelPending", "CreatedBooking", "NotAvailable", "ResumedBooking", "booking_view",
    "cancel_booking_request", "create_booking", "request_booking", "resume_booking",
    "signal_cancel", "start_booking_workflow", "stuck_bookings", "table_order",
    "wait_until_settled",
]

WORKFLOW_NAME = "BookingAssignmentWorkflow"
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class CreatedBooking:
    booking_id: str
    workflow_id: str
    workflow_started: bool = True
    # False when a retry with the same idempotency key (or booking id) got the
    # booking an earlier call created: no second booking, workflow or email.
    created: bool = True
    assignment_state: str | None = None  # read back by `request_booking`


class NotAvailable(InvalidBooking):
    """Availability was required and the asked time has no valid plan now."""

    def __init__(self, message: str, *, start: datetime, nearest: list[datetime]):
        super().__init__("not_available", message)
        self.start = start
        self.nearest = nearest


class BookingActionRefused(Exception):
    """The action was refused or lost a race; the message says what happened and
    `code` names it for programs (the API's error codes)."""

    def __init__(self, message: str, *, code: str = "refused", overridable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # An operator's plan refused by a rule `force` overrides (overage, zone, adjacency).
        self.overridable = overridable


class AlreadyResolved(BookingActionRefused):
    """The booking is already settled for good (or its workflow has closed)."""

    def __init__(self, view: dict[str, Any]) -> None:
        self.booking_id: str = view["booking_id"]
        self.state: str = view["assignment_state"]
        self.reason: str | None = view.get("last_reason")
        why = f" ({self.reason})" if self.reason else ""
        super().__init__(f"booking {self.booking_id} was already resolved: {self.state}{why}",
                         code="already_resolved")


class CancelPending(BookingActionRefused):
    """The cancellation was sent to the running workflow but not applied in time."""

    def __init__(self, view: dict[str, Any], waited: float) -> None:
        self.view = view
        super().__init__(
            f"booking {view['booking_id']}: cancellation requested but not yet applied "
            f"after {waited:g}s (state {view['assignment_state']})", code="cancel_pending")


# ------------------------------------------------------------------ create


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
            BookingWorkflowInput(booking_id=booking_id),
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
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> CreatedBooking:
    """Insert a booking and start its workflow. Raises InvalidBooking when it
    can never be seated as asked, or starts more than `horizon_days` ahead
    (`beyond_horizon`); nothing is written then.

    Idempotent on `new.idempotency_key` (or `new.booking_id`): a retry of the
    same request returns the booking the first call created (`created` False)
    and starts nothing new; the same key with a different request raises
    IdempotencyConflict. With `require_availability`, a time that has no valid
    plan right now raises NotAvailable with the nearest available start times,
    and nothing is written (accept-then-review stays the default).
    """
    now = now or datetime.now(UTC)
    check_horizon(new.start, now, horizon_days)
    existing = await find_existing_booking(engine, new)
    # On a hold the tables are already held for it (availability counts the
    # hold as taken): the hold is checked when the booking is inserted.
    if existing is None and require_availability and new.hold_id is None:
        slot, nearest, timezone = await check_start(
            engine, new.restaurant_id, new.party_size, new.start,
            config=engine_config or EngineConfig(), now=now, horizon_days=horizon_days,
        )
        if not slot.available:
            offered = ", ".join(local_time(t, timezone, "%H:%M", named=False)
                                for t in nearest) or "none that day"
            raise NotAvailable(
                f"no table for a party of {new.party_size} at "
                f"{local_time(slot.start, timezone)} ({slot.reason}); "
                f"nearest available: {offered}",
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


async def request_booking(
    engine: AsyncEngine,
    client: Client | None,
    restaurant_id: str,
    *,
    party_size: int,
    start: str,
    zone_preference: str | None = None,
    guest_name: str | None = None,
    guest_email: str | None = None,
    idempotency_key: str | None = None,
    hold_id: str | None = None,
    holder: str | None = None,
    require_availability: bool,
    task_queue: str,
    engine_config: EngineConfig,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> CreatedBooking:
    """A booking as a front door receives it (`POST .../bookings`, `seatflow
    bookings create`): `start` is ISO 8601 text, the restaurant's local time
    when it has no offset. Creates it with `create_booking` and answers with
    its assignment state. Raises InvalidBooking (`unknown_restaurant` first).
    With `hold_id`, the booking is made on that hold of `holder`
    (`service.holds`): it confirms on the held tables in its first attempt;
    an unknown, expired, used or different hold raises InvalidBooking."""
    async with engine.connect() as conn:
        policy = await load_policy(conn, restaurant_id)
    if policy is None:
        raise InvalidBooking("unknown_restaurant", f"unknown restaurant {restaurant_id!r}")
    new = NewBooking(restaurant_id=restaurant_id, party_size=party_size,
                     start=parse_start(start, policy.timezone), zone_preference=zone_preference,
                     guest_name=guest_name, guest_email=guest_email,
                     idempotency_key=idempotency_key, hold_id=hold_id, holder=holder)
    created = await create_booking(engine, client, new, task_queue=task_queue,
                                   require_availability=require_availability,
                                   engine_config=engine_config, horizon_days=horizon_days)
    view = await booking_view(engine, created.booking_id)
    return replace(created, assignment_state=view["assignment_state"])


# -------------------------------------------------------------------- read


def table_order(code: str) -> tuple[str, int, str]:
    """T2 before T10: the order a floor plan reads in."""
    digits = "".join(ch for ch in code if ch.isdigit())
    prefix = code.rstrip("0123456789")
    return (prefix, int(digits) if digits and code.endswith(digits) else -1, code)


async def booking_view(engine: AsyncEngine, booking_id: str) -> dict[str, Any]:
    """Everything an operator needs to answer "why is booking X not confirmed?"

    The one booking JSON: `GET /v1/bookings/{id}` and `bookings show --json`
    answer exactly this; tables in floor-plan order. Raises BookingNotFound."""
    view = await load_booking_view(engine, booking_id)
    view["tables"] = sorted(view["tables"], key=table_order)
    return view


async def wait_until_settled(
    engine: AsyncEngine, booking_id: str, timeout: float
) -> tuple[bool, dict[str, Any]]:
    """Poll the booking until it is settled (confirmed, manual review, failed or
    cancelled) or `timeout` seconds have passed: (settled, the booking)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        view = await booking_view(engine, booking_id)
        if view["assignment_state"] in SETTLED:
            return True, view
        if loop.time() >= deadline:
            return False, view
        await asyncio.sleep(0.2)


async def stuck_bookings(
    client: Client, older_than: timedelta, *, ui: str, namespace: str,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Bookings whose workflow is still open and not confirmed, started more
    than `older_than` ago (Temporal visibility), each with its UI link."""
    cutoff = ((now or datetime.now(UTC)) - older_than).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = (
        f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running' "
        f"AND StartTime < '{cutoff}' AND AssignmentState != 'confirmed'"
    )
    found = []
    async for wf in client.list_workflows(query):
        attrs = wf.search_attributes
        found.append({
            "workflow_id": wf.id,
            "booking_id": booking_id_of(wf.id) or wf.id,
            "state": (attrs.get("AssignmentState") or ["?"])[0],
            "restaurant_id": (attrs.get("RestaurantId") or ["?"])[0],
            "attempts": (attrs.get("AssignmentAttempts") or [0])[0],
            "started": wf.start_time.isoformat() if wf.start_time else None,
            "ui": f"{ui.rstrip('/')}/namespaces/{namespace}/workflows/{wf.id}",
        })
    return found


# ------------------------------------------------------------------ cancel


def is_closed_workflow(exc: RPCError) -> bool:
    """The RPC failed because the workflow does not exist or has closed."""
    return exc.status == RPCStatusCode.NOT_FOUND or "completed" in str(exc).lower()


async def _running(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    except Exception:  # noqa: BLE001 - no workflow (or Temporal down): cancel in the database
        return False


async def signal_cancel(handle: WorkflowHandle[Any, Any], actor: str | None,
                        reason: str | None) -> bool:
    """Signal `cancel_booking`; False (nothing sent) when the workflow has already
    closed or does not exist, so the caller cancels in the database instead."""
    try:
        await handle.signal("cancel_booking", {"actor": actor, "reason": reason})
    except RPCError as exc:
        if not is_closed_workflow(exc):
            raise
        return False
    return True


async def cancel_booking_request(
    engine: AsyncEngine, client: Client | None, booking_id: str, *,
    actor: str | None, reason: str | None, wait_seconds: float = 30.0,
    task_queue: str | None = None,
) -> dict[str, Any]:
    """Cancel a booking: through its workflow (signal `cancel_booking`) while it
    runs, which then sends the guest's cancellation message; in the database
    when it has closed, does not answer, or closes before applying the signal,
    and then the message (queued by the cancel) is sent by GuestEmailWorkflow on
    `task_queue` (None: the booking workflow's queue). Returns the cancelled
    booking. Raises BookingNotFound,
    AlreadyResolved (already cancelled or failed), CancelPending (sent, not
    applied within `wait_seconds`), BookingActionRefused `invalid_cancel`."""
    try:
        actor, reason = parse_cancel({"actor": actor, "reason": reason})
    except InvalidDecision as exc:
        raise BookingActionRefused(str(exc), code="invalid_cancel") from None
    view = await booking_view(engine, booking_id)
    if view["assignment_state"] in FINAL:
        raise AlreadyResolved(view)
    if client is not None:
        handle = client.get_workflow_handle(booking_workflow_id(booking_id))
        # The workflow may close between the check and the signal (right after it
        # sends the confirmation): a signal refused for that is a database cancel.
        signalled = await _running(handle) and await signal_cancel(handle, actor, reason)
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while signalled:
            view = await booking_view(engine, booking_id)
            if view["assignment_state"] == AssignmentState.CANCELLED:
                return view
            if view["assignment_state"] in FINAL:
                raise AlreadyResolved(view)
            if not await _running(handle):
                break  # closed without applying it: nothing else will, cancel here
            if asyncio.get_running_loop().time() > deadline:
                raise CancelPending(view, wait_seconds)
            await asyncio.sleep(POLL_SECONDS)
    result = await store_cancel_booking(engine, booking_id, actor=actor, reason=reason)
    if not result.ok:
        raise AlreadyResolved(await booking_view(engine, booking_id))
    if result.message_queued:
        await send_after_close(client, booking_id, "cancellation", task_queue=task_queue)
    return await booking_view(engine, booking_id)


# ------------------------------------------------------------------ resume


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
        raise BookingActionRefused(f"booking {booking_id} is already {state}; nothing to resume",
                                   code="already_resolved")
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
            f"booking {booking_id} ({state}): its workflow is running; nothing to resume",
            code="workflow_running")
    if status in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW):
        raise BookingActionRefused(
            f"booking {booking_id} is {state} but its workflow completed; a completed run "
            "is not restarted (fix the booking in the database first)", code="workflow_completed")
    start = datetime.fromisoformat(view["start"])
    try:
        handle = await client.start_workflow(
            WORKFLOW_NAME,
            BookingWorkflowInput(booking_id=booking_id),
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
            f"booking {booking_id}: another run started meanwhile; nothing to resume",
            code="workflow_running") from None
    await mark_intake_started(engine, booking_id)
    return ResumedBooking(booking_id, workflow_id, handle.result_run_id, previous)
