"""The matching bound of exact re-packing: can every booking get the tables it
needs out of those it may use, no table given twice?

A bipartite b-matching over bitmasks of tables (docs/engine.md); the exact
search (`exact_problem.RepackProblem._packable`) runs it at every instant
where the set of bookings in the room grows, and a no proves a branch dead.
"""

from __future__ import annotations


def saturates(demands: list[tuple[int, int]]) -> bool:
    """Can every booking get `need` distinct tables out of its `mask`, no table
    given twice? A bipartite b-matching (docs/engine.md)."""
    return saturation(demands)[0]


def saturation(demands: list[tuple[int, int]]) -> tuple[bool, int]:
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
