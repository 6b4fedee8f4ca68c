"""The table-search engine (docs/engine.md): pure, deterministic, no I/O.

- `search`: every valid plan for a booking, ranked by one weighted score, with
  re-packing moves when nothing is free;
- `quote_tables`: the legacy first-fit planner, the baseline;
- `validate_plan`: why an operator-chosen table set is (not) a valid plan.
"""

from .legacy import quote_tables
from .search import search
from .validation import validate_plan

__all__ = ["quote_tables", "search", "validate_plan"]
