"""The house rules a reader relies on, checked over the files themselves.

- The repository explains itself: no file cites a design or style document
  that is not in it (docs/architecture.md is the project's own).
- SQL lives in `seatflow.storage` only: everywhere else code calls a named
  storage function. There is no allowlist.
- The import rules between layers hold (import-linter's contracts).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Not the project's files: environments, caches, build output, local state.
SKIPPED_DIRS = {".git", ".venv", "var", "build", "dist", "node_modules", "__pycache__",
                ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
# Spelled in two parts so that this file does not cite them itself.
OUTSIDE_DOCUMENTS = ("DESIGN" + ".md", "STYLE" + ".md")


def project_files() -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        found += [Path(folder) / f for f in files]
    return found


def test_no_file_cites_a_document_outside_the_repository() -> None:
    files = project_files()
    assert ROOT / "docs" / "architecture.md" in files and ROOT / "src" / "worker.py" in files
    citing = []
    for path in files:
        data = path.read_bytes()
        for name in OUTSIDE_DOCUMENTS:
            if name.encode() in data:
                line = data[: data.index(name.encode())].count(b"\n") + 1
                citing.append(f"{path.relative_to(ROOT)}:{line} cites {name}")
    assert not citing, "point these at docs/architecture.md (or drop them):\n" + "\n".join(
        citing
    )


def test_the_architecture_document_covers_what_a_newcomer_needs() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    for heading in ("## Layers and import rules", "## The state machine", "## The attempt path",
                    "## Guarantees and what enforces them", "## Where each kind of code lives",
                    "## Changing the workflow safely"):
        assert heading in text, heading
    assert "workflow.patched" in text
    readme = (ROOT / "README.md").read_text()
    assert "docs/architecture.md" in readme


def test_the_module_map_names_every_module_and_package() -> None:
    """A newcomer finds where a change goes from "Where each kind of code lives":
    every package and module under src/ is named there (the migrations' own
    files aside), so a module added without a line in the map fails here."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Where each kind of code lives", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", section))
    unnamed = []
    for path in sorted((ROOT / "src").rglob("*")):
        relative = path.relative_to(ROOT / "src")
        if any(p.endswith(".egg-info") or p in ("__pycache__", "migrations", "templates",
                                                "static") for p in relative.parts[:-1]):
            continue
        if path.is_dir() and path.name not in ("__pycache__",) and not path.name.endswith(
                ".egg-info"):
            name = path.name
        elif path.suffix == ".py" and path.stem != "__init__":
            name = path.stem
        else:
            continue
        if name not in named:
            unnamed.append(str(relative))
    assert not unnamed, "name these in docs/architecture.md's module map: " + ", ".join(unnamed)


SRC = ROOT / "src"
STORAGE = SRC / "seatflow" / "storage"
# A call of sqlalchemy's text() or select(), or an import of a statement
# builder (SQLAlchemy's, or storage's own for the driver connection:
# `storage.db.statement`, `connection`, `driver`).
SQL_CALL = re.compile(r"(?<![\w.])(?:sqlalchemy\.)?(?:text|select)\(")
SQL_IMPORT = re.compile(
    r"^\s*from (?:sqlalchemy(?:\.[\w.]+)? import [^\n]*\b(?:text|select|insert|update|delete)"
    r"|seatflow\.storage\.db import [^\n]*\b(?:statement|Statement|connection|driver))\b",
    re.MULTILINE,
)


def sql_outside_storage() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(STORAGE):
            continue
        source = path.read_text()
        hits = [f"line {source[: m.start()].count(chr(10)) + 1}: {m.group(0).strip()}"
                for pattern in (SQL_CALL, SQL_IMPORT) for m in pattern.finditer(source)]
        if hits:
            found[path.relative_to(SRC).as_posix()] = hits
    return found


def test_sql_is_issued_by_seatflow_storage_only() -> None:
    found = sql_outside_storage()
    assert not found, (
        "SQL outside seatflow.storage: move each statement into a named storage function\n"
        + "\n".join(f"{name}: {hits}" for name, hits in found.items())
    )


def test_the_sql_pattern_finds_statements_and_ignores_lookalikes() -> None:
    sample = (
        "from sqlalchemy import text\n"
        "from seatflow.storage.db import statement\n"
        "from seatflow.storage.db import make_engine\n"
        "rows = await conn.execute(text('SELECT 1'))\n"
        "q = select(Table)\n"
        "body = path.read_text()\n"
        "ctx = event.context()\n"
    )
    calls = [m.group(0) for m in SQL_CALL.finditer(sample)]
    assert calls == ["text(", "select("]
    assert len(SQL_IMPORT.findall(sample)) == 2


def test_the_import_contracts_hold() -> None:
    """The layer rules of docs/architecture.md, as import-linter contracts in
    pyproject.toml (front doors -> service -> storage and engine -> domain;
    workflows, the engine, the domain and the floor-plan format pure; storage
    free of Temporal and its messages)."""
    import subprocess
    import sys

    linter = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run([str(linter), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout
