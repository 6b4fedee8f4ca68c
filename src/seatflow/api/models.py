"""Request and response bodies of the HTTP API (validated by pydantic, and the
OpenAPI document's schemas)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

RESTAURANT_ID = r"^[a-z0-9][a-z0-9_-]*$"
CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# One address, nothing that could add a recipient or a header.
EMAIL = r"^[^@\s,;<>()\[\]\\\"']+@[^@\s,;<>()\[\]\\\"']+\.[^@\s,;<>()\[\]\\\"']+$"
# Printable text on one line.
LINE = r"^[^\x00-\x1f\x7f]*$"
UUID_TEXT = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class Error(BaseModel):
    """Every error: a stable `code` for programs and a `message` for people."""

    code: str = Field(examples=["validation_error"])
    message: str
    nearest: list[str] | None = Field(
        default=None, description="not_available: the nearest available start times"
    )
    overridable: bool | None = Field(
        default=None, description="assignment_refused: true when `force` would seat this "
        "plan (the rule it breaks is one an operator may override)")


# Bodies are strict: "4" or true is not a party size, 1 is not a name, "yes" is
# not a boolean (the OpenAPI document's types, exactly). `start` is a string
# read by the same ISO 8601 parser as the CLI's.
STRICT = ConfigDict(extra="forbid", strict=True)


class NewBookingBody(BaseModel):
    model_config = ConfigDict(
        **STRICT,
        json_schema_extra={"examples": [{
            "party_size": 4, "start": "2030-12-01T19:30", "guest_name": "Ada Lovelace",
            "guest_email": "ada@example.com",
        }]},
    )
    party_size: int = Field(ge=1, le=1000)
    start: str = Field(
        min_length=1, max_length=64, pattern=LINE,
        description="ISO 8601 date-time; without an offset it is the restaurant's local time",
    )
    zone_preference: str | None = Field(default=None, max_length=64, pattern=CODE)
    guest_name: str | None = Field(default=None, max_length=200, pattern=LINE)
    guest_email: str | None = Field(default=None, max_length=254, pattern=EMAIL)
    hold_id: str | None = Field(
        default=None, pattern=UUID_TEXT,
        description="book on this hold (POST .../holds) of this token: the booking takes "
        "the held tables in its first attempt, never manual review; party_size and start "
        "must be the hold's")
    require_availability: bool = Field(
        default=True,
        description="refuse (409 not_available, nothing written) a time with no valid plan "
        "now; false accepts it and lets the pipeline (and manual review) deal with it",
    )


class BookingCreated(BaseModel):
    booking_id: str
    workflow_id: str
    workflow_started: bool = Field(
        description="false when Temporal was unreachable: the intake relay starts it later"
    )
    created: bool = Field(description="false for a retry with an Idempotency-Key already used")
    assignment_state: str


class Attempt(BaseModel):
    attempt_no: int
    pipeline: str
    result: str
    reason: str | None
    strategy: str | None
    plans_tried: list[list[str]] | None
    permit_wait_ms: float | None
    at: str


class HistoryEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str | None = Field(alias="from")
    to: str
    version: int
    reason: str | None
    actor: str | None
    at: str


class EmailStatus(BaseModel):
    sent: bool
    count: int
    sent_at: str | None
    duplicates_suppressed: int
    status: str | None = Field(description="the confirmation's outbox status (pending, sent, "
                               "failed, no_address, ...); null when there is none")
    error: str | None = Field(description="why the last send failed (redacted), if it did")


class GuestMessage(BaseModel):
    kind: str = Field(description="confirmation, table_changed or cancellation")
    status: str = Field(description="pending, sending, sent, failed, no_address (the booking "
                        "has no guest address: never sent) or withdrawn (the booking left the "
                        "state it speaks of before it was sent)")
    sent_at: str | None
    error: str | None = Field(description="why it failed or was withdrawn (redacted)")


class BookingView(BaseModel):
    """The booking JSON: exactly what `seatflow bookings show --json` prints."""

    booking_id: str
    restaurant_id: str
    timezone: str | None
    party_size: int
    start: str
    end: str
    occupied_until: str
    zone_preference: str | None
    status: str
    assignment_state: str
    assignment_state_version: int
    assignment_strategy: str | None
    assignment_pipeline: str | None
    last_reason: str | None
    created_at: str
    confirmed_at: str | None
    tables: list[str]
    attempts: list[Attempt]
    history: list[HistoryEntry]
    email: EmailStatus
    messages: list[GuestMessage] = Field(description="every guest message of the booking")


class CancelBody(BaseModel):
    model_config = STRICT
    reason: str | None = Field(default=None, max_length=500, pattern=LINE)


class ResendBody(BaseModel):
    model_config = STRICT
    kind: Literal["confirmation", "table_changed", "cancellation"] = Field(
        default="confirmation", description="which of the booking's messages to send again")


class ResentEmail(BaseModel):
    booking_id: str
    kind: str
    workflow_id: str = Field(description="the GuestEmailWorkflow sending it")
    outcome: str = Field(description="sent, failed (with the reason), sending (still going "
                         "after the wait: it retries by itself) or not_sent (with the reason)")
    reason: str | None


class SlotModel(BaseModel):
    start: str
    end: str
    service: str
    available: bool
    reason: str | None
    repack: bool
    # not available because re-packing was not decided within availability's step
    # budget (or its wall-clock safety stop, on an overloaded machine)
    undecided: bool = False


class AvailabilityModel(BaseModel):
    restaurant_id: str
    timezone: str
    party_size: int
    slot_minutes: int
    window_start: str
    window_end: str
    as_of: str
    available: list[str]
    slots: list[SlotModel]
    safety_stop: bool = Field(
        default=False,
        description="the re-packing search's wall-clock safety stop fired (an overloaded "
        "server): times it left undecided may be decided on a retry")


class ReviewItem(BaseModel):
    booking_id: str
    restaurant_id: str
    party_size: int
    start: str
    attempts: int
    last_reason: str | None
    since: str | None
    timezone: str | None = Field(
        default=None, description="the restaurant's IANA time zone, to read `start` on its clock")


class DecisionBody(BaseModel):
    """An operator's decision; the workflow's Update validator has the last word.
    No `actor`: the decision is recorded as the token's (`api:<token name>`)."""

    model_config = ConfigDict(
        **STRICT,
        json_schema_extra={"examples": [
            {"action": "assign", "table_ids": ["T4", "T5"], "note": "window table"},
            {"action": "assign", "table_ids": ["T1", "T2", "T3"], "force": True},
            {"action": "retry"},
            {"action": "reject", "reason": "kitchen closed"},
        ]},
    )
    action: Literal["assign", "retry", "reject"]
    table_ids: list[Annotated[str, Field(min_length=1, max_length=64, pattern=CODE)]] | None = (
        Field(default=None, min_length=1, max_length=10)
    )
    force: bool = Field(
        default=False,
        description="assign only: override the overage, zone and adjacency rules (recorded "
        "with the token's identity); never capacity, fixed tables, or a taken or inactive "
        "table",
    )
    reason: str | None = Field(default=None, max_length=500, pattern=LINE)
    note: str | None = Field(default=None, max_length=500, pattern=LINE)


