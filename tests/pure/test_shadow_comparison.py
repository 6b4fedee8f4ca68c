"""The shadow's comparison event is written by `context()` and read back by the
shadow report with `from_context()`: one type, both directions."""

from __future__ import annotations

import pytest

from seatflow.domain.shadow import NOT_SEATED, SEATED, ShadowComparison


@pytest.mark.parametrize("v3_outcome, v3_tables", [(SEATED, ("T2", "T3")), (NOT_SEATED, ())])
def test_a_comparison_reads_back_from_its_event_context(
    v3_outcome: str, v3_tables: tuple[str, ...],
) -> None:
    written = ShadowComparison(
        booking_id="b1", restaurant_id="bistro", legacy_outcome=SEATED,
        legacy_tables=("T1",), v3_outcome=v3_outcome, v3_tables=v3_tables,
        v3_strategy="repack" if v3_tables else None,
        agree_outcome=v3_outcome == SEATED, agree_tables=False,
        why=None if v3_tables else "no_capacity", as_of="2026-12-06T19:00:00+00:00",
        details={"search_ms": 3.2},  # extra context is written, not read back
    )
    read = ShadowComparison.from_context("b1", "bistro", written.context())
    assert read == ShadowComparison(**{**written.__dict__, "details": {}})
    assert read.agree == written.agree


def test_an_event_without_a_restaurant_reads_back_with_an_empty_one() -> None:
    read = ShadowComparison.from_context("b1", None, {"legacy": {"outcome": SEATED}})
    assert (read.restaurant_id, read.v3_tables, read.agree) == ("", (), False)
