"""The booking workflow, split by concern: `workflow.py` (the run loop,
automatic attempts, the legacy path), `review.py` (manual review),
`cancel.py` (cancellation), `core.py` (the state and the activity calls
they share); and `guest_email.py`, one guest message sent after the booking's
workflow has closed (a late cancellation, an operator's resend)."""

from workflows.booking.guest_email import GuestEmailWorkflow
from workflows.booking.workflow import BookingAssignmentWorkflow

__all__ = ["BookingAssignmentWorkflow", "GuestEmailWorkflow"]
