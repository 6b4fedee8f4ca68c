"""The booking workflow, split by concern: `workflow.py` (the run loop,
automatic attempts, the legacy path), `review.py` (manual review),
`cancel.py` (cancellation), `core.py` (the state and the activity calls
they share)."""

from workflows.booking.workflow import BookingAssignmentWorkflow

__all__ = ["BookingAssignmentWorkflow"]
