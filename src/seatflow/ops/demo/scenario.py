"""What the demo evening is: the restaurant, the evening, and who asks for a table.

`plan_evening` draws a neighbourhood restaurant's dinner book (mostly couples,
a few large tables, times spread over two sittings); `plan_guests` turns it
into the well-run evening's cast: a party of OPERATOR_PARTY and a few small
bookings taken by phone, then the guests who book online. Pure but for
`free_evening`, which asks the database for an evening no earlier demo booked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from seatflow.config import project_root

SAMPLE_FLOORPLAN = Path("examples") / "floorplans" / "harbour-kitchen.json"

# How a neighbourhood restaurant's dinner book looks: mostly couples, some
# threes and fours, a few larger tables and a couple of big parties.
PARTY_WEIGHTS = {2: 56, 3: 13, 4: 19, 5: 4, 6: 4, 7: 1.5, 8: 1.5}
BIG_PARTIES = (9, 10)
# Arrival times in 15-minute slots, 17:00..22:00. 120 bookings fill 40 tables
# about three times over, so the book is spread the way a full restaurant
# spreads it (early and late sittings), with a mild peak around 19:00.
SLOT_WEIGHTS = {
    "17:00": 7, "17:15": 5, "17:30": 6, "17:45": 5, "18:00": 6, "18:15": 5, "18:30": 6,
    "18:45": 5, "19:00": 7, "19:15": 5, "19:30": 6, "19:45": 5, "20:00": 6, "20:15": 5,
    "20:30": 6, "20:45": 5, "21:00": 5, "21:15": 4, "21:30": 4, "21:45": 3, "22:00": 3,
}
ZONE_WISHES = {"window": 5, "terrace": 3, "bar": 2}  # out of 100 bookings
GUESTS = ("Ada", "Ben", "Chloe", "Dev", "Elif", "Finn", "Grace", "Hugo", "Isla", "Jonah",
          "Kemi", "Leo", "Maya", "Nils", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq")

# The well-run evening's cast besides the online guests.
OPERATOR_PARTY = 20  # more than any automatic plan of the sample floor can seat
OPERATOR_PARTY_TIMES = ("18:30", "19:00", "19:30")
PHONE_SHARE = 30  # one small phone booking per this many guests (at least one)
TOLERANCE_MINUTES = 45  # a guest takes an offered time this close to the one asked for

ONLINE, PHONE = "online", "phone"


class DemoError(RuntimeError):
    """The demo cannot run; the message says what to do."""


@dataclass(frozen=True)
class DemoBooking:
    party_size: int
    start: datetime
    zone: str | None
    guest_name: str
    guest_email: str
    # online: asks availability first; phone: accepted without the check.
    channel: str = ONLINE


def plan_evening(evening: date, tz: ZoneInfo, count: int, rng: random.Random) -> list[DemoBooking]:
    """`count` dinner bookings for one evening, in the order guests make them."""
    parties = rng.choices(list(PARTY_WEIGHTS), weights=list(PARTY_WEIGHTS.values()), k=count)
    for i, big in enumerate(BIG_PARTIES[: max(0, count // 50)]):
        parties[i] = big
    bookings = []
    for party in parties:
        slot = rng.choices(list(SLOT_WEIGHTS), weights=list(SLOT_WEIGHTS.values()))[0]
        if party >= 7:
            slot = rng.choice(["18:30", "19:00", "19:30", "20:00"])  # big tables book prime time
        hour, minute = (int(x) for x in slot.split(":"))
        zone = "private" if party >= 9 and rng.random() < 0.5 else None
        if zone is None and party <= 4 and rng.random() < sum(ZONE_WISHES.values()) / 100:
            zone = rng.choices(list(ZONE_WISHES), weights=list(ZONE_WISHES.values()))[0]
        name = f"{rng.choice(GUESTS)} {chr(ord('A') + rng.randrange(26))}."
        email = f"{name.split()[0].lower()}.{rng.randrange(1000, 9999)}@example.com"
        start = datetime(evening.year, evening.month, evening.day, hour, minute, tzinfo=tz)
        bookings.append(DemoBooking(party, start, zone, name, email))
    rng.shuffle(bookings)
    return bookings


def plan_guests(evening: date, tz: ZoneInfo, count: int, rng: random.Random) -> list[DemoBooking]:
    """The well-run evening's `count` guests: the dinner book of `plan_evening`,
    with one party of OPERATOR_PARTY and a few small phone bookings (one per
    PHONE_SHARE guests, at least one) taken by phone. Phone bookings come
    first, the party of OPERATOR_PARTY at their head."""
    if count < 3:
        raise DemoError(f"a well-run evening needs at least 3 guests (a large party, a phone "
                        f"booking and an online guest), got {count}")
    guests = plan_evening(evening, tz, count - 1, rng)
    hour, minute = (int(x) for x in rng.choice(OPERATOR_PARTY_TIMES).split(":"))
    name = f"{rng.choice(GUESTS)} {chr(ord('A') + rng.randrange(26))}."
    big = DemoBooking(
        OPERATOR_PARTY, datetime(evening.year, evening.month, evening.day, hour, minute, tzinfo=tz),
        None, name, f"{name.split()[0].lower()}.{rng.randrange(1000, 9999)}@example.com", PHONE)
    phone_count = max(1, count // PHONE_SHARE)
    small = [i for i, g in enumerate(guests) if g.party_size <= 4][:phone_count]
    phone = [replace(guests[i], channel=PHONE) for i in small]
    online = [g for i, g in enumerate(guests) if i not in set(small)]
    return [big, *phone, *online]


def floorplan_path(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    for base in (project_root(), Path(__file__).resolve().parents[4]):
        if (base / SAMPLE_FLOORPLAN).exists():
            return base / SAMPLE_FLOORPLAN
    raise DemoError(f"sample floor plan {SAMPLE_FLOORPLAN} not found; pass --floorplan FILE")


async def free_evening(engine: Any, restaurant_id: str, tz: ZoneInfo) -> date:
    """Tonight if dinner is still ahead, else the next evening no earlier demo has booked."""
    from seatflow.storage.stats import bookings_starting_between

    now = datetime.now(tz)
    evening = now.date() if now.hour < 16 else now.date() + timedelta(days=1)
    for _ in range(60):
        begin = datetime(evening.year, evening.month, evening.day, 17, tzinfo=tz)
        if not await bookings_starting_between(engine, restaurant_id, begin,
                                               begin + timedelta(hours=6)):
            return evening
        evening += timedelta(days=1)
    return evening
