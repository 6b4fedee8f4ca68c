"""The exact re-packing problem, as bitmasks over the floor's tables.

The new booking R and the movable bookings M (held, overlapping R's window,
not started, not frozen, not placed by hand) each need a valid plan of their
own: same window, same party, tables not held by anybody else (every other
allocation stays where it is), a moved booking in a zone it may use; no two
bookings whose windows overlap share a table.

`RepackProblem` holds one instance of it: each booking's window, tables and
seats (`options`), who a seat pushes off (`displaced`), the necessary
condition that prunes a branch (`_packable`, a matching at every instant) and
the step budget. The search over it is `exact.ExactRepacker`.

Every seat option looked at, node visited and matching is a step; past
`max_exact_steps` steps `_step` raises OutOfSteps, so the answer never
depends on the machine. The wall clock is read only as a safety stop
(`repack_safety_stop_ms`, far above what the steps take): when it fires,
`_step` raises OutOfSteps too and `safety_stopped` says so.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from time import perf_counter

from seatflow.domain.planning import BookingRequest, EngineConfig

from .combinations import Candidate, enumerate_plans
from .floor import Floor
from .saturation import saturation


@dataclass(frozen=True)
class HeldBooking:
    """An allocated booking as re-packing sees it: all its tables, one window."""

    booking_id: str
    party: int
    start: datetime
    end: datetime
    tables: tuple[str, ...]
    zone: str
    zone_preference: str | None = None
    # The zones the floor plan declares equivalent to `zone` or to
    # `zone_preference` (`RestaurantSnapshot.zone_groups`): the same zone to a guest.
    equivalent: tuple[str, ...] = ()

    @property
    def zones(self) -> tuple[str, ...]:
        """The zones a move may take it to: the one it sits in, and the one it
        asked for when it sits elsewhere, each with the zones declared
        equivalent to it (docs/engine.md, "Moves a guest accepts")."""
        allowed = {self.zone, *self.equivalent}
        if self.zone_preference is not None:
            allowed.add(self.zone_preference)
        return tuple(sorted(allowed))


def clock() -> float:
    """The engine's one wall clock, read only for safety stops (seconds)."""
    return perf_counter()


class OutOfSteps(Exception):
    """The step budget ran out (or the wall-clock safety stop fired)."""


@dataclass(slots=True)
class Option:
    """One seat: a valid plan, as a mask of its tables."""

    mask: int
    candidate: Candidate
    size: int  # tables in the plan


class _FloorKey:
    """What the valid plans of a party depend on: the tables, the adjacency and
    the active zones (hashed once)."""

    __slots__ = ("digest", "parts")

    def __init__(self, floor: Floor) -> None:
        snapshot = floor.snapshot
        self.parts = (snapshot.tables, snapshot.adjacency, snapshot.zones_active)
        self.digest = hash(self.parts)

    def __hash__(self) -> int:
        return self.digest

    def __eq__(self, other: object) -> bool:
        """Two equal keys share one set of parts from then on (in a dict
        lookup the stored key takes the search's): a snapshot read from
        PostgreSQL brings new (equal) tables for every search, and the cache's
        ~40 lookups a search would each walk them field by field (0.8 of a
        3.7 ms search; issue 27); after the first, they compare by identity.
        Parts are swapped only when equal, and the cache is used under its
        lock. The parts are immutable tuples."""
        if not isinstance(other, _FloorKey):
            return False
        if self.parts is other.parts:
            return True
        if self.digest != other.digest or self.parts != other.parts:
            return False
        self.parts = other.parts
        return True


_PLANS: OrderedDict[tuple[object, ...], list[Option]] = OrderedDict()
_PLANS_KEPT = 512
_PLANS_LOCK = threading.Lock()  # searches may run in worker threads


