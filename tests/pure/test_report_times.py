"""`seatflow report` reads its range on the restaurant's clock, zone named."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from seatflow.ops.report import OperationsReport, render


def title_of(report: OperationsReport) -> str:
    console = Console(record=True, width=200)
    console.print(render(report))
    return " ".join(console.export_text().split())  # the title wraps at the table's width


def test_one_restaurant_reads_on_its_clock_and_all_of_them_in_utc() -> None:
    since, until = datetime(2026, 12, 16, 17, 0, tzinfo=UTC), datetime(2026, 12, 16, 23, 0,
                                                                         tzinfo=UTC)
    paris = OperationsReport(since=since, until=until, restaurant_id="chez-margot",
                             timezone="Europe/Paris")
    assert "chez-margot, 2026-12-16 18:00 -> 2026-12-17 00:00 Europe/Paris" in title_of(paris)
    assert paris.to_dict()["since"] == "2026-12-16T17:00:00+00:00"  # programs read ISO
    everywhere = OperationsReport(since=since, until=until, restaurant_id=None)
    assert "all restaurants, 2026-12-16 17:00 -> 2026-12-16 23:00 UTC" in title_of(everywhere)
