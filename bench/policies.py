"""The engine benchmark's policies (bench/engine.py): each sees an evening's
requests one by one at the time they are asked; an accepted booking is
allocated (re-packing moves applied) and never removed.

- `engine_repack`: the booking pipeline's search with the deployed settings
  (`Settings.engine_config` without environment: re-packing within the move
  rules, the freeze window, the step budgets; `now` = the time the request is
  asked; a retry searches exactly as the first attempt, so one search a
  request);
- `engine`: the search without re-packing, plans[0];
- `legacy`: `quote_tables`, first quote;
- `best_fit`: the valid plan with the fewest empty seats, then the fewest tables.

Each booking carries how many times it was moved (`Allocation.times_moved`),
as the pipeline's snapshots do; `Moves` counts the moves as guests see them:
per seated booking, to another zone, and of a booking moved before; a move
between zones declared equivalent is no zone change, counted apart
(`moves_within_zone_group`).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import combinations
from typing import Any

from workload import MANY_MOVES, Request, allocations_of, check_no_double_booking

from seatflow.config import Settings
from seatflow.domain.planning import (
    BookingRequest,
    EngineConfig,
    Move,
    RestaurantSnapshot,
    SearchResult,
)
from seatflow.engine import quote_tables, search

POLICIES = ["engine_repack", "engine", "legacy", "best_fit"]
# The deployed defaults (no environment, no .env): what the booking pipeline runs.
PIPELINE = Settings.model_construct()
FIRST = replace(PIPELINE.engine_config(), max_plans=1)
ALONE = replace(FIRST, repack=False)


def timed(
    snapshot: RestaurantSnapshot, request: BookingRequest, config: EngineConfig, now: datetime
) -> tuple[SearchResult, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = search(snapshot, request, config, now=now)
    return result, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


@dataclass
class Moves:
    """The re-packing moves of an evening, as a guest sees them."""

    zones: dict[str, str]  # table -> its zone (the first of those declared equivalent)
    own: dict[str, str] = field(default_factory=dict)  # table -> its own zone
    count: int = 0
    widest: int = 0  # the most for one new booking
    many: int = 0  # re-packs of more than MANY_MOVES moves
    zone_changes: int = 0  # moves to a zone the booking was not in
    repeat: int = 0  # moves of a booking moved before
    within_group: int = 0  # moves to another zone of the group declared equivalent
    of: dict[str, int] = field(default_factory=dict)  # booking -> times moved

    @classmethod
    def on(cls, floor: RestaurantSnapshot) -> Moves:
        """An evening's moves on `floor`: zones it declares equivalent
        (`zone_groups`) are one zone to a guest, so a move between them is
        no zone change, as re-packing's zone rule has it."""
        return cls({t.id: floor.same_zone(t.zone)[0] for t in floor.tables},
                   {t.id: t.zone for t in floor.tables})

    def apply(self, held: dict[str, tuple[str, ...]], moves: tuple[Move, ...]) -> None:
        for move in moves:
            assert held[move.booking_id] == move.from_tables
            held[move.booking_id] = move.to_tables
            before = {self.zones[t] for t in move.from_tables}
            changed = {self.zones[t] for t in move.to_tables} != before
            self.zone_changes += changed
            self.within_group += not changed and (
                {self.own[t] for t in move.to_tables} != {self.own[t] for t in move.from_tables}
            )
            self.repeat += self.of.get(move.booking_id, 0) > 0
            self.of[move.booking_id] = self.of.get(move.booking_id, 0) + 1
        self.count += len(moves)
        self.widest = max(self.widest, len(moves))
        self.many += len(moves) > MANY_MOVES

    def summary(self, seated: int) -> dict[str, Any]:
        return {
            "moves": self.count,
            "moves_per_seated": round(self.count / max(1, seated), 4),
            "most_moves": self.widest,
            "repacks_over_3_moves": self.many,
            "zone_changes": self.zone_changes,
            "repeat_moves": self.repeat,
            "moves_within_zone_group": self.within_group,
            "most_moves_of_one_booking": max(self.of.values(), default=0),
        }


