"""Parsing an operator's manual-review decision (pure; used by the workflow's
update validator and signal handler, and by the CLI).

`assign` may carry `"force": true`: the operator overrides the overage, zone
and adjacency rules for this plan (recorded in the history with the actor).
Nothing overrides capacity, a taken, inactive or out-of-service table, or
joined fixed tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from seatflow.domain.assignment import DecisionAction
from seatflow.domain.messages import ManualReviewDecision

ACTIONS = tuple(a.value for a in DecisionAction)
_ALLOWED_FIELDS = {
    "assign": {"action", "table_ids", "actor", "note", "force"},
    "retry": {"action", "actor", "note"},
    "reject": {"action", "actor", "reason", "note"},
}


class InvalidDecision(ValueError):
    pass


@dataclass(frozen=True)
class ReviewItem:
    """A booking waiting in manual review."""

    booking_id: str
    restaurant_id: str
    party_size: int
    start: datetime
    attempts: int  # attempts that did not confirm
    last_reason: str | None
    since: datetime | None  # when it (last) entered manual review


def parse_decision(payload: Any) -> ManualReviewDecision:
    """Validate a decision's JSON payload; raise InvalidDecision."""
    if isinstance(payload, ManualReviewDecision):
        return payload
    if not isinstance(payload, dict):
        raise InvalidDecision(f"decision must be a JSON object, got {type(payload).__name__}")
    action = payload.get("action")
    if action not in ACTIONS:
        raise InvalidDecision(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    extra = sorted(set(payload) - _ALLOWED_FIELDS[action])
    if extra:
        raise InvalidDecision(f"unexpected field(s) for {action}: {', '.join(extra)}")
    actor = payload.get("actor")
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidDecision("actor is required: who is making this decision")
    note = payload.get("note")
    if note is not None and not isinstance(note, str):
        raise InvalidDecision("note must be a string")
    if action == "assign":
        tables = payload.get("table_ids")
        if not isinstance(tables, list) or not tables:
            raise InvalidDecision("assign needs table_ids: a non-empty list of table ids")
        if not all(isinstance(t, str) and t.strip() for t in tables):
            raise InvalidDecision("table_ids must be table ids as strings, e.g. [\"T4\", \"T5\"]")
        clean = tuple(t.strip() for t in tables)
        if len(set(clean)) != len(clean):
            raise InvalidDecision("table_ids lists a table twice")
        force = payload.get("force", False)
        if not isinstance(force, bool):
            raise InvalidDecision("force must be true or false")
        return ManualReviewDecision(action=DecisionAction.ASSIGN, actor=actor.strip(), table_ids=clean,
                                    note=note, force=force)
    if action == "reject":
        reason = payload.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidDecision("reject needs a reason")
        return ManualReviewDecision(action=DecisionAction.REJECT, actor=actor.strip(), reason=reason.strip(),
                                    note=note)
    return ManualReviewDecision(action=DecisionAction.RETRY, actor=actor.strip(), note=note)


MAX_ACTOR_LENGTH = 200
MAX_REASON_LENGTH = 1000


def parse_cancel(payload: Any) -> tuple[str | None, str | None]:
    """Validate a `cancel_booking` payload: nothing, or a JSON object with an
    optional `actor` and `reason` (non-empty strings); returns (actor, reason)
    or raises InvalidDecision."""
    if payload is None:
        return None, None
    if not isinstance(payload, dict):
        raise InvalidDecision(f"cancel payload must be a JSON object, got {type(payload).__name__}")
    extra = sorted(str(k) for k in set(payload) - {"actor", "reason"})
    if extra:
        raise InvalidDecision(f"unexpected field(s) for cancel: {', '.join(extra)}")
    values: list[str | None] = []
    for name, limit in (("actor", MAX_ACTOR_LENGTH), ("reason", MAX_REASON_LENGTH)):
        value = payload.get(name)
        if value is None:
            values.append(None)
            continue
        if not isinstance(value, str) or not value.strip():
            raise InvalidDecision(f"{name} must be a non-empty string, got {value!r}")
        if len(value) > limit:
            raise InvalidDecision(f"{name} is longer than {limit} characters")
        values.append(value.strip())
    return values[0], values[1]
