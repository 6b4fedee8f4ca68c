"""Every setting seatflow reads is documented where a newcomer looks for it:
the README's Configuration table and `.env.example` (set or commented out),
and nothing there names a setting that no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

from seatflow.config import Flags, Settings

ROOT = Path(__file__).resolve().parents[2]
# Read outside Settings (config.project_root); the dev stack's ports are
# docs/devstack.md's, and the database credentials are the compose file's.
EXTRA = {"SEATFLOW_HOME"}
NOT_SETTINGS = re.compile(r"^(SEATFLOW_DEV_|SEATFLOW_DB_|TEMPORAL_DB_|TEMPORAL_PORT$|"
                          r"TEMPORAL_UI_PORT$)")


def settings_names() -> set[str]:
    names = {str(f.alias) for f in Settings.model_fields.values()}
    names |= {str(f.alias) for f in Flags.model_fields.values()}
    return names | EXTRA


def configuration_table() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]


def env_example_names() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    return names


def test_every_setting_is_in_the_readme_and_env_example() -> None:
    table = configuration_table()
    missing = sorted(n for n in settings_names() if f"`{n}`" not in table)
    assert not missing, f"not in the README's Configuration table: {missing}"
    example = env_example_names()
    missing = sorted(settings_names() - example)
    assert not missing, f"not in .env.example: {missing}"


def test_no_removed_setting_is_documented() -> None:
    known = settings_names()
    table_names = set(re.findall(r"`((?:SEATFLOW|FEATURE)_[A-Z0-9_]+)`", configuration_table()))
    stale = sorted(n for n in table_names | env_example_names()
                   if n not in known and not NOT_SETTINGS.match(n))
    assert not stale, f"documented but not read by seatflow.config: {stale}"