class DecisionResult(BaseModel):
    booking_id: str
    action: str
    state: str
    version: int
    tables: list[str]
    message: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    temporal: str


class TimelineTable(BaseModel):
    id: str
    seats: int
    min_party: int
    max_party: int | None
    active: bool = Field(description="false: a table no longer in the floor plan that a "
                         "booking of the day still holds")


class TimelineZone(BaseModel):
    id: str
    name: str
    seats: int = Field(description="seats of its active tables")
    tables: list[TimelineTable]


class TimelineBooking(BaseModel):
    """A booking seated on the timeline: a bar from `start` to `occupied_until`
    on each of its tables. No guest name or address: `guest_initial` only."""

    booking_id: str
    short_id: str = Field(description="the booking id's first 8 characters")
    party_size: int
    guest_initial: str | None
    state: str
    start: str
    end: str
    occupied_until: str
    tables: list[str]
    moved: bool = Field(description="re-packing moved it to other tables since it was seated")
    times_moved: int
    by_operator: bool = Field(description="seated by an operator's decision")


class TimelineWaiting(BaseModel):
    """A booking of the day without tables yet: being assigned, or waiting in
    manual review (`in_review`) with the reason."""

    booking_id: str
    short_id: str
    party_size: int
    guest_initial: str | None
    state: str
    start: str
    end: str
    occupied_until: str
    in_review: bool
    reason: str | None
    attempts: int
    since: str | None


class TimelineHold(BaseModel):
    hold_id: str
    tables: list[str]
    start: str
    end: str
    label: str | None


class TimelineService(BaseModel):
    name: str
    start: str = Field(description="local HH:MM")
    end: str = Field(description="local HH:MM")


class Timeline(BaseModel):
    """One local day of a restaurant: tables by zone, seated bookings, bookings
    waiting for a table, holds; instants in ISO 8601 on the restaurant's clock."""

    restaurant_id: str
    name: str
    timezone: str
    date: str
    as_of: str
    window_start: str = Field(description="the axis: the day's services widened to its "
                              "bookings, on whole local hours")
    window_end: str
    services: list[TimelineService]
    zones: list[TimelineZone]
    bookings: list[TimelineBooking]
    waiting: list[TimelineWaiting]
    holds: list[TimelineHold]


class HoldBody(BaseModel):
    model_config = ConfigDict(
        **STRICT,
        json_schema_extra={"examples": [{"party_size": 4, "start": "2030-12-01T19:30"}]},
    )
    party_size: int = Field(ge=1, le=1000)
    start: str = Field(
        min_length=1, max_length=64, pattern=LINE,
        description="ISO 8601 date-time; without an offset it is the restaurant's local time",
    )


class HoldModel(BaseModel):
    hold_id: str
    restaurant_id: str
    party_size: int
    start: str
    until: str = Field(description="end of the held interval (the turn and the buffer)")
    tables: list[str]
    expires_at: str = Field(description="after it the hold stops counting by itself")
    booking_id: str | None = None
