"""The host timeline's layout maths (seatflow.domain.timeline) and the board
it renders (seatflow.api.routes.host), without a database or a browser: the
axis of a day (services, late bookings, daylight-saving days), where a bar
sits, the hour ticks, and what each role's board holds."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from seatflow.api.routes.host import TEMPLATES, board_view
from seatflow.domain.restaurant import ServicePeriod, TurnBand
from seatflow.domain.timeline import (
    ceil_hour,
    day_bounds,
    floor_hour,
    hour_ticks,
    offset,
    service_span,
    span_position,
    timeline_window,
)

LONDON = ZoneInfo("Europe/London")
BANDS = (TurnBand(None, 90),)
LUNCH = ServicePeriod("lunch", time(12), time(15), BANDS)
DINNER = ServicePeriod("dinner", time(17), time(23), BANDS)
LATE = ServicePeriod("late", time(22), time(2), BANDS)  # closes after midnight


def at(day: date, hh: int, mm: int = 0, tz: ZoneInfo = LONDON) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=tz).astimezone(UTC)


def test_a_day_is_its_local_midnights_and_a_spring_day_is_23_hours() -> None:
    lo, hi = day_bounds(date(2026, 7, 1), LONDON)
    assert lo == datetime(2026, 6, 30, 23, tzinfo=UTC) and hi - lo == timedelta(hours=24)
    lo, hi = day_bounds(date(2026, 3, 29), LONDON)  # clocks go forward at 01:00
    assert hi - lo == timedelta(hours=23)
    lo, hi = day_bounds(date(2026, 10, 25), LONDON)  # and back
    assert hi - lo == timedelta(hours=25)


def test_the_services_span_from_first_opening_to_last_close() -> None:
    day = date(2026, 7, 1)
    assert service_span(day, LONDON, [DINNER, LUNCH]) == (at(day, 12), at(day, 23))
    # A service closing after midnight closes the next day.
    assert service_span(day, LONDON, [DINNER, LATE]) == (at(day, 17), at(day + timedelta(1), 2))
    assert service_span(day, LONDON, []) is None


def test_the_window_is_the_services_widened_to_bookings_on_whole_local_hours() -> None:
    day = date(2026, 7, 1)
    assert timeline_window(day, LONDON, [LUNCH, DINNER]) == (at(day, 12), at(day, 23))
    # A booking running past the close widens it to the next whole hour.
    late = (at(day, 22, 30), at(day + timedelta(1), 0, 25))
    assert timeline_window(day, LONDON, [LUNCH, DINNER], [late]) == (
        at(day, 12), at(day + timedelta(1), 1))
    # One before the first opening, off the hour, widens it back to a whole hour.
    early = (at(day, 10, 45), at(day, 12, 15))
    assert timeline_window(day, LONDON, [LUNCH, DINNER], [early])[0] == at(day, 10)
    # No services: the whole local day.
    assert timeline_window(day, LONDON, []) == day_bounds(day, LONDON)


def test_whole_hours_are_read_on_the_local_clock() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30: local hours are UTC half hours
    moment = datetime(2026, 7, 1, 13, 50, tzinfo=UTC)  # 19:20 in Kolkata
    assert floor_hour(moment, kolkata).astimezone(kolkata).time() == time(19)
    assert ceil_hour(moment, kolkata).astimezone(kolkata).time() == time(20)
    exact = datetime(2026, 7, 1, 13, 30, tzinfo=UTC)  # 19:00 there
    assert ceil_hour(exact, kolkata) == exact == floor_hour(exact, kolkata)


def test_a_bar_sits_at_its_share_of_the_axis_and_is_clipped_to_it() -> None:
    day = date(2026, 7, 1)
    lo, hi = at(day, 17), at(day, 23)  # six hours
    assert span_position(at(day, 18), at(day, 19, 30), lo, hi) == (pytest.approx(16.6667),
                                                                    pytest.approx(25.0))
    assert span_position(at(day, 16), at(day, 18), lo, hi) == (0.0, pytest.approx(16.6667))
    assert span_position(at(day, 22), at(day + timedelta(1), 1), lo, hi) == (
        pytest.approx(83.3333), pytest.approx(16.6667))
    assert span_position(at(day, 14), at(day, 16), lo, hi) is None
    assert span_position(at(day, 19), at(day, 19), lo, hi) is None
    assert offset(at(day, 20), lo, hi) == 50.0
    assert offset(at(day, 16), lo, hi) is None


def test_ticks_follow_elapsed_time_and_read_the_local_clock_on_a_dst_day() -> None:
    day = date(2026, 3, 29)  # 01:00 GMT becomes 02:00 BST
    lo, hi = day_bounds(day, LONDON)
    ticks = hour_ticks(lo, hi, LONDON)
    labels = [t.label for t in ticks]
    assert labels[:3] == ["00:00", "02:00", "03:00"] and "01:00" not in labels
    assert len(ticks) == 24 and ticks[-1].offset == 100.0
    # Equal hours of elapsed time are equal widths, whatever the labels say.
    widths = [b.offset - a.offset for a, b in pairwise(ticks)]
    assert widths == [pytest.approx(100 / 23, abs=1e-3)] * 23
    autumn = hour_ticks(*day_bounds(date(2026, 10, 25), LONDON), LONDON)
    assert [t.label for t in autumn][:4] == ["00:00", "01:00", "01:00", "02:00"]


# ------------------------------------------------------------------ the board


def timeline(**extra: Any) -> dict[str, Any]:
    """A day as GET /v1/restaurants/{id}/timeline answers it."""
    return {
        "restaurant_id": "r1", "name": "Harbour", "timezone": "Europe/London",
        "date": "2026-07-01", "as_of": "2026-07-01T16:00:00+01:00",
        "window_start": "2026-07-01T17:00:00+01:00", "window_end": "2026-07-01T23:00:00+01:00",
        "services": [{"name": "dinner", "start": "17:00", "end": "23:00"}],
        "zones": [{"id": "main", "name": "Main room", "seats": 6, "tables": [
            {"id": "T1", "seats": 2, "min_party": 1, "max_party": 2, "active": True},
            {"id": "T2", "seats": 4, "min_party": 1, "max_party": None, "active": True}]}],
        "bookings": [{
            "booking_id": "aaaaaaaa-0000-0000-0000-000000000001", "short_id": "aaaaaaaa",
            "party_size": 5, "guest_initial": "A", "state": "confirmed",
            "start": "2026-07-01T18:00:00+01:00", "end": "2026-07-01T19:30:00+01:00",
            "occupied_until": "2026-07-01T19:35:00+01:00", "tables": ["T1", "T2"],
            "moved": True, "times_moved": 1, "by_operator": False}],
        "waiting": [{
            "booking_id": "bbbbbbbb-0000-0000-0000-000000000002", "short_id": "bbbbbbbb",
            "party_size": 9, "guest_initial": None, "state": "manual_review",
            "start": "2026-07-01T20:00:00+01:00", "end": "2026-07-01T22:00:00+01:00",
            "occupied_until": "2026-07-01T22:05:00+01:00", "in_review": True,
            "reason": "no plan of at most 3 tables", "attempts": 5,
            "since": "2026-07-01T15:10:00+01:00"}],
        "holds": [{"hold_id": "h1", "tables": ["T2"], "start": "2026-07-01T21:00:00+01:00",
                   "end": "2026-07-01T22:00:00+01:00", "label": "walk-in"}],
        **extra,
    }


def render(data: dict[str, Any], *, operator: bool) -> str:
    view = board_view(data, operator=operator)
    return TEMPLATES.get_template("board.html").render(**view, token_name="t")


def test_the_board_puts_each_bar_on_its_tables_at_its_time() -> None:
    view = board_view(timeline(), operator=True)
    rows = {r["id"]: r for z in view["zones"] for r in z["rows"]}
    for table in ("T1", "T2"):
        (bar,) = rows[table]["bars"]
        # 18:00-19:35 on a 17:00-23:00 axis.
        assert bar["left"] == pytest.approx(100 / 6, abs=1e-3)
        assert bar["width"] == pytest.approx(95 / 360 * 100, abs=1e-3)
        assert bar["times"] == "18:00–19:35" and bar["who"] == "A."
        assert "moved by re-packing" in bar["label"] and "confirmed" in bar["label"]
    (hold,) = rows["T2"]["holds"]
    assert hold["left"] == pytest.approx(4 / 6 * 100, abs=1e-3) and hold["times"] == "21:00–22:00"
    assert rows["T1"]["holds"] == []
    (item,) = view["review"]
    assert item["who"] == "bbbbbbbb" and item["since_local"] == "15:10"
    assert item["times"] == "20:00–22:05" and item["left"] == 50.0
    assert [t.label for t in view["ticks"]] == [f"{h}:00" for h in range(17, 24)]


def test_an_operator_board_has_the_review_actions_and_a_host_board_has_none() -> None:
    operator = render(timeline(), operator=True)
    host = render(timeline(), operator=False)
    for html in (operator, host):
        # The state in words and a mark, the moved mark, the hold shaded, the reason.
        assert 'class="bar state-confirmed moved' in html and "✓" in html and "↻" in html
        assert re.search(r'class="hold"[^>]*data-hold="h1"', html)
        assert "no plan of at most 3 tables" in html
        assert "@" not in html
    assert operator.count('data-action="seat"') == 1
    assert 'data-action="retry"' in operator and 'data-action="reject"' in operator
    assert 'class="table-pick"' in operator
    assert "data-action" not in host and "table-pick" not in host
    assert 'data-role="host"' in host


def test_the_board_escapes_what_it_shows() -> None:
    data = timeline()
    data["waiting"][0]["reason"] = '<script>alert("x")</script>'
    data["name"] = "<b>Harbour</b>"
    html = render(data, operator=True)
    assert "<script>" not in html and "<b>Harbour" not in html
    assert "&lt;script&gt;" in html