def floor_plans(
    floor: Floor, party: int, zones: tuple[str, ...], config: EngineConfig
) -> list[Option]:
    """Every valid plan of `party` on the usable tables of `zones` with nothing
    booked, best fit first (fewest empty seats, fewest tables, ids).

    A plan's validity depends only on its own tables, so the plans free in a
    window are exactly these minus those touching a busy table: enumerated once
    per floor and party, kept in a small cache across requests (a speed-up
    only: the answer and the step count never depend on it)."""
    floor_key = getattr(floor, "_plans_key", None)
    if floor_key is None:  # hashed once per Floor (one search)
        floor_key = _FloorKey(floor)
        floor._plans_key = floor_key  # type: ignore[attr-defined]
    key = (
        floor_key,
        party,
        zones,
        config.max_tables,
        config.max_overage,
        config.adjacency_mode,
    )
    with _PLANS_LOCK:
        found = _PLANS.get(key)
        if found is not None:
            _PLANS.move_to_end(key)
            return found
    allowed = set(zones)
    tables = [t for t in floor.usable if floor.tables[t].zone in allowed]
    enumeration = enumerate_plans(floor, party, tables, config)
    ranked = sorted(
        enumeration.candidates, key=lambda c: (c.capacity - party, len(c.tables), c.tables)
    )
    found = [Option(floor.mask(c.tables), c, len(c.tables)) for c in ranked]
    with _PLANS_LOCK:
        _PLANS[key] = found
        if len(_PLANS) > _PLANS_KEPT:
            _PLANS.popitem(last=False)
    return found