def simulate(
    floor: RestaurantSnapshot, requests: list[Request], policy: str, attribute: bool = False
) -> dict[str, Any]:
    # The solvers of the yardsticks leave a large heap behind; freezing it keeps
    # the collector's full passes out of the latency measured here.
    gc.collect()
    gc.freeze()
    by_id = {r.booking_id: r for r in requests}
    held: dict[str, tuple[str, ...]] = {}
    moved = Moves.on(floor)
    exact = bounded = stops = 0
    causes: dict[str, int] = {}  # covers refused, by what would have seated them
    refused: dict[str, str] = {}  # booking -> what would have seated it
    wall: list[float] = []
    cpu: list[float] = []
    repack_wall: list[float] = []
    for req in requests:
        snapshot = allocations_of(floor, held, by_id, moved.of)
        request = req.booking()
        tables: tuple[str, ...] | None = None
        if policy in ("engine_repack", "engine"):
            config = ALONE if policy == "engine" else FIRST
            result, w, c = timed(snapshot, request, config, req.asked_at)
            wall.append(w)
            cpu.append(c)
            stops += result.safety_stop  # a wall-clock backstop decided, not the steps
            if result.repack:
                repack_wall.append(w)
                exact += result.repack == "exact"
                bounded += result.repack == "bounded"
            if result.plans:
                tables = result.plans[0].tables
                moved.apply(held, result.moves)
        elif policy == "legacy":
            quotes = quote_tables(snapshot, request)
            tables = quotes[0].tables if quotes else None
        elif policy == "best_fit":
            every = search(snapshot, request, EngineConfig(repack=False, max_plans=100000))
            if every.plans:
                fewest_seats = min(every.plans, key=lambda p: (p.capacity, len(p.tables), p.tables))
                tables = fewest_seats.tables
        if tables is not None:
            held[req.booking_id] = tables
        elif attribute:
            why = refusal_cause(floor, held, by_id, moved.of, req)
            causes[why] = causes.get(why, 0) + req.party
            refused[req.booking_id] = why
    check_no_double_booking(floor, held, by_id)
    out: dict[str, Any] = {
        "accepted": len(held),
        "covers": sum(by_id[b].party for b in held),
        "wall_ms": wall,
        "cpu_ms": cpu,
        "held": held,
        **moved.summary(len(held)),
    }
    if policy == "engine_repack":
        if attribute:
            out["refused_covers_by_cause"] = causes
            out["refusal_causes"] = refused
        out.update(
            repack_exact=exact, repack_bounded=bounded, repack_ms=repack_wall,
            safety_stops=stops,
        )
    return out


def refusal_cause(
    floor: RestaurantSnapshot,
    held: dict[str, tuple[str, ...]],
    by_id: dict[str, Request],
    moved: dict[str, int],
    req: Request,
) -> str:
    """What would have seated a request the deployed configuration refused, on
    the very same floor (`held`, each booking moved `moved` times), the first
    that does of: one of its rules lifted alone, `steps` (the bound's 100,000
    exact steps, no safety stop), `freeze` (no freeze window), `move cap` (as
    many moves as needed; saying whether a cap of 3 seats it), `empty-seat rule` (any re-assignment, `repack_snug`
    off); two of them lifted (`a + b`); `rules together` (the online bound's
    own search and rules,
    `yardsticks.bound_decides`); then beyond the bound's rules too: `repeat-move
    rule` (bookings moved before may move again), `zone rule` (and to any
    zone). `earlier choices`: none of these seats it on this floor, so what is
    lost is the path that led here; `undecided`: CP-SAT ran out of time."""
    from yardsticks import BOUND_EXACT, bound_decides

    snapshot = allocations_of(floor, held, by_id, moved)
    request, now = req.booking(), req.asked_at
    lifted = {  # each rule's settings, lifted as the bound sets them
        "steps": ("max_exact_steps", "repack_safety_stop_ms", "repack_shallow_share"),
        "freeze": ("repack_freeze_minutes",),
        "move cap": ("repack_max_moves",),
        "empty-seat rule": ("repack_snug",),
    }
    for names in (*([n] for n in lifted), *combinations(lifted, 2)):
        config = replace(FIRST, **{k: getattr(BOUND_EXACT, k) for n in names for k in lifted[n]})
        if search(snapshot, request, config, now=now).plans:
            if names == ["move cap"]:  # would a cap of 3 do?
                three = replace(FIRST, repack_max_moves=3)
                return "move cap (3 seat it)" if search(snapshot, request, three, now=now).plans \
                    else "move cap (3 do not)"
            return " + ".join(names)
    undecided = False
    for cause, times_moved, any_zone in (
        ("rules together", {b: n for b, n in moved.items() if n}, False),
        ("repeat-move rule", {}, False),
        ("zone rule", {}, True),
    ):
        status, seats, _ = bound_decides(floor, held, by_id, times_moved, req, 2.0, any_zone)
        if seats is not None:
            return cause
        undecided |= status == "unknown"
    return "undecided" if undecided else "earlier choices"
