"""Bad input, everywhere a person or program can send it (issue 7).

One table of cases: the CLI (bookings, review, floor-plan imports), manual-review
decision payloads, and the environment (settings, flags, the worker and relay
processes). Each case must be refused with a clear message and the right exit
code (1 refused, 2 usage), with no traceback, and must change nothing in the
database.

CLI and process cases run as real processes against the session's PostgreSQL
and Temporal dev server: each CLI case a process forked from one that imported
the CLI (tests/cli_support.py), each `python -m` case an interpreter of its own.
They all run at once before the table is checked; the database is counted
before and after that batch, and again around every in-process case.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from seatflow.config import ConfigError, load_flags, load_settings
from seatflow.domain.review import InvalidDecision, parse_decision
from tests.cli_support import Done, seatflow_cli
from tests.support import fetch, import_plan

ROOT = Path(__file__).resolve().parents[2]
REFUSED, USAGE = 1, 2
RUN_ID = uuid.uuid4().hex[:8]
RESTAURANT = f"bad-input-{RUN_ID}"
NEW_RESTAURANT = f"bad-new-{RUN_ID}"
UNKNOWN_BOOKING = "7b0a3c1e-4a1e-4f7e-9a51-0d7f1f6c2b11"
# An evening inside dinner service, well within the booking horizon (365 days).
FUTURE_DAY = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
FUTURE = f"{FUTURE_DAY}T19:00"

COUNTED_TABLES = (
    "restaurants", "restaurant_services", "zones", "dining_tables", "table_adjacency",
    "bookings", "intake_outbox", "allocations", "booking_assignment_state_history",
    "email_outbox",
)
FLAG_VARIABLES = (
    "FEATURE_ASSIGNMENT_PIPELINE_V3", "FEATURE_ASSIGNMENT_PIPELINE_V3_SHADOW",
    "FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL", "FEATURE_ASSIGNMENT_PIPELINE_V3_ROLLOUT_PERCENT",
    "FEATURE_ASSIGNMENT_PIPELINE_V3_RESTAURANTS", "SEATFLOW_MAX_ATTEMPTS",
)


def base_plan(restaurant_id: str = RESTAURANT) -> dict[str, Any]:
    """A valid floor plan with lunch and dinner services (UTC)."""
    return {
        "restaurant": {
            "id": restaurant_id, "name": "Bad Input Bistro", "timezone": "UTC",
            "buffer_minutes": 5,
            "services": [
                {"name": "lunch", "start": "12:00", "end": "15:00",
                 "turn_times": [{"max_party": 4, "minutes": 75},
                                {"max_party": None, "minutes": 90}]},
                {"name": "dinner", "start": "17:00", "end": "23:00",
                 "turn_times": [{"max_party": 4, "minutes": 105},
                                {"max_party": None, "minutes": 120}]},
            ],
        },
        "zones": [{"id": "main", "name": "Main room"}, {"id": "patio", "name": "Patio"}],
        "tables": [
            {"id": "T1", "capacity": 2, "zone": "main"},
            {"id": "T2", "capacity": 4, "zone": "main"},
            {"id": "T3", "capacity": 4, "zone": "patio", "mobility": "fixed"},
        ],
        "adjacency": [["T1", "T2"]],
    }


def mutated(change: Callable[[dict[str, Any]], None],
            restaurant_id: str = RESTAURANT) -> dict[str, Any]:
    plan = copy.deepcopy(base_plan(restaurant_id))
    change(plan)
    return plan


def _drop_fields(p: dict[str, Any]) -> None:
    del p["restaurant"]["timezone"]
    del p["tables"][0]["capacity"]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(p: dict[str, Any]) -> None:
        node: Any = p
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        last = keys[-1]
        node[int(last) if last.isdigit() else last] = value
    return change


# name -> file content (dict as JSON, or raw text)
FLOOR_PLAN_FILES: dict[str, dict[str, Any] | str] = {
    "missing_fields": mutated(_drop_fields),
    "duplicate_table_ids": mutated(lambda p: p["tables"].append(
        {"id": "T2", "capacity": 6, "zone": "main"})),
    "adjacency_unknown_table": mutated(lambda p: p["adjacency"].append(["T1", "T99"])),
    "table_unknown_zone": mutated(_set("tables.2.zone", "rooftop")),
    "capacity_zero": mutated(_set("tables.0.capacity", 0)),
    "capacity_as_text": mutated(_set("tables.1.capacity", "4")),
    "max_below_min": mutated(lambda p: p["tables"][1].update(min_party=4, max_party=2)),
    "unknown_timezone": mutated(_set("restaurant.timezone", "Mars/Olympus_Mons")),
    "service_ends_before_start": mutated(_set("restaurant.services.0.end", "11:00")),
    "misspelt_field": mutated(_set("tables.0.capcity", 2)),
    "new_restaurant_with_duplicates": mutated(
        lambda p: p["tables"].append({"id": "T1", "capacity": 2, "zone": "main"}),
        NEW_RESTAURANT),
    "not_json": "{\"restaurant\": {\"id\": ",
    "json_array": "[1, 2, 3]",
    # Beyond the limits: refused before decoding or validating (exit 2).
    "deeply_nested": "[" * 100_000 + "]" * 100_000,
    "nested_in_a_field": mutated(_set("restaurant.name", [[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]])),
    "huge": json.dumps({**base_plan(), "padding": "x" * (2 * 1024 * 1024)}),
    "too_many_tables": mutated(lambda p: p["tables"].extend(
        {"id": f"X{i}", "capacity": 2, "zone": "main"} for i in range(2500))),
}


@dataclass(frozen=True)
class Case:
    """One bad input. `kind`: cli | process (subprocess), decision | settings | flags
    (in-process). `expect` are substrings the message must contain (case-insensitive)."""

    id: str
    kind: str
    expect: tuple[str, ...]
    args: tuple[str, ...] = ()
    code: int = REFUSED
    env: dict[str, str] = field(default_factory=dict)
    payload: Any = None
    xfail: str | None = None
    absent: tuple[str, ...] = ()  # substrings the output must never contain (secrets)


def cli(id: str, *args: str, code: int = REFUSED, expect: tuple[str, ...],
        env: dict[str, str] | None = None, xfail: str | None = None,
        absent: tuple[str, ...] = ()) -> Case:
    return Case(id, "cli", expect, args=args, code=code, env=env or {}, xfail=xfail,
                absent=absent)


def create(id: str, *options: str, code: int = REFUSED, expect: tuple[str, ...]) -> Case:
    defaults = {"--restaurant": RESTAURANT, "--party": "2", "--start": FUTURE,
                "--email": "ada@example.com"}
    given = dict(zip(options[::2], options[1::2], strict=True))
    merged = {**defaults, **given}
    args = [x for k, v in merged.items() if v is not None for x in (k, v)]
    return cli(id, "bookings", "create", *args, code=code, expect=expect)


def plan_import(name: str, *expect: str, code: int = REFUSED) -> Case:
    return cli(f"restaurants_import_{name}", "restaurants", "import", f"{{plans}}/{name}.json",
               expect=expect, code=code)


SECRET = "s3cret-pw-Zq7"  # a DATABASE_URL password that must never be printed


def database_url(id: str, url: str, *args: str, code: int, expect: tuple[str, ...]) -> Case:
    return cli(f"database_url_{id}", *args, code=code, expect=expect,
               env={"DATABASE_URL": url}, absent=(SECRET,))


def decision(id: str, payload: Any, *expect: str) -> Case:
    return Case(f"decision_{id}", "decision", expect, payload=payload)


def variable(kind: str, name: str, value: str, *expect: str) -> Case:
    return Case(f"{kind}_{name}={value}", kind, (name, *expect), code=USAGE, env={name: value})


def process(module: str, name: str, value: str) -> Case:
    return Case(f"python_-m_{module}_{name}={value}", "process", (name,),
                args=(sys.executable, "-m", module), code=USAGE, env={name: value})


CONFIG_NOT_CAUGHT = ("the CLI's main() lets ConfigError escape as a traceback (exit 1); "
                     "see the cli/__init__.py patch in the issue 7 report")

CASES: list[Case] = [
    # --- seatflow bookings create -------------------------------------------
    create("create_start_not_a_date", "--start", "next tuesday", expect=("ISO 8601",)),
    create("create_start_impossible_date", "--start", "2031-13-45T19:00", expect=("ISO 8601",)),
    create("create_start_in_the_past", "--start", "2020-01-07T19:00", expect=("in the past",)),
    create("create_start_outside_service", "--start", f"{FUTURE_DAY}T04:00",
           expect=("service",)),
    # --- dates at the ends of the calendar: the booking horizon, no traceback
    create("create_start_year_9999", "--start", "9999-12-31T19:30", code=USAGE,
           expect=("365 days ahead",)),
    create("create_start_year_9999_late", "--start", "9999-12-31T22:45", code=USAGE,
           expect=("365 days ahead",)),
    create("create_start_beyond_horizon", "--start",
           f"{(datetime.now(UTC) + timedelta(days=400)).date()}T19:00", code=USAGE,
           expect=("365 days ahead",)),
    cli("create_start_year_9999_required", "bookings", "create", "--restaurant", RESTAURANT,
        "--party", "2", "--start", "9999-12-31T19:30", "--require-availability", code=USAGE,
        expect=("365 days ahead",)),
    cli("availability_date_9999", "availability", "--restaurant", RESTAURANT, "--party", "2",
        "--date", "9999-12-31", code=USAGE, expect=("365 days ahead",)),
    cli("availability_date_year_one", "availability", "--restaurant", RESTAURANT,
        "--party", "2", "--date", "0001-01-01", code=USAGE, expect=("in the past",)),
    cli("availability_window_9999", "availability", "--restaurant", RESTAURANT, "--party", "2",
        "--from", "9999-12-31T18:00", "--to", "9999-12-31T23:59", code=USAGE,
        expect=("365 days ahead",)),
    cli("availability_window_year_one", "availability", "--restaurant", RESTAURANT,
        "--party", "2", "--from", "0001-01-01T00:00+05:00", "--to", "0001-01-01T12:00+05:00",
        code=USAGE, expect=("in the past",)),
    create("create_unknown_restaurant", "--restaurant", f"nowhere-{RUN_ID}",
           expect=("unknown restaurant",)),
    create("create_party_zero", "--party", "0", expect=("at least 1",)),
    create("create_party_negative", "--party", "-3", expect=("at least 1",)),
    create("create_party_1000", "--party", "1000", expect=("capacity",)),
    create("create_party_not_a_number", "--party", "four", code=USAGE, expect=("--party",)),
    create("create_email_without_at", "--email", "ada.example.com",
           expect=("not an email address",)),
    create("create_email_without_user", "--email", "@example.com",
           expect=("not an email address",)),
    create("create_email_list", "--email", "ada@example.com, victim@example.org",
           expect=("not an email address", "exactly one address")),
    create("create_email_semicolon_list", "--email", "ada@example.com;victim@example.org",
           expect=("exactly one address",)),
    create("create_email_header_injection", "--email", "ada@example.com\r\nBcc: v@example.org",
           expect=("line break",)),
    create("create_email_with_display_name", "--email", "Ada <ada@example.com>",
           expect=("bare address",)),
    create("create_email_too_long", "--email", "a" * 250 + "@example.com",
           expect=("longer than 254",)),
    create("create_name_too_long", "--name", "A" * 101, expect=("name", "at most 100")),
    create("create_name_with_line_break", "--name", "Ada\nBcc: v@example.org",
           expect=("name", "one line")),
    create("create_unknown_zone", "--zone", "rooftop", expect=("rooftop",)),
    create("create_missing_start", "--start", None,  # type: ignore[arg-type]
           code=USAGE, expect=("--start",)),
    # --- seatflow bookings show / wait --------------------------------------
    cli("show_unknown_booking", "bookings", "show", UNKNOWN_BOOKING, expect=(UNKNOWN_BOOKING,)),
    cli("show_not_a_uuid", "bookings", "show", "booking-42", code=USAGE,
        expect=("not a booking id",)),
    cli("wait_not_a_uuid", "bookings", "wait", "42", code=USAGE, expect=("not a booking id",)),
    cli("wait_negative_timeout", "bookings", "wait", UNKNOWN_BOOKING, "--timeout", "-1",
        code=USAGE, expect=("--timeout",)),
    cli("wait_timeout_nan", "bookings", "wait", UNKNOWN_BOOKING, "--timeout", "nan",
        code=USAGE, expect=("--timeout", "finite")),
    cli("wait_timeout_infinite", "bookings", "wait", UNKNOWN_BOOKING, "--timeout", "inf",
        code=USAGE, expect=("--timeout", "finite")),
    # --- durations that overflow a date -------------------------------------
    cli("report_since_before_year_one", "report", "--since", "99999999d", code=USAGE,
        expect=("--since", "year 1")),
    cli("report_until_before_year_one", "report", "--until", "9999999999w", code=USAGE,
        expect=("--until",)),
    cli("stuck_older_than_infinite", "bookings", "stuck", "--older-than", "infd", code=USAGE,
        expect=("--older-than", "finite")),
    cli("stuck_older_than_nan", "bookings", "stuck", "--older-than", "nanm", code=USAGE,
        expect=("--older-than",)),
    cli("stuck_older_than_before_year_one", "bookings", "stuck", "--older-than", "1e300d",
        code=USAGE, expect=("--older-than", "year 1")),
    # --- seatflow review ------------------------------------------------------
    cli("review_assign_malformed_table_list", "review", "assign", UNKNOWN_BOOKING,
        "--tables", "T1,,T2", "--actor", "ops", code=USAGE, expect=("--tables",)),
    cli("review_assign_empty_table_list", "review", "assign", UNKNOWN_BOOKING,
        "--tables", " ", "--actor", "ops", code=USAGE, expect=("--tables",)),
    cli("review_assign_unknown_booking", "review", "assign", UNKNOWN_BOOKING,
        "--tables", "T1", "--actor", "ops", expect=(UNKNOWN_BOOKING, "not found")),
    cli("review_reject_empty_reason", "review", "reject", UNKNOWN_BOOKING, "--reason", "  ",
        "--actor", "ops", code=USAGE, expect=("--reason",)),
    cli("review_retry_not_a_uuid", "review", "retry", "abc", "--actor", "ops", code=USAGE,
        expect=("not a booking id",)),
    # --- seatflow restaurants import ----------------------------------------
    plan_import("missing_fields", "restaurant.timezone", "tables[0].capacity"),
    plan_import("duplicate_table_ids", "T2"),
    plan_import("adjacency_unknown_table", "T99"),
    plan_import("table_unknown_zone", "rooftop"),
    plan_import("capacity_zero", "tables[0].capacity"),
    plan_import("capacity_as_text", "tables[1].capacity"),
    plan_import("max_below_min", "tables[1].max_party"),
    plan_import("unknown_timezone", "Mars/Olympus_Mons"),
    plan_import("service_ends_before_start", "services[0].end"),
    plan_import("misspelt_field", "capcity"),
    plan_import("new_restaurant_with_duplicates", "T1"),
    plan_import("not_json", "not valid JSON"),
    plan_import("json_array", "JSON object"),
    cli("restaurants_import_missing_file", "restaurants", "import", "{plans}/absent.json",
        expect=("not found",)),
    plan_import("deeply_nested", "nested deeper", code=USAGE),
    plan_import("nested_in_a_field", "nested deeper", code=USAGE),
    plan_import("huge", "limit", code=USAGE),
    plan_import("too_many_tables", "tables", "2503 items", "limit of 2000", code=USAGE),
    cli("restaurants_import_a_directory", "restaurants", "import", "{plans}", code=USAGE,
        expect=("is a directory",)),
    cli("restaurants_import_dev_zero", "restaurants", "import", "/dev/zero", code=USAGE,
        expect=("not a regular file",)),
    # --- DATABASE_URL: refused clearly, its password never printed ----------
    database_url("not_postgres", f"mysql://ops:{SECRET}@db.internal/seatflow",
                 "bookings", "show", UNKNOWN_BOOKING, code=USAGE,
                 expect=("DATABASE_URL", "PostgreSQL URL", "ops:***@")),
    database_url("bad_port", f"postgresql://ops:{SECRET}@127.0.0.1:notaport/seatflow",
                 "report", code=USAGE, expect=("DATABASE_URL", "notaport")),
    database_url("malformed_import", f"postgresql://ops:{SECRET}@[::1/seatflow",
                 "restaurants", "list", code=USAGE, expect=("DATABASE_URL",)),
    database_url("unreachable", f"postgresql://ops:{SECRET}@127.0.0.1:1/seatflow",
                 "bookings", "show", UNKNOWN_BOOKING, code=REFUSED,
                 expect=("database", "unreachable")),
    database_url("unreachable_report", f"postgresql://ops:{SECRET}@127.0.0.1:1/seatflow",
                 "report", code=REFUSED, expect=("database",)),
    # --- the CLI with a bad environment -------------------------------------
    cli("cli_env_SEATFLOW_MAX_ATTEMPTS=0", "bookings", "show", UNKNOWN_BOOKING, code=USAGE,
        env={"SEATFLOW_MAX_ATTEMPTS": "0"}, expect=("SEATFLOW_MAX_ATTEMPTS",)),
    # --- manual-review decisions (Update validator and Signal handler) ------
    decision("not_an_object", ["assign", "T1"], "JSON object"),
    decision("text_payload", "assign T1", "JSON object"),
    decision("unknown_action", {"action": "seat", "actor": "ops"}, "action must be one of"),
    decision("missing_action", {"actor": "ops", "table_ids": ["T1"]}, "action must be one of"),
    decision("action_wrong_type", {"action": 1, "actor": "ops"}, "action must be one of"),
    decision("extra_field", {"action": "retry", "actor": "ops", "tables": ["T1"]},
             "unexpected field", "tables"),
    decision("missing_actor", {"action": "retry"}, "actor is required"),
    decision("blank_actor", {"action": "reject", "actor": "  ", "reason": "x"},
             "actor is required"),
    decision("actor_wrong_type", {"action": "retry", "actor": 7}, "actor is required"),
    decision("empty_table_list", {"action": "assign", "actor": "ops", "table_ids": []},
             "non-empty list"),
    decision("tables_as_text", {"action": "assign", "actor": "ops", "table_ids": "T1,T2"},
             "non-empty list"),
    decision("tables_as_numbers", {"action": "assign", "actor": "ops", "table_ids": [1, 2]},
             "as strings"),
    decision("table_twice", {"action": "assign", "actor": "ops", "table_ids": ["T1", "T1"]},
             "twice"),
    decision("reject_without_reason", {"action": "reject", "actor": "ops"}, "needs a reason"),
    decision("note_wrong_type", {"action": "retry", "actor": "ops", "note": 5}, "note"),
    decision("force_not_a_boolean", {"action": "assign", "actor": "ops", "table_ids": ["T1"],
                                     "force": "yes"}, "force must be true or false"),
    decision("force_on_retry", {"action": "retry", "actor": "ops", "force": True},
             "unexpected field", "force"),
    # --- environment variables ------------------------------------------------
    variable("flags", "FEATURE_ASSIGNMENT_PIPELINE_V3", "maybe", "boolean"),
    variable("flags", "FEATURE_ASSIGNMENT_PIPELINE_V3_SHADOW", "sometimes", "boolean"),
    variable("flags", "FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL", "0", "greater than"),
    variable("flags", "FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL", "21", "less than"),
    variable("flags", "FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL", "three", "integer"),
    variable("flags", "FEATURE_ASSIGNMENT_PIPELINE_V3_ROLLOUT_PERCENT", "150", "less than"),
    variable("flags", "FEATURE_ASSIGNMENT_PIPELINE_V3_ROLLOUT_PERCENT", "-1", "greater than"),
    variable("settings", "SEATFLOW_MAX_ATTEMPTS", "0", "greater than"),
    variable("settings", "SEATFLOW_RETRY_BASE_SECONDS", "-1", "greater than"),
    variable("settings", "SEATFLOW_ADJACENCY_MODE", "diagonal", "connected"),
    variable("settings", "SEATFLOW_MAIL_TRANSPORT", "pigeon", "file or smtp"),
    variable("settings", "SEATFLOW_LEGACY_DELAYS_SECONDS", "5,soon", "comma list"),
    process("worker", "FEATURE_ASSIGNMENT_PIPELINE_V3", "maybe"),
    process("worker", "FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL", "0"),
    process("worker", "FEATURE_ASSIGNMENT_PIPELINE_V3_ROLLOUT_PERCENT", "150"),
    process("worker", "SEATFLOW_MAX_ATTEMPTS", "0"),
    process("seatflow.intake.relay", "SEATFLOW_MAX_ATTEMPTS", "0"),
]


@dataclass(frozen=True)
class Outcome:
    code: int
    output: str


# The CLI and process cases' outcomes by case id, and the database counts
# before and after the batch.
Outcomes = tuple[dict[str, Outcome], dict[str, Any], dict[str, Any]]


async def db_counts(engine: Any) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for table in COUNTED_TABLES:
        counts[table] = (await fetch(engine, f"SELECT count(*) FROM {table}"))[0][0]
    # The restaurant the bad files would overwrite, row by row.
    counts["plan"] = (await fetch(
        engine,
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM dining_tables t "
        "WHERE restaurant_id = :r", r=RESTAURANT))[0][0]
    return counts


@pytest.fixture(scope="module")
def plans_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="seatflow-bad-plans-"))
    for name, content in FLOOR_PLAN_FILES.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (path / f"{name}.json").write_text(text)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def clean_env(pg_url: str, temporal_address: str, namespace: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FLAG_VARIABLES}
    env.update(DATABASE_URL=pg_url, TEMPORAL_ADDRESS=temporal_address,
               TEMPORAL_NAMESPACE=namespace, SEATFLOW_TASK_QUEUE=f"bad-input-{RUN_ID}")
    return env


@pytest_asyncio.fixture(scope="module")
async def subprocess_outcomes(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, pg_url: str, plans_dir: Path,
) -> Outcomes:
    """Run every CLI and process case at once (the CLI's forked from `seatflow_cli`,
    the `python -m` ones as processes of their own); the database is counted around
    the batch."""
    import asyncio

    await import_plan(db_engine, base_plan())
    env = clean_env(pg_url, dev_env.client.service_client.config.target_host,
                    dev_env.client.namespace)

    def run(case: Case) -> Done:
        # An empty working directory: no .env file from the checkout leaks in.
        done = subprocess.run(case.args, env={**env, **case.env}, cwd=plans_dir,
                              capture_output=True, text=True, timeout=120, check=False)
        return Done(done.returncode, done.stdout, done.stderr)

    before = await db_counts(db_engine)
    batch = [c for c in CASES if c.kind in ("cli", "process")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures: list[Future[Done]] = [
            seatflow_cli().submit([a.replace("{plans}", str(plans_dir)) for a in case.args],
                                  {**env, **case.env}, cwd=plans_dir)
            if case.kind == "cli" else pool.submit(run, case)
            for case in batch
        ]
        done = await asyncio.wait_for(
            asyncio.gather(*(asyncio.wrap_future(f) for f in futures)), 300)
    results = [Outcome(d.returncode, d.stdout + d.stderr) for d in done]
    after = await db_counts(db_engine)
    return {case.id: outcome for case, outcome in zip(batch, results, strict=True)}, before, after


def in_process(case: Case, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    if case.kind == "decision":
        try:
            parse_decision(case.payload)
        except InvalidDecision as exc:
            return Outcome(REFUSED, str(exc))
        return Outcome(0, "accepted")
    for name in FLAG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tempfile.gettempdir())  # no .env file from the checkout
    loader = load_flags if case.kind == "flags" else load_settings
    try:
        loader()
    except ConfigError as exc:
        return Outcome(USAGE, str(exc))
    return Outcome(0, "accepted")


def test_the_table_has_at_least_thirty_cases_of_every_kind() -> None:
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 30
    assert kinds == {"cli", "process", "decision", "flags", "settings"}
    assert len({c.id for c in CASES}) == len(CASES), "case ids are unique"


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)]
                  if c.xfail else []) for c in CASES],
)
async def test_bad_input_is_refused_clearly_and_changes_nothing(
    case: Case, subprocess_outcomes: Outcomes, db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if case.kind in ("cli", "process"):
        outcomes, before, after = subprocess_outcomes
        outcome = outcomes[case.id]
    else:
        before = await db_counts(db_engine)
        outcome = in_process(case, monkeypatch)
        after = await db_counts(db_engine)
    assert outcome.code == case.code, f"exit {outcome.code}, wanted {case.code}: {outcome.output}"
    assert "Traceback" not in outcome.output, outcome.output
    for secret in case.absent:
        assert secret not in outcome.output, f"{secret!r} printed: {outcome.output}"
    message = outcome.output.lower()
    for needle in case.expect:
        assert needle.lower() in message, f"{needle!r} not in message: {outcome.output}"
    assert after == before, "the database changed"
