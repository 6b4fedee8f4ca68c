"""The house rules a reader relies on, checked over the files themselves.

- The repository explains itself: no file cites a design or style document
  that is not in it (docs/architecture.md is the project's own).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
