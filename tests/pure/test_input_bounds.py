"""The booking horizon at the ends of the calendar (issue 26, item 1): any
datetime or date, any zone, is either accepted within the horizon, or refused
with InvalidBooking `beyond_horizon` / `in_the_past` / `start_in_past`:
never an OverflowError. What passes the checks can then be windowed and
enumerated (the arithmetic availability does) without overflowing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seatflow.domain.restaurant import (
    DEFAULT_HORIZON_DAYS,
    InvalidBooking,
    RestaurantPolicy,
    ServicePeriod,
    TurnBand,
    booking_window,
    check_day,
    check_horizon,
    check_span,
)
from seatflow.engine.availability import asked_window, candidate_starts

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
BANDS = (TurnBand(None, 120),)
# A late service, past midnight, in the zones furthest from UTC.
ZONES = ("UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Europe/Paris")


def policy(tz: str) -> RestaurantPolicy:
    return RestaurantPolicy(
        id="b", name="B", timezone=tz, buffer_minutes=15, total_capacity=20,
        services=(ServicePeriod("late", time(22), time(3), BANDS),),
    )


offsets = st.integers(min_value=-14 * 60 + 1, max_value=14 * 60 - 1).map(
    lambda m: timezone(timedelta(minutes=m)))
extreme = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 3)),
    st.datetimes(min_value=datetime(9999, 12, 29), max_value=datetime(9999, 12, 31, 23, 59)),
    st.datetimes(min_value=datetime(2026, 12, 3), max_value=datetime(2028, 1, 1)),  # near NOW
    st.datetimes(),
)


@settings(max_examples=300, deadline=None)
@given(start=extreme, zone=st.one_of(st.none(), offsets), tz=st.sampled_from(ZONES))
def test_a_start_anywhere_in_the_calendar_never_overflows(
    start: datetime, zone: timezone | None, tz: str
) -> None:
    start = start.replace(tzinfo=zone)
    p = policy(tz)
    try:
        check_horizon(start, NOW, DEFAULT_HORIZON_DAYS)
        if start.tzinfo is not None:
            start.astimezone(UTC)  # what intake's fingerprint does next
        booking_window(p, 2, start, now=NOW)
    except InvalidBooking as refused:
        assert refused.code in {"beyond_horizon", "start_in_past", "outside_service"}
        return
    assert start.replace(tzinfo=start.tzinfo or p.tz) - NOW <= timedelta(days=365)


@settings(max_examples=300, deadline=None)
@given(lo=extreme, length=st.integers(min_value=1, max_value=48 * 60),
       zone=st.one_of(st.none(), offsets), tz=st.sampled_from(ZONES))
def test_a_window_anywhere_in_the_calendar_never_overflows(
    lo: datetime, length: int, zone: timezone | None, tz: str
) -> None:
    p = policy(tz)
    start = lo.replace(tzinfo=zone)
    try:
        end = start + timedelta(minutes=length)
    except OverflowError:
        return  # not a datetime a client can send
    try:
        a, b = asked_window(p, None, (start, end))
        check_span(a, b, NOW, DEFAULT_HORIZON_DAYS)
    except InvalidBooking as refused:
        assert refused.code in {"beyond_horizon", "in_the_past"}
        return
    for s in candidate_starts(p, a, b):
        booking_window(p, 2, s)


@settings(max_examples=200, deadline=None)
@given(day=st.one_of(st.dates(max_value=date(1, 1, 10)), st.dates(min_value=date(9999, 12, 20)),
                     st.dates(min_value=date(2026, 12, 1), max_value=date(2028, 1, 1)),
                     st.dates()),
       tz=st.sampled_from(ZONES))
def test_a_day_anywhere_in_the_calendar_never_overflows(day: date, tz: str) -> None:
    p = policy(tz)
    try:
        check_day(day, NOW, DEFAULT_HORIZON_DAYS)
    except InvalidBooking as refused:
        assert refused.code in {"beyond_horizon", "in_the_past"}
        return
    lo, hi = asked_window(p, day, None)
    candidate_starts(p, lo, hi)


@pytest.mark.parametrize(("start", "code"), [
    ("9999-12-31T19:30", "beyond_horizon"),
    ("9999-12-31T23:59:59.999999-12:00", "beyond_horizon"),
    ((NOW + timedelta(days=366)).isoformat(), "beyond_horizon"),
])
def test_the_horizon_names_itself(start: str, code: str) -> None:
    with pytest.raises(InvalidBooking, match="365 days ahead") as err:
        check_horizon(datetime.fromisoformat(start), NOW, DEFAULT_HORIZON_DAYS)
    assert err.value.code == code
    check_horizon(NOW + timedelta(days=365), NOW, DEFAULT_HORIZON_DAYS)
    check_horizon(NOW + timedelta(days=30), NOW, 30)
    with pytest.raises(InvalidBooking):
        check_horizon(NOW + timedelta(days=31), NOW, 30)


def test_booking_window_refuses_what_would_overflow_even_without_the_horizon() -> None:
    late = datetime(9999, 12, 31, 22, 45, tzinfo=UTC)
    with pytest.raises(InvalidBooking) as err:
        booking_window(policy("UTC"), 2, late)
    assert err.value.code == "beyond_horizon"
