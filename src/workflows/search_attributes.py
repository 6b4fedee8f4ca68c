"""The booking workflow's search attributes: defined in
`seatflow.domain.search_attributes`, re-exported here for the workflow module."""

from __future__ import annotations

from seatflow.domain.search_attributes import (
    ALL,
    ASSIGNMENT_ATTEMPTS,
    ASSIGNMENT_PIPELINE,
    ASSIGNMENT_STATE,
    REGISTRATION,
    RESTAURANT_ID,
)

__all__ = ["ALL", "ASSIGNMENT_ATTEMPTS", "ASSIGNMENT_PIPELINE", "ASSIGNMENT_STATE",
           "REGISTRATION", "RESTAURANT_ID"]
