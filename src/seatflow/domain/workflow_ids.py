"""Workflow ids: one function per kind of workflow, derived from the booking id.

The id is the idempotency key of a booking's workflow (a second start joins the
first), so it is spelled here once and nowhere else.
"""

from __future__ import annotations

BOOKING_PREFIX = "booking-assignment-"
SHADOW_PREFIX = "shadow-"
GUEST_EMAIL_PREFIX = "guest-email-"


def booking_workflow_id(booking_id: str) -> str:
    """The id of the booking's BookingAssignmentWorkflow."""
    return f"{BOOKING_PREFIX}{booking_id}"


def shadow_workflow_id(booking_id: str) -> str:
    """The id of the booking's ShadowAssignmentWorkflow (a child of the booking's)."""
    return f"{SHADOW_PREFIX}{booking_id}"


def email_workflow_id(booking_id: str, kind: str) -> str:
    """The id of the GuestEmailWorkflow that sends the booking's `kind` message
    after its booking workflow closed (a second start joins the first)."""
    return f"{GUEST_EMAIL_PREFIX}{booking_id}-{kind}"


def booking_id_of(workflow_id: str) -> str | None:
    """The booking id in a booking or shadow workflow id; None for any other id."""
    for prefix in (BOOKING_PREFIX, SHADOW_PREFIX):
        if workflow_id.startswith(prefix) and len(workflow_id) > len(prefix):
            return workflow_id[len(prefix):]
    return None
