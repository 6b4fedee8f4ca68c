"""`seatflow flags`: the pipeline a booking of a restaurant would get now, and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from seatflow.cli.flags import flags_command
from seatflow.config import rollout_bucket

V3 = "FEATURE_ASSIGNMENT_PIPELINE_V3"


def flags(*args: str, **env: str) -> typer.testing.Result:
    app = typer.Typer()
    app.command("flags")(flags_command)
    app.command("unused", hidden=True)(lambda: None)  # keep flags a subcommand
    return CliRunner().invoke(app, ["flags", *args], env=env)


@pytest.fixture(autouse=True)
def no_flags_from_outside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets: no flag from the environment or a `.env` file."""
    monkeypatch.chdir(tmp_path)
    for suffix in ("", "_SHADOW", "_MAX_PARALLEL", "_ROLLOUT_PERCENT", "_RESTAURANTS"):
        monkeypatch.delenv(V3 + suffix, raising=False)


def decision(restaurant: str, **env: str) -> dict[str, object]:
    done = flags("--restaurant", restaurant, "--json", **env)
    assert done.exit_code == 0, done.output
    answer: dict[str, object] = json.loads(done.stdout)["decision"]
    return answer


def test_the_decision_names_the_pipeline_and_the_reason() -> None:
    assert decision("harbour-kitchen") == {
        "restaurant_id": "harbour-kitchen", "pipeline": "legacy", "shadow": False,
        "max_parallel": 3, "bucket": rollout_bucket("harbour-kitchen"),
        "why": f"{V3} is off"}

    bucket = rollout_bucket("harbour-kitchen")
    inside = decision("harbour-kitchen", **{V3: "true", f"{V3}_ROLLOUT_PERCENT": str(bucket + 1)})
    assert inside["pipeline"] == "v3" and inside["shadow"] is False
    assert inside["why"] == f"bucket {bucket} < rollout {bucket + 1}%"
    outside = decision("harbour-kitchen", **{V3: "true", f"{V3}_ROLLOUT_PERCENT": str(bucket),
                                             f"{V3}_SHADOW": "true"})
    assert outside["pipeline"] == "legacy" and outside["shadow"] is True  # V3 in shadow beside it
    assert outside["why"] == f"bucket {bucket} >= rollout {bucket}%"

    listed = {V3: "true", f"{V3}_RESTAURANTS": "harbour-kitchen, bistro"}
    assert decision("bistro", **listed)["why"] == "on the allowlist"
    assert decision("elsewhere", **listed)["why"] == "not on the allowlist"


def test_the_text_shows_every_flag_and_the_decision_on_one_line() -> None:
    done = flags("--restaurant", "bistro", **{V3: "true", f"{V3}_RESTAURANTS": "bistro",
                                              f"{V3}_MAX_PARALLEL": "5"})
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].split() == [V3, "True"]
    assert lines[4].split() == [f"{V3}_RESTAURANTS", "['bistro']"]
    assert lines[-1] == "bistro: pipeline v3, max parallel 5 (on the allowlist)"
    # Without a restaurant: the flags alone.
    assert "decision" not in json.loads(flags("--json").stdout)


def test_an_invalid_flag_is_a_usage_error_naming_it() -> None:
    done = flags("--restaurant", "bistro", **{f"{V3}_MAX_PARALLEL": "0"})
    assert done.exit_code == 2
    assert f"{V3}_MAX_PARALLEL" in done.output


def test_the_decision_sees_a_flag_change_at_once_from_the_environment_or_dotenv(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`current_flags` parses again only when a flag variable or .env changed
    (issue 27), and then at once: a flag change reaches bookings in flight."""
    from seatflow.config import current_flags

    assert current_flags().v3 is False
    assert current_flags() is current_flags()  # nothing changed: not parsed again
    monkeypatch.setenv(V3, "true")
    assert current_flags().v3 is True
    monkeypatch.delenv(V3)
    (tmp_path / ".env").write_text(f"{V3}=true\nFEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL=7\n")
    assert (current_flags().v3, current_flags().max_parallel) == (True, 7)
    (tmp_path / ".env").write_text(f"{V3}=true\nFEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL=5\n")
    assert current_flags().max_parallel == 5  # same size, new content: seen at once
