"""The engine benchmark's workload (bench/engine.py): floor shapes and seeded
evenings of requests, and the held tables of an evening as a snapshot.

Evenings: requests are drawn until their seat-hours (party x table time) reach
the load's share of the floor's seat-hours (seats x 6 service hours,
17:00-23:00). Parties 1-12 (mean about 2.7); half are booked ahead (days
before), half on the day (10:00 to 30 minutes before the meal), in random
order of arrival.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from seatflow.domain.planning import (
    Allocation,
    BookingRequest,
    DemandProfile,
    Mobility,
    RestaurantSnapshot,
    Table,
)

DAY = datetime(2026, 6, 12, tzinfo=UTC)
BUFFER = timedelta(minutes=5)
SERVICE_HOURS = 6  # 17:00-23:00
PARTY_MIX = {
    1: 8, 2: 55, 3: 12, 4: 13, 5: 3, 6: 3.5, 7: 1.5, 8: 1.2, 9: 0.6, 10: 0.5, 11: 0.3, 12: 0.3
}
MANY_MOVES = 3  # re-packs moving more bookings than this are counted apart


def turn_minutes(party: int) -> int:
    if party <= 2:
        return 90
    if party <= 4:
        return 105
    if party <= 6:
        return 120
    return 135


# ---------------------------------------------------------------- floors


def row(prefix: str, count: int, capacity: int, zone: str, mobility: Mobility) -> list[Table]:
    return [Table(f"{prefix}{i + 1:02d}", capacity, zone, mobility=mobility) for i in range(count)]


def chain(tables: list[Table]) -> list[tuple[str, str]]:
    return [(a.id, b.id) for a, b in pairwise(tables)]


def sample40() -> RestaurantSnapshot:
    """The 40-table sample floor: rows of 2-, 4-, 6- and 8-tops, two zones."""
    movable, fixed = Mobility.MOVABLE, Mobility.FIXED
    rows = [
        row("A", 7, 2, "main", movable),
        row("B", 7, 4, "main", movable),
        row("C", 4, 6, "main", movable),
        row("D", 2, 8, "main", fixed),
        row("E", 7, 2, "patio", movable),
        row("F", 7, 4, "patio", movable),
        row("G", 4, 6, "patio", fixed),
        row("H", 2, 8, "patio", movable),
    ]
    tables = [t for r in rows for t in r]
    edges = [e for r in rows for e in chain(r)]
    # rows A/B and E/F face each other: each 2-top touches the 4-top opposite
    edges += [(a.id, b.id) for a, b in zip(rows[0], rows[1], strict=True)]
    edges += [(a.id, b.id) for a, b in zip(rows[4], rows[5], strict=True)]
    return RestaurantSnapshot("sample40", tuple(tables), tuple(edges))


def bistro62() -> RestaurantSnapshot:
    """62 tables in four zones: two banquettes of ten movable 2-tops, a 4 x 4
    grid of movable 4-tops, eight fixed booths (four 4s, four 6s), a bar of
    twelve movable stools and six fixed high-tops of 2."""
    movable, fixed = Mobility.MOVABLE, Mobility.FIXED
    north = row("BN", 10, 2, "banquette", movable)
    south = row("BS", 10, 2, "banquette", movable)
    grid = row("G", 16, 4, "dining", movable)
    booths = row("K", 4, 4, "booths", fixed) + row("L", 4, 6, "booths", fixed)
    stools = row("S", 12, 1, "bar", movable)
    high = row("HT", 6, 2, "bar", fixed)
    edges = chain(north) + chain(south) + chain(stools)
    for r in range(4):
        cells = grid[4 * r : 4 * r + 4]
        edges += chain(cells)
        if r:
            edges += [(a.id, b.id) for a, b in zip(grid[4 * r - 4 : 4 * r], cells, strict=True)]
    tables = north + south + grid + booths + stools + high
    return RestaurantSnapshot("bistro62", tuple(tables), tuple(edges))


def corner9() -> RestaurantSnapshot:
    """A 9-table corner bistro in two zones: a chain of movable 2-, 2-, 4-, 4-tops
    and a fixed 6 inside, a terrace of two movable 2-tops, a movable 4 and a fixed 8."""
    movable, fixed = Mobility.MOVABLE, Mobility.FIXED
    inside = [
        Table("I1", 2, "inside"),
        Table("I2", 2, "inside"),
        Table("I3", 4, "inside"),
        Table("I4", 4, "inside"),
        Table("I5", 6, "inside", mobility=fixed),
    ]
    terrace = [
        Table("T1", 2, "terrace"),
        Table("T2", 2, "terrace"),
        Table("T3", 4, "terrace", mobility=movable),
        Table("T4", 8, "terrace", mobility=fixed),
    ]
    edges = chain(inside[:4]) + chain(terrace[:3])
    return RestaurantSnapshot("corner9", tuple(inside + terrace), tuple(edges))


def family_floor(seed: int) -> tuple[RestaurantSnapshot, dict[int, float]]:
    """One floor of a generated family, with its party mix: 2-5 zones, the
    first a grid of movable 4-tops (the room large parties need), the others
    each a chained banquette of movable 2-tops, another grid, fixed booths, a
    bar of movable stools and fixed high-tops, or a mixed row of movable 2- and
    4-tops; about 10 to 90 tables. The mix is the default one, couple-heavy or
    group-heavy. Not tuned for any policy: every kind of zone the bench shapes
    use, in random sizes. Every fourth floor declares its main room (zone 0)
    and the next dining zone (a grid, banquette or mixed row; not a bar or
    booths) equivalent (`equivalent_zones`), as a room and its alcove are to a
    guest: re-packing may move a booking between the two (chosen without the
    floor's random draws, so no floor's tables change)."""
    rng = random.Random(f"family-{seed}")
    movable, fixed = Mobility.MOVABLE, Mobility.FIXED
    tables: list[Table] = []
    edges: list[tuple[str, str]] = []
    kinds = ["banquette", "grid", "booths", "bar", "mixed"]
    zones: list[str] = []
    for z in range(rng.randint(2, 5)):
        kind = rng.choice(kinds) if z else "grid"
        zone = f"{kind}{z}"
        zones.append(zone)
        prefix = f"Z{z}"
        if kind == "banquette":
            r = row(f"{prefix}B", rng.randint(4, 16), 2, zone, movable)
            tables += r
            edges += chain(r)
        elif kind == "grid":
            rows, cols = rng.randint(2, 5), rng.randint(2, 5)
            cells = row(f"{prefix}G", rows * cols, 4, zone, movable)
            tables += cells
            for i in range(rows):
                line = cells[cols * i : cols * i + cols]
                edges += chain(line)
                if i:
                    above = cells[cols * (i - 1) : cols * i]
                    edges += [(a.id, b.id) for a, b in zip(above, line, strict=True)]
        elif kind == "booths":
            tables += [
                Table(f"{prefix}K{i + 1:02d}", rng.choice([4, 4, 6, 6, 8]), zone, mobility=fixed)
                for i in range(rng.randint(2, 8))
            ]
        elif kind == "bar":
            stools = row(f"{prefix}S", rng.randint(6, 14), 1, zone, movable)
            tables += stools + row(f"{prefix}H", rng.randint(2, 6), 2, zone, fixed)
            edges += chain(stools)
        else:
            r = [
                Table(f"{prefix}M{i + 1:02d}", rng.choice([2, 2, 4]), zone, mobility=movable)
                for i in range(rng.randint(4, 10))
            ]
            tables += r
            edges += chain(r)
    mix = dict(PARTY_MIX)
    flavour = rng.choice(["default", "couples", "groups"])
    if flavour == "couples":
        mix[2] *= 2
    elif flavour == "groups":
        for party in range(5, 13):
            mix[party] *= 3
    dining = [z for z in zones[1:] if z.startswith(("grid", "banquette", "mixed"))]
    groups = (tuple(sorted((zones[0], dining[0]))),) if seed % 4 == 0 and dining else ()
    floor = RestaurantSnapshot(
        f"family{seed}-{flavour}", tuple(tables), tuple(edges), zone_groups=groups
    )
    return floor, mix


SHAPES: dict[str, Callable[[], RestaurantSnapshot]] = {
    "sample40": sample40,
    "bistro62": bistro62,
    "corner9": corner9,
}


# ---------------------------------------------------------------- evenings


@dataclass(frozen=True)
class Request:
    booking_id: str
    party: int
    start: datetime
    end: datetime
    asked_at: datetime

    def booking(self) -> BookingRequest:
        return BookingRequest(self.booking_id, self.party, self.start, self.end)


def draw_start(rng: random.Random) -> datetime:
    # 15-minute slots 17:00-21:30, peaking 19:00-20:00
    slots = [17 * 60 + 15 * i for i in range(19)]
    weights = [3 if 19 * 60 <= m < 20 * 60 else 2 if 18 * 60 <= m < 21 * 60 else 1 for m in slots]
    return DAY + timedelta(minutes=rng.choices(slots, weights=weights)[0])


def evening(
    floor: RestaurantSnapshot, load: int, seed: int, mix: dict[int, float] | None = None
) -> list[Request]:
    """Requests until their seat-hours reach `load` % of the floor's, in arrival order."""
    mix = mix or PARTY_MIX
    rng = random.Random(f"{floor.restaurant_id}-{load}-{seed}")
    seats = sum(t.capacity for t in floor.tables)
    target = load / 100 * seats * SERVICE_HOURS
    requests: list[Request] = []
    total = 0.0
    while total < target:
        party = rng.choices(list(mix), weights=list(mix.values()))[0]
        start = draw_start(rng)
        end = start + timedelta(minutes=turn_minutes(party)) + BUFFER
        if rng.random() < 0.5:  # same day: between 10:00 and 30 minutes before the meal
            earliest = DAY + timedelta(hours=10)
            span = (start - timedelta(minutes=30) - earliest).total_seconds()
            asked = earliest + timedelta(seconds=rng.uniform(0, span))
        else:
            asked = DAY - timedelta(days=rng.uniform(0.1, 21))
        requests.append(Request(f"r{len(requests):04d}", party, start, end, asked))
        total += party * turn_minutes(party) / 60
    return sorted(requests, key=lambda r: (r.asked_at, r.booking_id))


