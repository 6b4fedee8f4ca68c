"""Re-packing: free a plan for a booking by moving bookings that have not started.

When no valid plan is free, bookings that are *movable* (held, overlapping the
new booking's window, not started and not starting within the freeze window
by `now`, not placed by hand by an operator, never moved by re-packing
before) may be re-seated: same window, same party, a valid plan of their own
in the zone they sit in (or the zone they asked for; zones the floor plan
declares equivalent count as one), at most
`repack_max_moves` of them for one new booking (docs/engine.md, "Moves a
guest accepts").

First the exact search (`exact.py`) decides: the fewest moves that free a
plan, or a proof that there is none. When its step budget runs out, the
bounded search of earlier versions answers instead and the result says so:
at most `max_moves` moves, each booking in a zone it may use, chains of displaced
bookings, budgets growing 1, 2, ..., max_moves, bounded by `max_repack_steps`
(placements tried plus table combinations evaluated); hitting that bound is
reported (`truncated`), never silent. Every budget is counted in steps; a
wall-clock safety stop that fires is reported (`safety_stop`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from seatflow.domain.planning import Allocation, BookingRequest, EngineConfig, Move, Plan

from .combinations import Candidate, enumerate_candidates, enumerate_plans
from .exact import ExactRepacker, application_order
from .exact_problem import HeldBooking
from .floor import Floor, overlaps
from .scoring import REPACK, score_candidate, window_view

EXACT = "exact"
BOUNDED = "bounded"
MANUAL = "manual"


@dataclass(frozen=True)
class Repacked:
    """The outcome: a plan and the moves that free it, or None when there is none."""

    plan: Plan | None
    moves: tuple[Move, ...]
    evaluated: int
    truncated: bool
    method: str = ""  # EXACT or BOUNDED; empty when nothing could move
    safety_stop: bool = False  # a wall-clock safety stop fired along the way
    # every step spent (the bounded search's placements and combinations
    # evaluated, the exact search's steps): what a caller's budget pays
    steps: int = 0


@dataclass(frozen=True)
class _Interval:
    table_id: str
    start: datetime
    end: datetime


class _OutOfSteps(Exception):
    pass


def movable_bookings(
    floor: Floor, request: BookingRequest, now: datetime | None, config: EngineConfig
) -> dict[str, HeldBooking]:
    """Held bookings overlapping the request that may move: not started, not
    starting within the freeze window, not placed by hand, not moved by
    re-packing before (a guest is moved at most once in an evening)."""
    frozen_until = None if now is None else now + timedelta(minutes=config.repack_freeze_minutes)
    grouped: dict[str, list[Allocation]] = {}
    for allocation in floor.snapshot.allocations:
        grouped.setdefault(allocation.booking_id, []).append(allocation)
    movable: dict[str, HeldBooking] = {}
    for booking_id in sorted(grouped):
        allocations = grouped[booking_id]
        if booking_id == request.booking_id:
            continue
        if any(not _not_started(a.booking_start, frozen_until) for a in allocations):
            continue
        if any(a.assignment_strategy == MANUAL for a in allocations):
            continue
        if any(a.times_moved >= 1 for a in allocations):
            continue
        party = max(a.party_size for a in allocations)
        start = min(a.start for a in allocations)
        end = max(a.end for a in allocations)
        if party < 1 or not overlaps(start, end, request.start, request.end):
            continue
        tables = tuple(sorted({a.table_id for a in allocations}))
        if any(t not in floor.tables for t in tables):
            continue
        zones = {floor.tables[t].zone for t in tables}
        if len(zones) != 1:
            continue
        preference = next((a.zone_preference for a in allocations if a.zone_preference), None)
        zone = zones.pop()
        snapshot = floor.snapshot
        equivalent = snapshot.same_zone(zone) + (snapshot.same_zone(preference) if preference else ())
        movable[booking_id] = HeldBooking(
            booking_id, party, start, end, tables, zone, preference,
            tuple(sorted(set(equivalent) - {zone})),
        )
    return movable


def _not_started(booking_start: datetime | None, frozen_until: datetime | None) -> bool:
    if booking_start is None:
        return False  # unknown start: treat as started, never move it
    return frozen_until is None or booking_start > frozen_until


class _Reseater:
    """Depth-first placement of displaced bookings under a move budget.

    A booking's possible new seats depend only on which bookings have been
    lifted off the floor, so they are enumerated once per (booking, lifted set)
    and then filtered with bitmasks against the seats placed so far.
    """

    def __init__(self, floor: Floor, config: EngineConfig, movable: dict[str, HeldBooking]) -> None:
        self.floor = floor
        self.config = config
        self.movable = movable
        self.steps = 0
        self.evaluated = 0
        self._holders: dict[tuple[datetime, datetime], dict[str, frozenset[str]]] = {}
        self._options: dict[
            tuple[str, frozenset[str], int], list[tuple[int, frozenset[str], Candidate]]
        ] = {}

    def holders(self, start: datetime, end: datetime) -> dict[str, frozenset[str]]:
        """For each table, the bookings holding it somewhere in [start, end)."""
        key = (start, end)
        found = self._holders.get(key)
        if found is None:
            collected: dict[str, set[str]] = {}
            for allocation in self.floor.snapshot.allocations:
                if overlaps(allocation.start, allocation.end, start, end):
                    collected.setdefault(allocation.table_id, set()).add(allocation.booking_id)
            found = {t: frozenset(ids) for t, ids in collected.items()}
            self._holders[key] = found
        return found

    def options(
        self, booking: HeldBooking, lifted: frozenset[str], spare: int
    ) -> list[tuple[int, frozenset[str], Candidate]]:
        """Every valid new seat for `booking` that displaces at most `spare` more
        bookings, all movable, besides those already `lifted`."""
        key = (booking.booking_id, lifted, spare)
        found = self._options.get(key)
        if found is not None:
            return found
        holders = self.holders(booking.start, booking.end)
        blocked_by: dict[str, frozenset[str]] = {}
        zones = booking.zones
        for table_id in self.floor.usable:
            if self.floor.tables[table_id].zone not in zones:
                continue
            held_by = holders.get(table_id, frozenset()) - lifted
            if len(held_by) <= spare and all(other in self.movable for other in held_by):
                blocked_by[table_id] = held_by
        enumeration = enumerate_candidates(
            self.floor,
            booking.party,
            tuple(blocked_by),
            max_tables=self.config.max_tables,
            max_overage=self.config.max_overage,
            mode=self.config.adjacency_mode,
        )
        self.evaluated += enumeration.evaluated
        self.steps += enumeration.evaluated
        if self.steps > self.config.max_repack_steps:
            raise _OutOfSteps
        found = []
        seats = sum(self.floor.tables[t].capacity for t in booking.tables)
        for candidate in enumeration.candidates:
            if candidate.tables == booking.tables:
                continue
            if self.config.repack_snug and candidate.capacity > seats:
                continue  # re-packing never adds an empty seat
            displaced: frozenset[str] = frozenset().union(
                *(blocked_by[t] for t in candidate.tables)
            )
            if len(displaced) <= spare:
                found.append((self.floor.mask(candidate.tables), displaced, candidate))
        found.sort(
            key=lambda o: (len(o[1]), o[2].capacity - booking.party, len(o[2].tables), o[2].tables)
        )
        self._options[key] = found
        return found

    def place(
        self,
        pending: list[str],
        lifted: frozenset[str],
        placed: list[_Interval],
        moves: list[Move],
        budget: int,
    ) -> list[Move] | None:
        if not pending:
            return moves  # applied as one set: a swap is as valid as a chain
        self.steps += 1
        if self.steps > self.config.max_repack_steps:
            raise _OutOfSteps
        booking = self.movable[pending[0]]
        rest = pending[1:]
        spare = budget - len(moves) - len(pending)  # extra bookings this one may displace
        taken = 0  # tables already promised to someone during this booking's window
        for interval in placed:
            if overlaps(interval.start, interval.end, booking.start, booking.end):
                taken |= self.floor.bit[interval.table_id]
        for mask, displaced, candidate in self.options(booking, lifted, spare):
            if mask & taken:
                continue
            seated = [_Interval(t, booking.start, booking.end) for t in candidate.tables]
            move = Move(booking.booking_id, booking.tables, candidate.tables)
            ordered = sorted(displaced, key=lambda b: (-self.movable[b].party, b))
            found = self.place(
                rest + ordered, lifted | displaced, placed + seated, moves + [move], budget
            )
            if found is not None:
                return found
        return None


def repack(
    floor: Floor, request: BookingRequest, config: EngineConfig, *, now: datetime | None
) -> Repacked:
    """The exact search first; the bounded one when the exact one runs out of budget."""
    nothing = Repacked(None, (), 0, truncated=False)
    movable = movable_bookings(floor, request, now, config)
    if not movable:
        return nothing
    exact = ExactRepacker(floor, request, config, movable).run()
    if not exact.exhausted:
        if exact.candidate is None:
            return Repacked(
                None, (), exact.steps, truncated=False, method=EXACT, steps=exact.steps
            )
        relaxed_free = floor.free_tables(
            request.start, request.end, ignore_bookings={request.booking_id, *movable}
        )
        plan = _repack_plan(floor, request, config, exact.candidate, relaxed_free, len(exact.moves))
        # truncated: a valid re-assignment, but not proven to need the fewest moves
        return Repacked(
            plan, exact.moves, exact.steps, truncated=not exact.fewest, method=EXACT,
            safety_stop=exact.safety_stop, steps=exact.steps,
        )
    bounded = bounded_repack(floor, request, config, movable)
    return Repacked(
        bounded.plan,
        bounded.moves,
        exact.steps + bounded.evaluated,
        truncated=True,
        method=BOUNDED,
        safety_stop=exact.safety_stop,
        steps=exact.steps + bounded.steps,
    )


def bounded_repack(
    floor: Floor, request: BookingRequest, config: EngineConfig, movable: dict[str, HeldBooking]
) -> Repacked:
    """The bounded search: at most max_moves moves (and repack_max_moves), each
    booking in a zone it may use; counted in steps only (no clock)."""
    if config.repack_max_moves is not None and config.repack_max_moves < config.max_moves:
        config = replace(config, max_moves=config.repack_max_moves)
    if config.max_moves < 1:
        return Repacked(None, (), 0, truncated=False, method=BOUNDED)
    relaxed_free = floor.free_tables(
        request.start, request.end, ignore_bookings={request.booking_id, *movable}
    )
    enumeration = enumerate_plans(floor, request.party_size, relaxed_free, config)
    targets: list[tuple[tuple[str, ...], Candidate]] = []
    for candidate in enumeration.candidates:
        if config.repack_snug and candidate.capacity > request.party_size:
            continue  # re-packing never adds an empty seat
        holders = sorted(
            {
                a.booking_id
                for t in candidate.tables
                for a in floor.allocations_by_table.get(t, ())
                if a.booking_id in movable and overlaps(a.start, a.end, request.start, request.end)
            }
        )
        if 0 < len(holders) <= config.max_moves:
            targets.append((tuple(holders), candidate))
    preferred = request.zone_preference
    targets.sort(
        key=lambda t: (
            preferred is not None and t[1].zone != preferred,
            len(t[0]),
            t[1].capacity - request.party_size,
            len(t[1].tables),
            t[1].tables,
        )
    )
    reseater = _Reseater(floor, config, movable)
    try:
        for budget in range(1, config.max_moves + 1):
            for displaced, candidate in targets:
                if len(displaced) > budget:
                    continue
                request_seat = [_Interval(t, request.start, request.end) for t in candidate.tables]
                # The largest displaced parties are hardest to re-seat: place them first.
                order = sorted(displaced, key=lambda b: (-movable[b].party, b))
                moves = reseater.place(order, frozenset(displaced), request_seat, [], budget)
                if moves is not None:
                    plan = _repack_plan(floor, request, config, candidate, relaxed_free, len(moves))
                    pairs = [(movable[m.booking_id], m.to_tables) for m in moves]
                    # one at a time where such an order exists; a swap applies as one set
                    applied = application_order(floor, pairs) or pairs
                    ordered = tuple(Move(b.booking_id, b.tables, new) for b, new in applied)
                    evaluated = reseater.evaluated + enumeration.evaluated
                    return Repacked(
                        plan, ordered, evaluated, truncated=False, method=BOUNDED,
                        steps=reseater.steps + enumeration.evaluated,
                    )
    except _OutOfSteps:
        return Repacked(
            None, (), reseater.evaluated + enumeration.evaluated, truncated=True, method=BOUNDED,
            steps=reseater.steps + enumeration.evaluated,
        )
    return Repacked(
        None, (), reseater.evaluated + enumeration.evaluated, truncated=False, method=BOUNDED,
        steps=reseater.steps + enumeration.evaluated,
    )


def _repack_plan(
    floor: Floor,
    request: BookingRequest,
    config: EngineConfig,
    candidate: Candidate,
    relaxed_free: tuple[str, ...],
    moves: int,
) -> Plan:
    view = window_view(floor, relaxed_free, [])
    scored = score_candidate(floor, request, candidate, view, config.weights)
    return Plan(
        tables=scored.tables,
        score=scored.score,
        strategy=REPACK,
        breakdown=dict(scored.breakdown, moves=float(moves)),
        zone=scored.zone,
        capacity=scored.capacity,
    )
