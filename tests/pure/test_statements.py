"""storage.db.statement numbers `:name` parameters as SQLAlchemy's asyncpg
dialect does, so the hot path's statements reach PostgreSQL as the same SQL
they were when SQLAlchemy sent them (issue 27)."""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg

import seatflow.storage
from seatflow.storage.db import Statement, statement
from seatflow.storage.transitions import _chain_sql, _write_sql


def every_statement() -> dict[str, Statement]:
    found: dict[str, Statement] = {}
    for info in pkgutil.iter_modules(seatflow.storage.__path__):
        module = importlib.import_module(f"seatflow.storage.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, Statement):
                found[f"{info.name}.{name}"] = value
    for settles in (False, True):
        for columns in ((), ("status", "assignment_strategy", "assignment_pipeline")):
            found[f"transitions.write{settles, columns}"] = _write_sql(settles, columns)
            found[f"transitions.chain{settles, columns}"] = _chain_sql(settles, columns)
    return found


def test_every_statement_is_the_sql_sqlalchemy_would_send() -> None:
    statements = every_statement()
    assert len(statements) > 30  # the hot path's and their neighbours'
    dialect = asyncpg.dialect()
    for name, st in statements.items():
        compiled = text(st.source).compile(dialect=dialect)
        assert (st.sql, st.names) == (compiled.string, tuple(compiled.positiontup or ())), name


def test_casts_string_literals_and_repeated_names() -> None:
    st = statement("SELECT CAST(:id AS uuid), x::text, 'slot:' || :r, :id, "
                   "to_json('cached'::text), make_interval(secs => :lease)")
    assert st.sql == ("SELECT CAST($1 AS uuid), x::text, 'slot:' || $2, $1, "
                      "to_json('cached'::text), make_interval(secs => $3)")
    assert st.names == ("id", "r", "lease")
    assert st.args({"lease": 5, "id": "b", "r": "x"}) == ["b", "x", 5]


def test_no_statement_has_a_parameter_name_inside_a_string_literal() -> None:
    """`statement` (like SQLAlchemy's `text`) would number `:word` inside
    quotes too ('19:30' stays, 'a:b' would become 'a$1'): no storage statement
    may have one, so the numbering never rewrites a literal."""
    import re

    literal = re.compile(r"'(?:[^']|'')*'")
    inside = re.compile(r"(?<![:\w]):[A-Za-z_]")
    for name, st in every_statement().items():
        for found in literal.findall(st.source):
            assert not inside.search(found), (name, found)