HISTORY_SEEDS = range(1001, 1009)  # past evenings: never among the measured seeds


def with_history(
    floor: RestaurantSnapshot, load: int, mix: dict[int, float] | None = None
) -> RestaurantSnapshot:
    """The floor carrying the demand profile its own history gives, as storage
    computes it (storage/demand.py): the requests of 8 past evenings of the
    same restaurant (same floor, load and party mix, other seeds), per
    15-minute slot and party, an evening; each party's table time."""
    counts: dict[tuple[int, int], int] = {}
    held: dict[int, int] = {}
    for seed in HISTORY_SEEDS:
        for r in evening(floor, load, seed, mix):
            minute = (r.start.hour * 60 + r.start.minute) // 15 * 15
            counts[(minute, r.party)] = counts.get((minute, r.party), 0) + 1
            held[r.party] = int((r.end - r.start).total_seconds() // 60)
    days = len(HISTORY_SEEDS)
    profile = DemandProfile(
        rates=tuple((m, p, round(n / days, 6)) for (m, p), n in sorted(counts.items())),
        durations=tuple(sorted(held.items())),
    )
    return replace(floor, demand=profile)


# ---------------------------------------------------------------- held tables


def allocations_of(
    floor: RestaurantSnapshot,
    held: dict[str, tuple[str, ...]],
    by_id: dict[str, Request],
    moved: dict[str, int] | None = None,
) -> RestaurantSnapshot:
    """The floor holding `held`; `moved`: how many times re-packing moved each booking."""
    moved = moved or {}
    return replace(
        floor,
        allocations=tuple(
            Allocation(
                b, t, by_id[b].start, by_id[b].end, by_id[b].party, by_id[b].start,
                times_moved=moved.get(b, 0),
            )
            for b, tables in held.items()
            for t in tables
        ),
    )


def check_no_double_booking(
    floor: RestaurantSnapshot, held: dict[str, tuple[str, ...]], by_id: dict[str, Request]
) -> None:
    by_table: dict[str, list[Request]] = {}
    for b, tables in held.items():
        for t in tables:
            by_table.setdefault(t, []).append(by_id[b])
    for t, bookings in by_table.items():
        ordered = sorted(bookings, key=lambda r: r.start)
        for earlier, later in pairwise(ordered):
            assert earlier.end <= later.start, f"{floor.restaurant_id}: {t} double-booked"


def seated(
    floor: RestaurantSnapshot, held: dict[str, tuple[str, ...]], by_id: dict[str, Request]
) -> dict[str, int]:
    """An evening's end: checked for double booking, then its bookings and covers."""
    check_no_double_booking(floor, held, by_id)
    return {"bookings": len(held), "covers": sum(by_id[b].party for b in held)}
