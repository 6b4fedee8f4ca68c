"""deploy/prometheus/alerts.yml, proven by promtool: the rules parse, and
alerts_test.yml fires and clears every alert from series named and labelled
as a worker exports them. Mutated copies of the rules must fail those unit
tests, so a green run means the tests can see a broken rule."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.system_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "prometheus"
ALERTS = RULES_DIR / "alerts.yml"
ALERTS_TEST = RULES_DIR / "alerts_test.yml"


def promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    tool = require_tool("promtool", "prometheus")
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def alert_names() -> list[str]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule["alert"] for group in data["groups"] for rule in group["rules"]]


def test_promtool_check_rules_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"SUCCESS: {len(alert_names())} rules found" in output, output


def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    result = promtool("test", "rules", str(ALERTS_TEST))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output and "FAILED" not in output, output


def test_every_alert_is_fired_and_then_cleared_by_the_unit_tests() -> None:
    """Each alert has a test case where it fires and, later in the same case,
    is expected not to fire (cleared); a new rule without tests fails here."""
    data = yaml.safe_load(ALERTS_TEST.read_text())
    assert data["rule_files"] == ["alerts.yml"]
    fired_and_cleared: set[str] = set()
    for case in data["tests"]:
        checks = sorted(case.get("alert_rule_test", []),
                        key=lambda c: int(str(c["eval_time"]).removesuffix("m")))
        for name in {c["alertname"] for c in checks}:
            firing = [bool(c.get("exp_alerts")) for c in checks if c["alertname"] == name]
            if True in firing:
                first = firing.index(True)  # quiet before it fires, cleared after
                if first > 0 and False in firing[first:]:
                    fired_and_cleared.add(name)
    assert fired_and_cleared == set(alert_names())


# A weakened or broken rule that the unit tests must catch.
MUTATIONS = {
    "noops counted as settled": (
        'outcome=~"confirmed|manual_review|failed"}[10m]',
        'outcome=~"confirmed|manual_review|failed|noop"}[10m]',
    ),
    "error threshold 50%": ("> 0.05", "> 0.5"),
    "half-open breaker ignored": ("(seatflow_circuit_breaker_state) > 0",
                                  "(seatflow_circuit_breaker_state) > 1"),
    "manual review threshold 40%": ("> 0.20", "> 0.40"),
    "latency threshold 10 s": ("[15m]))\n          ) > 5\n", "[15m]))\n          ) > 10\n"),
    "email failure threshold 50": ('"transient|gave_up"}[15m])) > 5', '"transient|gave_up"}[15m])) > 50'),
    "misnamed series": ("seatflow_assignment_latency_seconds_bucket",
                        "seatflow_assignment_latency_bucket"),
    "outcome label value not exported": ('{outcome="failed"}', '{outcome="failure"}'),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_broken_rule_fails_the_unit_tests(mutation: str, tmp_path: Path) -> None:
    old, new = MUTATIONS[mutation]
    rules = ALERTS.read_text()
    assert rules.count(old) == 1, f"mutation {mutation!r} no longer matches alerts.yml"
    (tmp_path / "alerts.yml").write_text(rules.replace(old, new))
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yml")
    assert promtool("check", "rules", "alerts.yml", cwd=tmp_path).returncode == 0
    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"promtool accepted the mutated rules:\n{output}"
    assert re.search(r"FAILED", output), output
