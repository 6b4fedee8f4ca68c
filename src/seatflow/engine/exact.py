"""Exact re-packing: the fewest moves that free a plan, or a proof that none exists.

The problem (`exact_problem.RepackProblem`): the new booking R and the
movable bookings each need a valid plan of their own, no two bookings whose
windows overlap sharing a table. Among all such re-assignments, the search
finds the one that moves the fewest bookings.

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

Past the step budget, or the wall-clock safety stop (`exact_problem`), the
search stops and says so (`exhausted`, `safety_stop`), never silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from seatflow.domain.planning import BookingRequest, EngineConfig, Move

from .combinations import Candidate
from .exact_problem import HeldBooking, Option, OutOfSteps, RepackProblem
from .floor import Floor, overlaps


@dataclass(frozen=True)
class ExactOutcome:
    candidate: Candidate | None  # R's freed plan, None when there is none
    moves: tuple[Move, ...]  # in the order they can be applied
    steps: int
    exhausted: bool  # the step budget ran out before any conclusion
    # the moves are proven the fewest (False: a valid re-assignment was found but
    # the budget ran out while looking for one with fewer moves)
    fewest: bool = True
    # the wall-clock safety stop ended the search, not the step budget
    safety_stop: bool = False


SHALLOW = 3  # move budgets tried before the pass without a move limit


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


class ExactRepacker(RepackProblem):
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
        super().__init__(floor, request, config, movable)
        # at most this many moves (None: the venue's `config.repack_max_moves`,
        # 2 by default, None there for as many as needed); the answer is then
        # the fewest moves up to the cap, or a proof that none that few exists
        self.move_cap = config.repack_max_moves if move_cap is None else move_cap
        self.cut = 0  # the smallest budget a branch cut in this pass needed (0: none)
        # states (seats placed so far) that failed, with the largest budget they failed at
        self._failed: dict[frozenset[tuple[int, int]], int] = {}

    def run(self) -> ExactOutcome:
        try:
            return self._run()
        except OutOfSteps:
            return ExactOutcome(
                None, (), self.steps, exhausted=True, safety_stop=self.safety_stopped
            )

    def _run(self) -> ExactOutcome:
        n = self.n
        preferred = self.request.zone_preference
        targets: list[tuple[int, Option, list[int]]] = []
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
        except OutOfSteps:
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
        except OutOfSteps:
            return self._outcome(*best, proven=False)
        return self._outcome(*(fewer or best), proven=True)

    def _deepen(
        self, targets: list[tuple[int, Option, list[int]]], low: int, high: int
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
        self, targets: list[tuple[int, Option, list[int]]], budget: int
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
        best_choices: list[tuple[int, Option, list[int]]] = []
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
            choices: list[tuple[int, Option, list[int]]] = []
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
        return ExactOutcome(
            candidate, moves, self.steps, exhausted=False, fewest=proven,
            safety_stop=self.safety_stopped,
        )


# --------------------------------------------------------------------------
# Feasibility only (availability): additive, the methods above are unchanged.


class FeasibilityRepacker(ExactRepacker):
    """Whether any re-assignment frees a plan, not the one with the fewest moves.

    One pass without a move limit, stopping at the first re-assignment found
    (its moves are valid, but `fewest` is False); a pass that
    finds nothing is a proof that none exists. Availability needs only this
    yes or no (the pipeline computes the fewest moves again when it books),
    and it skips the deepening over 1..SHALLOW moves and the final
    minimisation of `ExactRepacker.run`. Same budget (`max_exact_steps`, and
    the `repack_safety_stop_ms` backstop) and the same `exhausted` when it
    runs out."""

    def run(self) -> ExactOutcome:
        try:
            return self._feasible()
        except OutOfSteps:
            return ExactOutcome(
                None, (), self.steps, exhausted=True, fewest=False,
                safety_stop=self.safety_stopped,
            )

    def _feasible(self) -> ExactOutcome:
        targets: list[tuple[int, Option, list[int]]] = []
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
