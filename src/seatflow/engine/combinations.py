"""Exhaustive enumeration of valid table sets for one party (docs/engine.md).

Single tables are checked one by one. Groups of 2..k tables are enumerated per
zone over the free movable tables with the ESU algorithm (Wernicke 2006): each
root grows only by neighbours with a larger index that are not already next to
the group, so every connected subset of at most k tables is produced exactly
once. Two capacity bounds prune the growth without losing a valid plan:

- upper: capacities are positive, so once a group exceeds party + max_overage
  every larger group containing it does too;
- lower: a group of s tables can reach at most its capacity plus (k - s) times
  the largest free capacity in the zone; below the party it is abandoned.

The adjacency mode (`pairwise`, `neighbors`) is a filter on connected groups,
since both are stricter than `connected`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from seatflow.domain.planning import AdjacencyMode, EngineConfig, Mobility, Table

from .floor import Floor


@dataclass(frozen=True)
class Candidate:
    """A valid table set for one party, before scoring."""

    tables: tuple[str, ...]  # sorted ids
    capacity: int
    zone: str


@dataclass
class Enumeration:
    candidates: list[Candidate]
    evaluated: int


def single_fits(table: Table, party: int, max_overage: int) -> bool:
    if party < table.min_party or party > table.capacity:
        return False
    if table.max_party is not None and party > table.max_party:
        return False
    return table.capacity - party <= max_overage


def mode_accepts(
    tables: Sequence[str], neighbours: dict[str, frozenset[str]], mode: AdjacencyMode
) -> bool:
    """The group satisfies the adjacency mode (it is already known to be connected)."""
    if len(tables) <= 2 or mode == AdjacencyMode.CONNECTED:
        return True
    if mode == AdjacencyMode.PAIRWISE:
        return all(b in neighbours[a] for i, a in enumerate(tables) for b in tables[i + 1 :])
    # NEIGHBORS: one table is adjacent to every other one.
    return any(all(other == hub or other in neighbours[hub] for other in tables) for hub in tables)


def is_connected(tables: Sequence[str], neighbours: dict[str, frozenset[str]]) -> bool:
    if not tables:
        return False
    members = set(tables)
    seen = {tables[0]}
    stack = [tables[0]]
    while stack:
        current = stack.pop()
        for other in neighbours[current]:
            if other in members and other not in seen:
                seen.add(other)
                stack.append(other)
    return len(seen) == len(members)


def diameter(tables: Sequence[str], neighbours: dict[str, frozenset[str]]) -> int:
    """Longest shortest path inside the group's own adjacency (0 for one table)."""
    if len(tables) <= 1:
        return 0
    members = set(tables)
    longest = 0
    for source in tables:
        distance = {source: 0}
        frontier = [source]
        while frontier:
            following = []
            for current in frontier:
                for other in neighbours[current]:
                    if other in members and other not in distance:
                        distance[other] = distance[current] + 1
                        following.append(other)
            frontier = following
        longest = max(longest, max(distance.values()))
    return longest


def enumerate_plans(
    floor: Floor, party: int, free: Iterable[str], config: EngineConfig
) -> Enumeration:
    """`enumerate_candidates` under a configuration's plan rules (table count,
    overage, adjacency mode): the one call every search, proof and check makes."""
    return enumerate_candidates(
        floor,
        party,
        free,
        max_tables=config.max_tables,
        max_overage=config.max_overage,
        mode=config.adjacency_mode,
    )


def enumerate_candidates(
    floor: Floor,
    party: int,
    free: Iterable[str],
    *,
    max_tables: int,
    max_overage: int,
    mode: AdjacencyMode,
    zone: str | None = None,
) -> Enumeration:
    """Every valid table set for `party` among the `free` tables (optionally one zone)."""
    candidates: list[Candidate] = []
    evaluated = 0
    upper = party + max_overage
    by_zone: dict[str, list[str]] = {}
    for table_id in free:
        table = floor.tables[table_id]
        if zone is not None and table.zone != zone:
            continue
        evaluated += 1
        if single_fits(table, party, max_overage):
            candidates.append(Candidate((table_id,), table.capacity, table.zone))
        if table.mobility == Mobility.MOVABLE and max_tables >= 2:
            by_zone.setdefault(table.zone, []).append(table_id)
    if max_tables >= 2:
        for zone_id in sorted(by_zone):
            members = sorted(by_zone[zone_id])
            evaluated += _groups_in_zone(
                floor, members, zone_id, party, upper, max_tables, mode, candidates
            )
    return Enumeration(candidates, evaluated)


def _groups_in_zone(
    floor: Floor,
    members: list[str],
    zone_id: str,
    party: int,
    upper: int,
    k: int,
    mode: AdjacencyMode,
    out: list[Candidate],
) -> int:
    """ESU over one zone's free movable tables; appends groups of 2..k tables."""
    n = len(members)
    if n < 2:
        return 0
    position = {table_id: i for i, table_id in enumerate(members)}
    caps = [floor.tables[table_id].capacity for table_id in members]
    nbrs: list[frozenset[int]] = [
        frozenset(position[o] for o in floor.neighbours[table_id] if o in position)
        for table_id in members
    ]
    largest = max(caps)
    neighbours = floor.neighbours
    visited = 0

    def extend(
        group: list[int], total: int, extension: list[int], closed: frozenset[int], root: int
    ) -> None:
        nonlocal visited
        remaining = list(extension)
        size = len(group) + 1
        while remaining:
            w = remaining.pop()
            visited += 1
            new_total = total + caps[w]
            if new_total > upper:
                continue
            if new_total + (k - size) * largest < party:
                continue
            new_group = group + [w]
            if new_total >= party:
                ids = tuple(sorted(members[i] for i in new_group))
                if mode_accepts(ids, neighbours, mode):
                    out.append(Candidate(ids, new_total, zone_id))
            if size < k:
                grown = remaining + [u for u in nbrs[w] if u > root and u not in closed]
                if grown:
                    extend(new_group, new_total, grown, closed | nbrs[w], root)

    for root in range(n):
        if caps[root] > upper or caps[root] + (k - 1) * largest < party:
            continue
        extension = sorted(u for u in nbrs[root] if u > root)
        if extension:
            extend([root], caps[root], extension, nbrs[root] | {root}, root)
    return visited
