"""How `seatflow bookings show` reads to an operator."""

from __future__ import annotations

from seatflow.cli.bookings import _render
from seatflow.cli.review import _line
from seatflow.service.bookings import table_order


def test_tables_read_in_floor_plan_order() -> None:
    assert sorted(["S10", "S2", "S1", "T12", "T3", "BAR"], key=table_order) == [
        "BAR", "S1", "S2", "S10", "T3", "T12"]


def test_show_prints_local_time_the_reason_and_every_step() -> None:
    view = {
        "booking_id": "b1", "restaurant_id": "harbour-kitchen", "timezone": "Europe/Paris",
        "party_size": 9, "start": "2026-12-01T18:30:00+00:00", "end": "2026-12-01T20:30:00+00:00",
        "status": "pending", "assignment_state": "manual_review", "assignment_state_version": 12,
        "assignment_pipeline": "v3", "tables": [], "assignment_strategy": None,
        "last_reason": "no table fits a party of 9",
        "email": {"sent": False, "sent_at": None, "duplicates_suppressed": 0,
                  "status": "pending"},
        "messages": [{"kind": "cancellation", "status": "sent", "error": None,
                      "sent_at": "2026-11-28T22:10:00+00:00"}],
        "attempts": [{"attempt_no": 1, "pipeline": "v3", "result": "no_plan",
                      "strategy": None, "reason": "no table fits a party of 9"}],
        "history": [{"from": "assignment_in_progress", "to": "manual_review", "version": 12,
                     "actor": None, "reason": "no table fits a party of 9",
                     "at": "2026-11-28T21:55:49+00:00"}],
    }
    text = _render(view)
    # On the restaurant's clock, the zone named; never the UTC the JSON keeps.
    assert "2026-12-01 19:30 -> 21:30 Europe/Paris" in text
    assert "history (Europe/Paris)\n  2026-11-28 22:55:49  v12" in text
    assert "cancellation   sent 2026-11-28 23:10 Europe/Paris" in text
    assert "18:30" not in text and "21:55" not in text
    assert "why         no table fits a party of 9" in text
    assert "#1 v3     no_plan" in text
    assert "assignment_in_progress -> manual_review: no table fits a party of 9" in text


def test_the_review_list_shows_the_start_on_the_restaurant_clock() -> None:
    line = _line({"booking_id": "b1", "restaurant_id": "harbour-kitchen",
                  "timezone": "America/New_York", "party_size": 20,
                  "start": "2026-12-16T00:30:00+00:00", "attempts": 5, "since": None,
                  "last_reason": "no table fits a party of 20"})
    assert "2026-12-15 19:30 America/New_York  attempts 5" in line
