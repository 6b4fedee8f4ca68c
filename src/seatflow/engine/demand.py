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
from functools import lru_cache
from zoneinfo import ZoneInfo

from seatflow.domain.planning import BookingRequest, DemandProfile, EngineConfig

from .exact_problem import Option, floor_plans
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
    return _default_for(sum(floor.tables[t].capacity for t in floor.usable))


@lru_cache(maxsize=64)
def _default_for(seats: int) -> DemandProfile:
    """The default profile of a floor of `seats` seats: it depends on nothing
    else, so it is made once per size, not for every search (issue 27)."""
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


# Per profile (by identity: storage keeps a restaurant's profile object for
# minutes, the default one is kept per size above), its opportunities as slot
# masks: (party, first slot, mask, rate), in the profile's order.
_OPENINGS: dict[int, tuple[DemandProfile, list[tuple[int, int, int, float]]]] = {}
# Per list of a party's plans (`floor_plans` keeps one list per floor and
# party): how many, and per table the plans that use it, as a bitset over the
# list (bit i: plans[i]).
_USERS: dict[int, tuple[list[Option], int, dict[str, int]]] = {}
_KEPT = 256


def _openings(profile: DemandProfile) -> list[tuple[int, int, int, float]]:
    kept = _OPENINGS.get(id(profile))
    if kept is not None and kept[0] is profile:
        return kept[1]
    slot = max(1, profile.slot_minutes)
    durations = dict(profile.durations)
    found = []
    for minute, party, rate in profile.rates:
        if party < 1 or rate <= 0 or party not in durations:
            continue
        first = minute // slot
        count = -(-durations[party] // slot)
        found.append((party, first, ((1 << count) - 1) << first, rate))
    if len(_OPENINGS) >= _KEPT:
        _OPENINGS.clear()
    _OPENINGS[id(profile)] = (profile, found)
    return found


def _users(plans: list[Option]) -> tuple[int, dict[str, int]]:
    kept = _USERS.get(id(plans))
    if kept is not None and kept[0] is plans:
        return kept[1], kept[2]
    users: dict[str, int] = {}
    for i, option in enumerate(plans):
        for table_id in option.candidate.tables:
            users[table_id] = users.get(table_id, 0) | 1 << i
    if len(_USERS) >= _KEPT:
        _USERS.clear()
    _USERS[id(plans)] = (plans, len(plans), users)
    return len(plans), users


class DemandView:
    """The opportunities of one request's window and their free plans, computed
    lazily and once per search; a table's share only when it is asked."""

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
        for party, first, mask, rate in _openings(profile):
            if not mask & window:
                continue
            remaining = rate - held.get((first, party), 0)
            if remaining > 0:
                self.opportunities.append((party, mask, remaining * party))
        self._zones = tuple(sorted({floor.tables[t].zone for t in floor.usable}))
        self._served: list[tuple[float, int, dict[str, int]]] = []
        self._share: dict[str, float] = {}  # the tables asked so far
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
        """Per opportunity that some free plan serves, the share of its weight
        each of those plans gets and which they are (a bitset over the
        party's plans), counted once per party and set of busy tables."""
        floor = self.floor
        busy_in = [(slots, t, floor.bit.get(t, 0)) for t, slots in self.busy_in.items()]
        parties: dict[int, tuple[int, dict[str, int]]] = {}
        busy_of: dict[int, tuple[int, list[str]]] = {}
        free_of: dict[tuple[int, int], tuple[int, int]] = {}
        served: list[tuple[float, int, dict[str, int]]] = []
        for party, mask, weight in self.opportunities:
            busy_at = busy_of.get(mask)
            if busy_at is None:
                busy, ids = 0, []
                for slots, table_id, bit in busy_in:
                    if slots & mask and bit:
                        busy |= bit
                        ids.append(table_id)
                busy_at = busy_of[mask] = (busy, ids)
            busy, ids = busy_at
            of_party = parties.get(party)
            if of_party is None:
                of_party = parties[party] = _users(
                    floor_plans(floor, party, self._zones, self.config))
            total, users = of_party
            found = free_of.get((party, busy))
            if found is None:
                blocked = 0
                for table_id in ids:
                    blocked |= users.get(table_id, 0)
                free = ((1 << total) - 1) & ~blocked
                found = free_of[(party, busy)] = (free, free.bit_count())
            free, count = found
            if count:
                served.append((weight / count, free, users))
        self._served = served
        self._computed = True

    def _share_of(self, table_id: str) -> float:
        """The expected covers of the opportunities `table_id` serves: each
        free plan of an opportunity that touches the tables of interest gives
        each of its tables an equal share of the opportunity's weight, added
        plan by plan in the order of the opportunities (the same sum, float
        for float, as before issue 27 made it lazy: only the tables asked
        are summed, and a table in k free plans gets its share added k
        times)."""
        value = self._share.get(table_id)
        if value is not None:
            return value
        value = 0.0
        inside = self.floor.bit.get(table_id, 0) & self.interest
        for each, free, users in self._served:
            plans = users.get(table_id, 0) & free
            if plans and not inside:  # only the plans that touch the tables of interest
                plans &= self._touching(users)
            for _ in range(plans.bit_count()):
                value += each
        self._share[table_id] = value
        return value

    def _touching(self, users: dict[str, int]) -> int:
        """The plans (of `users`' party) that use a table of interest."""
        touching = 0
        for table_id, plans in users.items():
            if self.floor.bit.get(table_id, 0) & self.interest:
                touching |= plans
        return touching

    def cost(self, tables: tuple[str, ...]) -> float:
        """Expected covers of the demand still to come whose options `tables` take."""
        if not self._computed:
            self._compute()
        return round(sum(self._share_of(t) for t in tables), 6)
