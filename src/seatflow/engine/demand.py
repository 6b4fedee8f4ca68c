"""Lookahead placement: what a plan costs the demand still to come
(docs/engine.md, "Lookahead placement").

The restaurant's demand profile (`DemandProfile`: expected requests an evening
by party size and start time) gives the *opportunities* a request's window
touches: a party of p starting at slot s, holding a table for its duration.
A plan blocks every opportunity that overlaps its window and that one of its
tables could still have served (alone or in a valid group), so its cost is,
summed over those opportunities,

    covers (p) x requests still expected (rate - already held)
      x (free plans of p the plan's tables are part of) / (free plans of p)

the expected covers of that demand whose options this plan takes away. A
table free only in a short gap blocks few opportunities (a snug fit in time);
a small table in a window where small parties outnumber small tables blocks
more than a large table nobody needs then; a movable table whose group would
seat a large party expected then is not broken up for a couple. Everything is
counted on a slot grid, from the snapshot alone: pure and deterministic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from seatflow.domain.planning import BookingRequest, DemandProfile, EngineConfig

from .exact_problem import floor_plans
from .floor import Floor

# Without a profile: the party mix of a typical evening (shares of requests,
# parties 1-12) around a 19:00-20:00 peak, its volume scaled to the floor so
# that the requests of an evening fill its seats twice (a table turns twice).
DEFAULT_MIX = {
    1: 0.08, 2: 0.55, 3: 0.12, 4: 0.13, 5: 0.03, 6: 0.035, 7: 0.015, 8: 0.012,
    9: 0.006, 10: 0.005, 11: 0.003, 12: 0.003,
}
DEFAULT_TURNS = 2.0


def default_demand(floor: Floor) -> DemandProfile:
    """A profile for a restaurant without history (see DEFAULT_MIX)."""
    seats = sum(floor.tables[t].capacity for t in floor.usable)
    mean_party = sum(p * share for p, share in DEFAULT_MIX.items())
    requests = DEFAULT_TURNS * seats / mean_party
    slots = [17 * 60 + 15 * i for i in range(19)]  # 17:00-21:30
    weights = [3 if 19 * 60 <= m < 20 * 60 else 2 if 18 * 60 <= m < 21 * 60 else 1 for m in slots]
    total = sum(weights)
    rates = tuple(
        (minute, party, round(requests * share * weight / total, 6))
        for minute, weight in zip(slots, weights, strict=True)
        for party, share in DEFAULT_MIX.items()
    )
    durations = tuple(
        (p, 95 if p <= 2 else 110 if p <= 4 else 125 if p <= 6 else 140) for p in DEFAULT_MIX
    )
    return DemandProfile(rates=rates, durations=durations)


class DemandView:
    """The opportunities of one request's window and their free plans, computed
    lazily and once per search."""

    def __init__(
        self,
        floor: Floor,
        request: BookingRequest,
        config: EngineConfig,
        profile: DemandProfile | None,
        interest: int = -1,
    ) -> None:
        """`interest`: the tables (a mask) whose cost may be asked (-1: all)."""
        self.floor = floor
        self.interest = interest
        self.config = config
        profile = profile or default_demand(floor)
        slot = max(1, profile.slot_minutes)
        tz = ZoneInfo(floor.snapshot.timezone) if floor.snapshot.timezone else UTC
        local = request.start.astimezone(tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        self.origin = midnight.astimezone(UTC)
        self.slot = timedelta(minutes=slot)
        window = self._mask(request.start, request.end)
        durations = dict(profile.durations)
        # Requests already held, by (start slot, party): what is still to come.
        # One per booking, whatever order its allocations come in (each of a
        # booking's tables carries its start and party: the earliest and the
        # largest, should they ever disagree).
        booked: dict[str, tuple[datetime, int]] = {}
        for allocation in floor.snapshot.allocations:
            if allocation.booking_id == request.booking_id or allocation.booking_start is None:
                continue
            known = booked.get(allocation.booking_id)
            if known is None:
                booked[allocation.booking_id] = (allocation.booking_start, allocation.party_size)
            else:
                booked[allocation.booking_id] = (min(known[0], allocation.booking_start),
                                                 max(known[1], allocation.party_size))
        held: dict[tuple[int, int], int] = {}
        for booking_start, party_size in booked.values():
            key = (self._index(booking_start), party_size)
            held[key] = held.get(key, 0) + 1
        # Busy tables by slot, ignoring the request itself.
        busy_in: dict[str, int] = {}
        for allocation in floor.snapshot.allocations:
            if allocation.booking_id == request.booking_id:
                continue
            busy_in[allocation.table_id] = busy_in.get(allocation.table_id, 0) | self._mask(
                allocation.start, allocation.end
            )
        self.busy_in = busy_in
        self.opportunities: list[tuple[int, int, float]] = []  # (party, slot mask, weight)
        for minute, party, rate in profile.rates:
            if party < 1 or rate <= 0 or party not in durations:
                continue
            first = minute // slot
            count = -(-durations[party] // slot)
            mask = ((1 << count) - 1) << first
            if not mask & window:
                continue
            remaining = rate - held.get((first, party), 0)
            if remaining > 0:
                self.opportunities.append((party, mask, remaining * party))
        self._zones = tuple(sorted({floor.tables[t].zone for t in floor.usable}))
        self._share: dict[str, float] = {}
        self._computed = False

    def _index(self, moment: datetime) -> int:
        return int((moment - self.origin) // self.slot)

    def _mask(self, start: datetime, end: datetime) -> int:
        first = max(0, self._index(start))
        last = self._index(end - timedelta(microseconds=1))
        if last < first:
            return 0
        return ((1 << (last - first + 1)) - 1) << first

    def _compute(self) -> None:
        """Per table of interest, the expected covers of the opportunities it
        serves, each shared among the free plans that could serve it."""
        share: dict[str, float] = {}
        floor = self.floor
        interest = self.interest
        plans: dict[int, list[tuple[int, tuple[str, ...]]]] = {}
        busy_of: dict[int, int] = {}
        for party, mask, weight in self.opportunities:
            if party not in plans:
                plans[party] = [
                    (o.mask, o.candidate.tables)
                    for o in floor_plans(floor, party, self._zones, self.config)
                ]
            busy = busy_of.get(mask)
            if busy is None:
                busy = 0
                for table_id, slots in self.busy_in.items():
                    if slots & mask:
                        busy |= floor.bit.get(table_id, 0)
                busy_of[mask] = busy
            free = [(m, tables) for m, tables in plans[party] if not m & busy]
            if not free:
                continue
            each = weight / len(free)
            for m, tables in free:
                if m & interest:
                    for table_id in tables:
                        share[table_id] = share.get(table_id, 0.0) + each
        self._share = share
        self._computed = True

    def cost(self, tables: tuple[str, ...]) -> float:
        """Expected covers of the demand still to come whose options `tables` take."""
        if not self._computed:
            self._compute()
        return round(sum(self._share.get(t, 0.0) for t in tables), 6)
