"""Inputs and outputs of the table-search engine (docs/engine.md).

Everything here is a frozen dataclass of plain values so that it crosses the
Temporal boundary with the default data converter and is safe to import from
workflow code. Times are timezone-aware datetimes; windows are half-open
[start, end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Mobility(StrEnum):
    MOVABLE = "movable"
    FIXED = "fixed"


class TableStatus(StrEnum):
    AVAILABLE = "available"
    OUT_OF_SERVICE = "out_of_service"


class AdjacencyMode(StrEnum):
    CONNECTED = "connected"  # the tables form one connected group
    PAIRWISE = "pairwise"  # every pair of tables is adjacent
    NEIGHBORS = "neighbors"  # one table is adjacent to all the others


@dataclass(frozen=True)
class Table:
    id: str  # the floor-plan name, e.g. "T12"
    capacity: int
    zone: str
    min_party: int = 1
    max_party: int | None = None
    mobility: Mobility = Mobility.MOVABLE
    category: str = "dining"
    active: bool = True
    status: TableStatus = TableStatus.AVAILABLE

    @property
    def in_service(self) -> bool:
        return self.active and self.status == TableStatus.AVAILABLE


@dataclass(frozen=True)
class Allocation:
    """A table held by a booking over its occupied window [start, end)."""

    booking_id: str
    table_id: str
    start: datetime
    end: datetime
    party_size: int = 0
    # When the held booking's meal starts (not its occupied window); re-packing
    # never moves a booking that has started or starts within the freeze window.
    booking_start: datetime | None = None
    # How the booking got its tables (bookings.assignment_strategy); re-packing
    # never moves a booking an operator placed by hand ("manual").
    assignment_strategy: str | None = None
    # The held booking's own zone wish: re-packing keeps a booking in the zone
    # it sits in, or moves it into the zone it asked for.
    zone_preference: str | None = None
    # How many times re-packing has moved the held booking already: a guest is
    # moved at most once in an evening, so re-packing never moves it again.
    times_moved: int = 0


@dataclass(frozen=True)
class KnownBooking:
    """A later booking the engine knows about but that has no tables yet (lookahead)."""

    booking_id: str
    party_size: int
    start: datetime
    end: datetime
    zone_preference: str | None = None


@dataclass(frozen=True)
class DemandProfile:
    """The requests a restaurant expects on an evening, by party size and time
    of day: what lookahead placement keeps tables free for (docs/engine.md,
    "Lookahead placement"). Storage computes it from the restaurant's own past
    requests (`storage.demand`); without one the engine assumes
    `default_demand`.
    """

    # (minute of the local day the meal starts, party size, expected requests
    # an evening starting in that minute's slot)
    rates: tuple[tuple[int, int, float], ...]
    # (party size, minutes a table is held: meal plus buffer)
    durations: tuple[tuple[int, int], ...]
    slot_minutes: int = 15


@dataclass(frozen=True)
class RestaurantSnapshot:
    restaurant_id: str
    tables: tuple[Table, ...]
    adjacency: tuple[tuple[str, str], ...]  # undirected edges by table id
    allocations: tuple[Allocation, ...] = ()
    known_bookings: tuple[KnownBooking, ...] = ()
    zones_active: tuple[str, ...] = ()  # empty means every zone is active
    # The restaurant's IANA time zone: the engine's reasons name clock times on
    # it (None: UTC).
    timezone: str | None = None
    # The demand the evening is expected to bring (None: the engine's default).
    demand: DemandProfile | None = None
    # Zones the floor plan declares equivalent (`equivalent_zones`): re-packing
    # may move a guest between the zones of one group as if they were one zone.
    zone_groups: tuple[tuple[str, ...], ...] = ()

    def same_zone(self, zone: str) -> tuple[str, ...]:
        """`zone` and the zones declared equivalent to it, sorted."""
        for group in self.zone_groups:
            if zone in group:
                return tuple(sorted(set(group) | {zone}))
        return (zone,)


@dataclass(frozen=True)
class BookingRequest:
    booking_id: str
    party_size: int
    start: datetime  # start of the occupied window (the meal's start)
    end: datetime  # end of the occupied window (meal end + buffer), exclusive
    zone_preference: str | None = None


@dataclass(frozen=True)
class ScoreWeights:
    """Weights of the one ranking score; lower scores rank first.

    score = overage * w_overage + (tables - 1) * w_extra_table
          + diameter * w_diameter + fragmentation * w_fragmentation
          + zone_load * w_zone_load + lookahead * w_lookahead
          + scarcity * w_scarcity + (not preferred zone) * w_zone_miss
          + idle_gap * w_idle_gap
    """

    overage: float = 10.0
    # Between one and two empty seats: a single table still beats a group that
    # fits as well, but a group that fits exactly beats a single with two or
    # more empty seats (a 4 on two 2-tops rather than on a 6-top the 5s and 6s
    # need). At 50 (above any overage, as the legacy planner ranks) the engine
    # alone chose as legacy does; below one empty seat (4) a 3 took three bar
    # stools and a 2 two 2-tops (bench/engine.py, issues 13 and 24).
    extra_table: float = 15.0
    diameter: float = 1.0
    # Off by default: fragmentation, zone load, scarcity and idle gaps were
    # measured on three floor shapes at 70-170% load and none earned seats or
    # covers (each moved results by a few bookings either way); the terms stay
    # in every plan's breakdown.
    fragmentation: float = 0.0
    zone_load: float = 0.0
    lookahead: float = 6.0
    scarcity: float = 0.0
    zone_miss: float = 1000.0
    idle_gap: float = 0.0
    # Lookahead placement (engine/demand.py): expected covers of the demand
    # still to come whose options the plan takes. A tie-break among plans that
    # fit equally well (200 expected covers weigh one empty seat): as a term
    # that could outweigh an empty seat it cost covers on every floor measured.
    demand: float = 0.05


@dataclass(frozen=True)
class EngineConfig:
    max_tables: int = 3
    max_overage: int = 4
    adjacency_mode: AdjacencyMode = AdjacencyMode.CONNECTED
    weights: ScoreWeights = field(default_factory=ScoreWeights)
    max_plans: int = 20  # how many ranked plans the result carries (all are still searched)
    repack: bool = True
    # Bounds of the fallback re-packing search (the bounded search that runs
    # when the exact one runs out of budget): at most max_moves moves, same
    # zone, max_repack_steps placements tried plus combinations evaluated.
    max_moves: int = 3
    max_repack_steps: int = 400
    # Re-packing never moves a booking that starts within this many minutes of `now`.
    repack_freeze_minutes: int = 60
    # The exact re-packing search's step budget (nodes, seat options and
    # matchings; 16,000 take 10-16 ms CPU on a 62-table floor). It alone
    # decides: the same inputs give the same answer on any machine. When it
    # runs out the bounded search decides instead and the result says so
    # (SearchResult.repack == "bounded", truncated).
    max_exact_steps: int = 16000
    # The share of max_exact_steps the passes over 1..3 moves may use before the
    # pass without a move limit runs (1.0: all of it, the fewest moves always
    # first); only without a cap on moves (repack_max_moves None). Short
    # re-packs can take many steps to find and long ones few, so neither may
    # starve the other.
    repack_shallow_share: float = 0.5
    # At most this many bookings moved to seat one new booking (None: as many
    # as needed). Every move is a table-changed email to a guest; every search
    # (exact, bounded) holds to it.
    repack_max_moves: int | None = 2
    # Re-packing never adds an empty seat: the plan it frees for the new
    # booking has none, and a moved booking gets no more seats than it held
    # (False: any valid re-assignment, as the bench's online bound counts).
    # Moves that seat a couple on a 4-top, or push a couple onto a 4-top,
    # spend seats the demand still to come asks for and fix the moved guests
    # for the evening (docs/engine.md, "Re-packing never adds an empty seat").
    repack_snug: bool = True
    # ... except for a booking that starts within this many minutes of `now`
    # (None: for none): few requests for its window are still to come, so the
    # seats a re-pack leaves empty are seldom wanted, and the re-pack seats a
    # party now (docs/engine.md, "Re-packing never adds an empty seat").
    repack_snug_lead_minutes: int | None = 240
    # Plans of more than two tables (three stools for a party of 3, three
    # 4-tops for a party of 10) are offered only when the booking starts within
    # this many minutes of `now` (None: always). Such plans use up small tables
    # later small parties need; the legacy planner never makes them.
    wide_plan_lead_minutes: int | None = 120
    # A wall-clock safety stop for the exact search, far above the time its
    # step budget takes (16,000 steps: 10-16 ms of CPU on the 62-table floor,
    # at most 65 ms of wall clock measured on a loaded 2-core machine; None:
    # none). It decides nothing on a healthy machine; when it fires the
    # bounded search answers and the result says so (SearchResult.safety_stop).
    repack_safety_stop_ms: float | None = 250.0
    # With re-packing, a booking that already starts within the freeze window
    # when it is placed can never be moved again: its plan is final. For it the
    # idle_gap term (hours of unusable idle time left on its tables) weighs at
    # least this much, a tie-break below one empty seat (w_overage 10), so it
    # takes the table it fits most snugly in time (docs/engine.md, "Final plans").
    frozen_idle_gap: float = 1.0
    # Availability's re-packing stage (engine/availability_repack.py): the
    # steps of every bounded and exact search it runs for one evaluation, in
    # total. Steps alone decide which start times get decided, so the same
    # snapshot gets the same answer on any machine; the wall clock is only the
    # stage's safety stop (`repack_safety_stop_ms` for the whole stage, reported
    # as `safety_stop`). 2,500 steps take about what the former 20 ms wall-clock
    # budget did (18-23 ms of CPU an evening on the sample floor,
    # bench/availability.py); the sample floor's evenings need 17,000-62,000 to
    # decide every start time.
    availability_repack_steps: int = 2500

    def __post_init__(self) -> None:
        if not 1 <= self.max_tables <= 5:
            raise ValueError(f"max_tables must be between 1 and 5, got {self.max_tables}")
        if self.max_overage < 0:
            raise ValueError(f"max_overage must be >= 0, got {self.max_overage}")
        if self.repack_freeze_minutes < 0:
            raise ValueError(
                f"repack_freeze_minutes must be >= 0, got {self.repack_freeze_minutes}"
            )
        if self.repack_snug_lead_minutes is not None and self.repack_snug_lead_minutes < 0:
            raise ValueError(
                "repack_snug_lead_minutes must be >= 0 or None, "
                f"got {self.repack_snug_lead_minutes}"
            )
        if self.repack_safety_stop_ms is not None and self.repack_safety_stop_ms < 0:
            raise ValueError(
                f"repack_safety_stop_ms must be >= 0 or None, got {self.repack_safety_stop_ms}"
            )
        if self.availability_repack_steps < 0:
            raise ValueError(
                f"availability_repack_steps must be >= 0, got {self.availability_repack_steps}"
            )
        if self.max_exact_steps < 0:
            raise ValueError(f"max_exact_steps must be >= 0, got {self.max_exact_steps}")
        if self.repack_max_moves is not None and self.repack_max_moves < 1:
            raise ValueError(
                f"repack_max_moves must be >= 1 or None (as many as needed), "
                f"got {self.repack_max_moves}"
            )
        if self.frozen_idle_gap < 0:
            raise ValueError(f"frozen_idle_gap must be >= 0, got {self.frozen_idle_gap}")
        if not 0 < self.repack_shallow_share <= 1:
            raise ValueError(
                f"repack_shallow_share must be in (0, 1], got {self.repack_shallow_share}"
            )


@dataclass(frozen=True)
class Plan:
    tables: tuple[str, ...]  # sorted table ids
    score: float
    strategy: str  # optimal_fit | adjacency | load_balancing | repack | legacy | manual
    breakdown: dict[str, float] = field(default_factory=dict)
    zone: str = ""
    capacity: int = 0


@dataclass(frozen=True)
class Move:
    """Re-packing: move an already confirmed booking from some tables to others."""

    booking_id: str
    from_tables: tuple[str, ...]
    to_tables: tuple[str, ...]


@dataclass(frozen=True)
class SearchResult:
    plans: tuple[Plan, ...]
    reason: str | None = None  # why there is no plan, for people
    # re-packing moves that free plans[0], in the order they can be applied one
    # at a time (each move's new tables are free once the moves before it are done)
    moves: tuple[Move, ...] = ()
    evaluated: int = 0  # candidate combinations looked at
    truncated: bool = False  # an explicit limit was hit (never silently)
    # How re-packing decided, when it ran: "exact" (the fewest moves, or proven
    # that no re-assignment exists) or "bounded" (the exact search ran out of
    # its step budget; the bounded search answered, so a "no" is not a proof).
    repack: str = ""
    # A wall-clock safety stop fired (the exact search's `repack_safety_stop_ms`):
    # this one answer may differ on a less loaded machine. Never set when the
    # step budgets decided.
    safety_stop: bool = False

    @property
    def found(self) -> bool:
        return bool(self.plans)
