"""Exact re-packing: the fewest moves that free a plan, or a proof that none exists.

The problem: the new booking R and the movable bookings M (held, overlapping
R's window, not started, not frozen, not placed by hand) each need a valid
plan of their own: same window, same party, tables not held by anybody else
(every other allocation stays where it is), a moved booking in a zone it may
use; no two bookings whose windows overlap share a table. Among all such
re-assignments, the one that moves the fewest bookings.

Search: R takes a target plan; the bookings it displaces become *pending*;
the pending booking with the fewest remaining seats (most constrained first)
takes one of them, which may displace further bookings, and so on until
nothing is pending. Only displaced bookings ever move: in a solution with the
fewest moves every moved booking was pushed off its tables by a chain that
starts at R (a group nobody pushes could go back to its own tables, one move
cheaper), so the search loses no solution. Budgets of moves deepen
iteratively, each time straight to the smallest budget a cut branch needed;
a pass that cut nothing and found nothing proves that no re-assignment
exists. A pending booking without any seat left ends its branch at once.

Order of the passes: budgets of 1..SHALLOW moves first, on a share of the
steps (`repack_shallow_share`, default half); then one pass without a
move limit, which decides whether any re-assignment exists; then budgets from
SHALLOW + 1 (or from 1, when the share ran out before the short passes
finished) up to one fewer than that pass used. The share matters on large
floors: a re-pack of 2-3 moves can take tens of thousands of steps to find or
rule out, while the pass without a limit often finds a long one in a few
thousand; with the whole budget spent on the short passes, such a booking was
refused although a re-assignment existed. A result whose fewest moves the
budget did not allow to prove says so (`fewest` False).

Any re-assignment counts, a swap (bookings trading tables, where no move can
go first) as much as a chain: the database applies a re-pack's moves as one
set (`storage.confirm.apply_moves`). The moves come back in an order that
applies one at a time where one exists (a move after the bookings whose old
tables it takes), which keeps a re-pack's history readable.

Every seat option looked at, node visited and matching is a step; past
`max_exact_steps` steps or `repack_time_budget_ms` of wall clock the search
stops and says so (`exhausted`), never silently. The wall-clock budget is the
one place the answer can depend on the machine: with it set to None the
search is deterministic.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from seatflow.domain.planning import BookingRequest, EngineConfig, Move

from .combinations import Candidate, enumerate_plans
from .floor import Floor, overlaps


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


@dataclass(frozen=True)
class ExactOutcome:
    candidate: Candidate | None  # R's freed plan, None when there is none
    moves: tuple[Move, ...]  # in the order they can be applied
    steps: int
    exhausted: bool  # the step budget ran out before any conclusion
    # the moves are proven the fewest (False: a valid re-assignment was found but
    # the budget ran out while looking for one with fewer moves)
    fewest: bool = True


SHALLOW = 3  # move budgets tried before the pass without a move limit


class _OutOfSteps(Exception):
    pass


@dataclass(slots=True)
class _Option:
    mask: int
    candidate: Candidate
    size: int  # tables in the plan


def saturates(demands: list[tuple[int, int]]) -> bool:
    """Can every booking get `need` distinct tables out of its `mask`, no table
    given twice? A bipartite b-matching (docs/engine.md)."""
    return _saturation(demands)[0]


def _saturation(demands: list[tuple[int, int]]) -> tuple[bool, int]:
    """`saturates`, plus the work it took (groups visited), for the step budget.

    Bookings with the same mask are one group that needs the sum of their
    tables, so the flow runs over a handful of groups instead of one slot per
    table wanted: a greedy pass hands out free tables, then each table still
    owed is found by a breadth-first augmenting path over groups (a group
    gives up a table it holds and takes another one of its mask). A unit that
    finds no path can never be served (Hungarian lemma), so that ends it."""
    wanted: dict[int, int] = {}
    union = 0
    total = 0
    for mask, need in demands:
        if need:
            wanted[mask] = wanted.get(mask, 0) + need
            union |= mask
            total += need
    if union.bit_count() < total:
        return False, 1
    masks = sorted(sorted(wanted), key=int.bit_count)  # by size, then mask
    k = len(masks)
    owned = [0] * k
    free = union
    deficit = [0] * k
    work = k
    for g, mask in enumerate(masks):
        need = wanted[mask]
        if mask.bit_count() < need:
            return False, work
        take = mask & free
        while need and take:
            bit = take & -take
            take ^= bit
            owned[g] |= bit
            free ^= bit
            need -= 1
        deficit[g] = need
    for g in range(k):
        for _ in range(deficit[g]):
            # breadth-first over groups: via[h] = (group it took from, table taken)
            via: dict[int, tuple[int, int]] = {g: (-1, 0)}
            seen = 0
            frontier = [g]
            found = -1
            while frontier and found < 0:
                following: list[int] = []
                for h in frontier:
                    work += 1
                    reach = masks[h] & ~seen
                    if reach & free:
                        found = h
                        break
                    seen |= reach
                    for other in range(k):
                        if other not in via and owned[other] & reach:
                            held = owned[other] & reach
                            via[other] = (h, held & -held)
                            following.append(other)
                frontier = following
            if found < 0:
                return False, work
            bit = masks[found] & ~seen & free
            bit &= -bit
            free ^= bit
            owned[found] |= bit
            h = found
            while h != g:
                parent, table = via[h]
                owned[h] ^= table
                owned[parent] |= table
                h = parent
    return True, work


def application_order(
    floor: Floor, moves: list[tuple[HeldBooking, tuple[str, ...]]]
) -> list[tuple[HeldBooking, tuple[str, ...]]] | None:
    """The moves in an order that applies one at a time, or None (a cycle).

    A move must wait for every other moved booking whose old tables it takes
    during an overlapping window. Ties go by booking id."""
    waits: dict[str, set[str]] = {}
    for booking, new in moves:
        new_mask = floor.mask(new)
        waits[booking.booking_id] = {
            other.booking_id
            for other, _ in moves
            if other.booking_id != booking.booking_id
            and floor.mask(other.tables) & new_mask
            and overlaps(other.start, other.end, booking.start, booking.end)
        }
    by_id = {booking.booking_id: (booking, new) for booking, new in moves}
    ordered: list[tuple[HeldBooking, tuple[str, ...]]] = []
    done: set[str] = set()
    while len(ordered) < len(moves):
        ready = sorted(b for b, w in waits.items() if b not in done and w <= done)
        if not ready:
            return None
        done.add(ready[0])
        ordered.append(by_id[ready[0]])
    return ordered


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
        return isinstance(other, _FloorKey) and (
            self.parts is other.parts or self.parts == other.parts
        )


_PLANS: OrderedDict[tuple[object, ...], list[_Option]] = OrderedDict()
_PLANS_KEPT = 512
_PLANS_LOCK = threading.Lock()  # searches may run in worker threads


def floor_plans(
    floor: Floor, party: int, zones: tuple[str, ...], config: EngineConfig
) -> list[_Option]:
    """Every valid plan of `party` on the usable tables of `zones` with nothing
    booked, best fit first (fewest empty seats, fewest tables, ids).

    A plan's validity depends only on its own tables, so the plans free in a
    window are exactly these minus those touching a busy table: enumerated once
    per floor and party, kept in a small cache across requests (a speed-up
    only: the answer and the step count never depend on it)."""
    key = (
        _FloorKey(floor),
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
    found = [_Option(floor.mask(c.tables), c, len(c.tables)) for c in ranked]
    with _PLANS_LOCK:
        _PLANS[key] = found
        if len(_PLANS) > _PLANS_KEPT:
            _PLANS.popitem(last=False)
    return found


class ExactRepacker:
    """One exact re-packing search for one request over one floor."""

    def __init__(
        self,
        floor: Floor,
        request: BookingRequest,
        config: EngineConfig,
        movable: dict[str, HeldBooking],
        *,
        move_cap: int | None = None,
    ) -> None:
        # at most this many moves (None: the venue's `config.repack_max_moves`,
        # itself None for as many as needed); the answer is then the fewest
        # moves up to the cap, or a proof that none that few exists
        self.move_cap = config.repack_max_moves if move_cap is None else move_cap
        self.floor = floor
        self.request = request
        self.config = config
        self.steps = 0
        self.limit = config.max_exact_steps  # lowered while the shallow passes run
        budget_ms = config.repack_time_budget_ms
        self.deadline = None if budget_ms is None else time.perf_counter() + budget_ms / 1000
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
        lifted = {request.booking_id, *movable}
        self.fixed = [a for a in floor.snapshot.allocations if a.booking_id not in lifted]
        self.zones = sorted({floor.tables[t].zone for t in floor.usable})
        self._options: list[list[_Option] | None] = [None] * (n + 1)
        self._by_key: dict[tuple[int, tuple[str, ...], int], list[_Option]] = {}
        self.cut = 0  # the smallest budget a branch cut in this pass needed (0: none)
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
        # states (seats placed so far) that failed, with the largest budget they failed at
        self._failed: dict[frozenset[tuple[int, int]], int] = {}
        self._shapes: list[tuple[int, int, int] | None] = [None] * (n + 1)
        self._busy: dict[tuple[datetime, datetime], int] = {}
        # per booking: the tables held by the movable bookings overlapping it
        self._held_near: list[int | None] = [None] * (n + 1)

    def _step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > self.limit:
            raise _OutOfSteps
        if self.deadline is not None and self.steps >= self._next_clock:
            self._next_clock = self.steps + 32  # read the clock every 32 steps
            if time.perf_counter() > self.deadline:
                raise _OutOfSteps

    def options(self, i: int) -> list[_Option]:
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
            party = booking.party
            if booking.zone_preference is None:
                zones = tuple(self.zones)
            else:
                zones = tuple(sorted({booking.zone, booking.zone_preference}))
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
            found = [o for o in cached if o.mask != own]
        else:
            found = cached
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

    def run(self) -> ExactOutcome:
        try:
            return self._run()
        except _OutOfSteps:
            return ExactOutcome(None, (), self.steps, exhausted=True)

    def _run(self) -> ExactOutcome:
        n = self.n
        preferred = self.request.zone_preference
        targets: list[tuple[int, _Option, list[int]]] = []
        for option in self.options(n):
            self._step()
            pushed = self.displaced(n, option.mask, {}, set())
            targets.append((len(pushed), option, pushed))
        targets.sort(
            key=lambda t: (
                t[0],
                preferred is not None and t[1].candidate.zone != preferred,
                t[1].candidate.capacity - self.request.party_size,
                len(t[1].candidate.tables),
                t[1].candidate.tables,
            )
        )
        if not self._packable({}, set()):
            return ExactOutcome(None, (), self.steps, exhausted=False)
        if self.move_cap is not None:
            found = self._deepen(targets, 1, self.move_cap)
            if found is None:
                return ExactOutcome(None, (), self.steps, exhausted=False)
            return self._outcome(*found, proven=True)
        # Few moves are the common answer: deepen up to SHALLOW moves first, on
        # a share of the budget (a short re-pack can take many steps to find or
        # rule out, while a long one is often found in few).
        total = self.config.max_exact_steps
        share = self.config.repack_shallow_share
        self.limit = total if share >= 1 else min(total, self.steps + int(total * share))
        try:
            found = self._deepen(targets, 1, SHALLOW)
            low = SHALLOW + 1  # no re-assignment of SHALLOW moves or fewer exists
        except _OutOfSteps:
            if self.limit >= total or self.steps <= self.limit:
                raise  # the whole budget or the clock ran out, not the share
            found, low = None, 1
            # The states remembered as failed at budgets 1..SHALLOW are true,
            # but a hit skips the branch without noting the budget it would
            # have needed, and deepening again from 1 relies on those notes to
            # prove that no fewer moves exist: forget them.
            self._failed.clear()
        self.limit = total
        if found is not None:
            return self._outcome(*found, proven=True)
        # Then one pass with no move limit decides whether any re-assignment exists.
        found = self._pass(targets, self.n)
        if found is None:
            return ExactOutcome(None, (), self.steps, exhausted=False)
        # Finally the fewest moves between `low` and what that pass used.
        best = found
        moves = len(found[1]) - 1
        try:
            fewer = self._deepen(targets, low, moves - 1)
        except _OutOfSteps:
            return self._outcome(*best, proven=False)
        return self._outcome(*(fewer or best), proven=True)

    def _deepen(
        self, targets: list[tuple[int, _Option, list[int]]], low: int, high: int
    ) -> tuple[Candidate, dict[int, int]] | None:
        """Iterative deepening over move budgets low..high, jumping straight to
        the smallest budget a cut branch needed."""
        budget = low
        while budget <= high:
            self.cut = 0
            found = self._pass(targets, budget)
            if found is not None or not self.cut:
                return found
            budget = max(budget + 1, self.cut)
        return None

    def _pass(
        self, targets: list[tuple[int, _Option, list[int]]], budget: int
    ) -> tuple[Candidate, dict[int, int]] | None:
        for count, option, pushed in targets:
            if count > budget:
                self._note_cut(count)
                continue
            self._step()
            solution = self._place({self.n: option.mask}, set(pushed), budget)
            if solution is not None:
                return option.candidate, dict(solution)
        return None

    def _note_cut(self, needed: int) -> None:
        if not self.cut or needed < self.cut:
            self.cut = needed

    def _place(self, placed: dict[int, int], pending: set[int], budget: int) -> dict[int, int] | None:
        """Seat every pending booking within `budget` moves, or None."""
        if not pending:
            return placed
        state = frozenset(placed.items())
        if self._failed.get(state, -1) >= budget:
            return None  # this very state already failed with at least this budget
        # With no move to spare every pending booking needs a seat nobody holds:
        # the search checks that directly, cheaper than the matching bound.
        tight = len(placed) - 1 + len(pending) >= budget
        packable = tight or self._packable(placed, pending)
        found = self._search(placed, pending, budget) if packable else None
        if found is None:
            self._failed[state] = budget
        return found

    def _search(
        self, placed: dict[int, int], pending: set[int], budget: int
    ) -> dict[int, int] | None:
        cost = len(placed) - 1 + len(pending)  # moves made plus moves owed
        best: int | None = None
        best_choices: list[tuple[int, _Option, list[int]]] = []
        blocked_of = self._blocked_of(placed)
        for i in sorted(pending, key=lambda b: (-self.bookings[b].party, b)):
            blocked = blocked_of[i]
            # the bookings near i still on their own tables, and those tables
            near = [
                j
                for j in self.overlapping[i]
                if j < self.n and j not in placed and j not in pending
            ]
            held = 0
            holders: dict[int, list[int]] = {}  # table bit -> the near bookings on it
            for j in near:
                mask = self.current[j]
                held |= mask
                while mask:
                    bit = mask & -mask
                    mask ^= bit
                    holders.setdefault(bit, []).append(j)
            choices: list[tuple[int, _Option, list[int]]] = []
            options = self.options(i)
            self._step(len(options))
            for option in options:
                mask = option.mask
                if mask & blocked:
                    continue
                if not mask & held:
                    choices.append((0, option, []))
                    continue
                if cost + 1 > budget:
                    self._note_cut(cost + 1)  # a lower bound of what it needs: safe
                    continue
                hit = mask & held
                if hit & (hit - 1):  # two tables or more: bookings may repeat
                    owners: set[int] = set()
                    while hit:
                        bit = hit & -hit
                        hit ^= bit
                        owners.update(holders[bit])
                    pushed = sorted(owners)
                else:
                    pushed = holders[hit]
                if cost + len(pushed) > budget:
                    self._note_cut(cost + len(pushed))
                    continue
                choices.append((len(pushed), option, pushed))
            if not choices:
                return None  # this booking has no seat left in this branch
            if best is None or len(choices) < len(best_choices):
                best, best_choices = i, choices
                if len(choices) == 1:
                    break
        assert best is not None
        best_choices.sort(key=lambda c: c[0])  # stable: best fit first among equals
        rest = pending - {best}
        for _, option, pushed in best_choices:
            placed[best] = option.mask
            found = self._place(placed, rest | set(pushed), budget)
            if found is not None:
                return found
            del placed[best]
        return None

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
                ok, work = _saturation(demands)
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

    def _moves(self, placed: dict[int, int]) -> list[tuple[HeldBooking, tuple[str, ...]]]:
        found = []
        for i, mask in placed.items():
            if i == self.n:
                continue
            tables = tuple(t for t in self.floor.order if self.floor.bit[t] & mask)
            found.append((self.bookings[i], tables))
        return found

    def _outcome(
        self, candidate: Candidate, placed: dict[int, int], *, proven: bool
    ) -> ExactOutcome:
        applied = self._moves(placed)
        # one at a time where such an order exists; a swap applies as one set
        ordered = application_order(self.floor, applied) or applied
        moves = tuple(Move(b.booking_id, b.tables, new) for b, new in ordered)
        return ExactOutcome(candidate, moves, self.steps, exhausted=False, fewest=proven)


# --------------------------------------------------------------------------
# Feasibility only (availability): additive, the methods above are unchanged.


class FeasibilityRepacker(ExactRepacker):
    """Whether any re-assignment frees a plan, not the one with the fewest moves.

    One pass without a move limit, stopping at the first re-assignment found
    (its moves are valid, but `fewest` is False); a pass that
    finds nothing is a proof that none exists. Availability needs only this
    yes or no (the pipeline computes the fewest moves again when it books),
    and it skips the deepening over 1..SHALLOW moves and the final
    minimisation of `ExactRepacker.run`. Same budgets (`max_exact_steps`,
    `repack_time_budget_ms`) and the same `exhausted` when they run out."""

    def run(self) -> ExactOutcome:
        try:
            return self._feasible()
        except _OutOfSteps:
            return ExactOutcome(None, (), self.steps, exhausted=True, fewest=False)

    def _feasible(self) -> ExactOutcome:
        targets: list[tuple[int, _Option, list[int]]] = []
        for option in self.options(self.n):
            self._step()
            pushed = self.displaced(self.n, option.mask, {}, set())
            targets.append((len(pushed), option, pushed))
        targets.sort(
            key=lambda t: (
                t[0],
                t[1].candidate.capacity - self.request.party_size,
                len(t[1].candidate.tables),
                t[1].candidate.tables,
            )
        )
        if not self._packable({}, set()):
            return ExactOutcome(None, (), self.steps, exhausted=False)
        if self.move_cap is not None:  # a re-assignment of at most that many moves
            found = self._deepen(targets, 1, self.move_cap)
        else:
            found = self._pass(targets, self.n)
        if found is None:
            return ExactOutcome(None, (), self.steps, exhausted=False)
        return self._outcome(*found, proven=False)
