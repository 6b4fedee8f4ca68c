"""Markdown for the bench documents: numbers as the READMEs print them, and
tables (bench/report.py and bench/report_engine.py)."""

from __future__ import annotations


def num(x: float) -> str:
    """A count or mean: at most one decimal, none when whole."""
    return f"{round(x, 1):g}"


def ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