class RepackProblem:
    """One exact re-packing problem: one request over one floor, its movable
    bookings (indices 0..n-1, R is n), and the step budget of searching it."""

    def __init__(
        self,
        floor: Floor,
        request: BookingRequest,
        config: EngineConfig,
        movable: dict[str, HeldBooking],
    ) -> None:
        self.floor = floor
        self.request = request
        self.config = config
        self.steps = 0
        self.limit = config.max_exact_steps  # lowered while the shallow passes run
        stop_ms = config.repack_safety_stop_ms
        self.deadline = None if stop_ms is None else clock() + stop_ms / 1000
        self.safety_stopped = False  # the wall-clock safety stop fired
        self._next_clock = 0
        self.ids = sorted(movable)
        self.bookings = [movable[b] for b in self.ids]
        n = len(self.bookings)
        self.n = n
        windows = [(b.start, b.end) for b in self.bookings] + [(request.start, request.end)]
        self.windows = windows
        # overlapping[i]: the other bookings (R is index n) whose windows overlap i's
        self.overlapping: list[list[int]] = [
            [j for j, (start, end) in enumerate(windows) if j != i and start < i_end and i_start < end]
            for i, (i_start, i_end) in enumerate(windows)
        ]
        self.current = [floor.mask(b.tables) for b in self.bookings]
        self._sizes = [len(b.tables) for b in self.bookings]
        # the most seats booking i may be moved to (re-packing never adds an
        # empty seat, `EngineConfig.repack_snug`; no limit without it)
        self._seats = [
            sum(floor.tables[t].capacity for t in b.tables) if config.repack_snug else 1 << 30
            for b in self.bookings
        ]
        lifted = {request.booking_id, *movable}
        self.fixed = [a for a in floor.snapshot.allocations if a.booking_id not in lifted]
        self.zones = sorted({floor.tables[t].zone for t in floor.usable})
        self._options: list[list[Option] | None] = [None] * (n + 1)
        self._by_key: dict[tuple[int, tuple[str, ...], int], list[Option]] = {}
        # the instants where the set of bookings in the room grows (every start),
        # each with the bookings present then; an instant whose bookings are all
        # present at another one too is left out (a matching for the larger set
        # contains one for the smaller)
        starts = sorted({w[0] for w in windows})
        present = [  # as bitmasks over the bookings
            sum(1 << i for i in range(n + 1) if windows[i][0] <= t < windows[i][1])
            for t in starts
        ]
        kept = [
            group
            for k, group in enumerate(present)
            if not any(
                (group & ~other == 0) and (group != other or j < k)
                for j, other in enumerate(present)
                if j != k
            )
        ]
        self.instants: list[list[int]] = [
            [i for i in range(n + 1) if group >> i & 1] for group in kept
        ]
        self._shapes: list[tuple[int, int, int] | None] = [None] * (n + 1)
        self._busy: dict[tuple[datetime, datetime], int] = {}
        # per booking: the tables held by the movable bookings overlapping it
        self._held_near: list[int | None] = [None] * (n + 1)

    def _step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > self.limit:
            raise OutOfSteps
        if self.deadline is not None and self.steps >= self._next_clock:
            self._next_clock = self.steps + 32  # read the clock every 32 steps
            if clock() > self.deadline:
                self.safety_stopped = True
                raise OutOfSteps

    def options(self, i: int) -> list[Option]:
        """Every valid plan of booking i (R when i == n) on tables nobody fixed
        holds in its window, best fit first; a moved booking's own tables excluded."""
        found = self._options[i]
        if found is not None:
            return found
        window = self.windows[i]
        busy = self._busy.get(window)
        if busy is None:
            start, end = window
            busy = 0
            for allocation in self.fixed:
                if allocation.start < end and start < allocation.end:
                    busy |= self.floor.bit.get(allocation.table_id, 0)
            self._busy[window] = busy
        if i == self.n:
            party, zones = self.request.party_size, tuple(self.zones)
        else:
            booking = self.bookings[i]
            party, zones = booking.party, booking.zones
        key = (party, zones, busy)
        cached = self._by_key.get(key)
        if cached is None:
            every = floor_plans(self.floor, party, zones, self.config)
            # steps as if enumerated here, so the count never depends on the cache
            self._step(1 + len(every) // 8)
            cached = [o for o in every if not o.mask & busy]
            self._by_key[key] = cached
        if i < self.n:
            own = self.current[i]
            seats = self._seats[i]  # snug: no more seats than it holds
            found = [o for o in cached if o.mask != own and o.candidate.capacity <= seats]
        else:
            most = self.request.party_size if self.config.repack_snug else None
            found = [o for o in cached if most is None or o.candidate.capacity <= most]
        self._options[i] = found
        return found

    def displaced(self, i: int, mask: int, placed: dict[int, int], pending: set[int]) -> list[int]:
        """Bookings still on their own tables that seat `mask` for booking i pushes off."""
        held = self._held_near[i]
        if held is None:
            held = 0
            for j in self.overlapping[i]:
                if j < self.n:
                    held |= self.current[j]
            self._held_near[i] = held
        if not mask & held:
            return []
        return [
            j
            for j in self.overlapping[i]
            if j < self.n and j not in placed and j not in pending and self.current[j] & mask
        ]


    def _packable(self, placed: dict[int, int], pending: set[int]) -> bool:
        """A necessary condition, cheap to check: at every instant, the bookings
        without a new seat yet can each get the fewest tables any of their
        remaining seats uses, all distinct, among the tables nobody placed holds
        then. False proves this branch has no solution."""
        blocked_of = self._blocked_of(placed)
        shapes = self._shapes
        need: dict[int, tuple[int, int]] = {}
        for i in range(self.n + 1):
            if i in placed:
                continue
            blocked = blocked_of[i]
            shape = shapes[i]
            if shape is None:
                union, fewest = self._room(i, blocked)
            else:  # _room, inlined: this loop is the search's hottest
                union = shape[0] & ~blocked
                if union:
                    union |= shape[1] & ~blocked
                    fewest = 1
                else:
                    union = shape[1] & ~blocked
                    fewest = shape[2] if union else 0
            if i < self.n and i not in pending:
                own = self.current[i]
                if not own & blocked:
                    size = self._sizes[i]
                    union |= own
                    fewest = size if not fewest else min(fewest, size)
            if not union:
                return False
            need[i] = (union, fewest)
        self._step(len(need))
        for present in self.instants:
            demands = [need[i] for i in present if i in need]
            if len(demands) > 1:
                ok, work = saturation(demands)
                self._step(work)
                if not ok:
                    return False
        return True

    def _blocked_of(self, placed: dict[int, int]) -> list[int]:
        """For every booking, the tables the placed bookings overlapping it hold."""
        blocked = [0] * (self.n + 1)
        overlapping = self.overlapping
        for k, seat in placed.items():
            for i in overlapping[k]:
                blocked[i] |= seat
        return blocked

    def _room(self, i: int, blocked: int) -> tuple[int, int]:
        """Tables booking i could still use clear of `blocked`, and the fewest
        tables it needs (0, 0 when nothing is clear).

        Exact for single-table seats; for groups, the tables of every group
        minus the blocked ones (a superset of the clear groups' tables, so the
        condition stays necessary) and the smallest group size."""
        singles, groups, smallest = self._shape(i)
        union = singles & ~blocked
        if union:
            return union | (groups & ~blocked), 1
        union = groups & ~blocked
        return (union, smallest) if union else (0, 0)

    def _shape(self, i: int) -> tuple[int, int, int]:
        """Booking i's seats summed up: the single tables, the tables of its
        groups and the fewest tables a group uses."""
        found = self._shapes[i]
        if found is None:
            singles = groups = 0
            smallest = 0
            seats = self.options(i)
            self._step(1 + len(seats) // 16)
            for option in seats:
                if option.size == 1:
                    singles |= option.mask
                else:
                    groups |= option.mask
                    smallest = option.size if not smallest else min(smallest, option.size)
            found = (singles, groups, smallest)
            self._shapes[i] = found
        return found
