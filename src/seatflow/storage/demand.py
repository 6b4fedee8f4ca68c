"""The restaurant's demand profile, from its own past requests (docs/engine.md,
"Lookahead placement"): how many requests an evening start in each 15-minute
slot of the local day, by party size, and how long each party size holds a
table, over the `HISTORY_DAYS` days before the booking's local day.

Every request counts, seated or not (a refused party of 8 is demand the floor
should expect), except those cancelled before any table was tried. A restaurant
without history gets None, and the engine assumes its default profile.

The profile of a (restaurant, local day) only changes when its past days do
(a late cancellation of an earlier booking, a back-filled one), so each
process keeps it for `CACHE_SECONDS` (`ProfileCache`): a snapshot read passes
the keys it holds and PostgreSQL skips the subquery for them (at 100 bookings
a day it is ~6-14 ms of PostgreSQL per read against ~0.2 ms for the rest of
the snapshot; docs/performance.md). A past day's change shows within
`CACHE_SECONDS`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from seatflow.domain.planning import DemandProfile

HISTORY_DAYS = 28
SLOT_MINUTES = 15
CACHE_SECONDS = 600.0
# What a snapshot read returns for a profile the process holds (not computed).
CACHED = "cached"


def demand_sql(restaurant: str, timezone: str, day_of: str) -> str:
    """A scalar subquery: the profile as JSON (`{"days", "rates", "durations"}`,
    null without history) for the restaurant `restaurant` (an SQL expression)
    in zone `timezone`, from the `HISTORY_DAYS` local days before the local day
    of the instant `day_of`."""
    local_day = f"date_trunc('day', ({day_of}) AT TIME ZONE {timezone})"
    return (
        "(WITH past AS (SELECT h.party_size AS party, "
        f"  CAST(h.start_at AT TIME ZONE {timezone} AS date) AS day, "
        f"  CAST(extract(hour FROM h.start_at AT TIME ZONE {timezone}) * 60 "
        f"   + extract(minute FROM h.start_at AT TIME ZONE {timezone}) AS integer) "
        f"   / {SLOT_MINUTES} * {SLOT_MINUTES} AS minute, "
        "  extract(epoch FROM h.occupied_until - h.start_at) / 60 AS held "
        f" FROM bookings h WHERE h.restaurant_id = {restaurant} "
        f"  AND h.start_at >= ({local_day} - make_interval(days => {HISTORY_DAYS})) "
        f"      AT TIME ZONE {timezone} "
        f"  AND h.start_at < {local_day} AT TIME ZONE {timezone} "
        "  AND NOT (h.assignment_state = 'cancelled' AND h.assignment_strategy IS NULL)) "
        "SELECT CASE WHEN count(*) = 0 THEN NULL ELSE json_build_object("
        " 'days', (SELECT count(DISTINCT day) FROM past), "
        " 'rates', (SELECT json_agg(json_build_array(minute, party, n) "
        "   ORDER BY minute, party) FROM (SELECT minute, party, count(*) AS n FROM past "
        "   GROUP BY minute, party) r), "
        " 'durations', (SELECT json_agg(json_build_array(party, m) ORDER BY party) "
        "   FROM (SELECT party, CAST(ceil(avg(held)) AS integer) AS m FROM past GROUP BY party) d)) END "
        "FROM past)"
    )


def key_sql(restaurant: str, timezone: str, day_of: str) -> str:
    """The cache key of the profile `demand_sql` computes: `<restaurant> <local day>`."""
    return (f"({restaurant} || ' ' || CAST(CAST(({day_of}) AT TIME ZONE {timezone} AS date) "
            "AS text))")


def cached_demand_sql(restaurant: str, timezone: str, day_of: str) -> str:
    """`demand_sql`, or the JSON string `CACHED` when the key is one of
    :demand_known (the keys the reading process holds, `ProfileCache.known`).
    Selected with `key_sql` as `demand_key`."""
    key = key_sql(restaurant, timezone, day_of)
    return (f"CASE WHEN {key} = ANY(CAST(:demand_known AS text[])) THEN to_json('{CACHED}'::text) "
            f"ELSE {demand_sql(restaurant, timezone, day_of)} END")


class ProfileCache:
    """The profiles this process read, by `<restaurant> <local day>`, each
    fresh for `CACHE_SECONDS` after it was computed."""

    def __init__(self, seconds: float = CACHE_SECONDS, limit: int = 256):
        self.seconds, self.limit = seconds, limit
        self._entries: dict[str, tuple[float, DemandProfile | None]] = {}

    def known(self) -> list[str]:
        """The fresh keys (the newest `limit`): a read computes no profile for these."""
        now = time.monotonic()
        fresh = [(until, key) for key, (until, _p) in self._entries.items() if until > now]
        if len(self._entries) > 4 * self.limit:  # forget what went stale
            self._entries = {k: self._entries[k] for _u, k in fresh}
        return [key for _u, key in sorted(fresh, reverse=True)[: self.limit]]

    def profile(self, key: str, value: Any) -> DemandProfile | None:
        """The profile of a snapshot row: computed (kept) or `CACHED` (looked
        up; an entry forgotten in between reads as no history, once)."""
        if isinstance(value, str):  # JSON not decoded by the driver
            value = CACHED if value in (CACHED, f'"{CACHED}"') else json.loads(value)
        if value == CACHED:
            return self._entries.get(key, (0.0, None))[1]
        profile = profile_from_json(value)
        self._entries[key] = (time.monotonic() + self.seconds, profile)
        return profile

    def clear(self) -> None:
        self._entries.clear()


CACHE = ProfileCache()


def profile_from_json(value: Any) -> DemandProfile | None:
    """The profile from `demand_sql`'s JSON (None without history)."""
    if not value:
        return None
    days = max(1, int(value["days"]))
    return DemandProfile(
        rates=tuple(
            (int(minute), int(party), round(n / days, 6)) for minute, party, n in value["rates"]
        ),
        durations=tuple((int(party), int(m)) for party, m in value["durations"]),
        slot_minutes=SLOT_MINUTES,
    )
