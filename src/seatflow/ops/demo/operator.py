"""The operator's part of the demo evening.

A booking the pipeline could not seat waits in manual review; the operator
looks at the floor, picks free tables to push together (`operator_tables`)
and seats it by running `seatflow review assign ... --force`, or rejects it
with `seatflow review reject` when the floor has nothing. The decision goes
through the CLI itself, printed as a person would type it (`run_cli`), so it
takes the same path, and obeys the same rules, as an operator's own.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text

from seatflow.domain.planning import BookingRequest, EngineConfig, Mobility, RestaurantSnapshot
from seatflow.domain.states import SETTLED

if TYPE_CHECKING:
    from seatflow.ops.demo.evening import Evening

OPERATOR_ACTOR = "demo-operator"
# Bounds the operator's search for tables to push together on a large floor.
MAX_OPERATOR_TABLES = 8
MAX_OPERATOR_CANDIDATES = 50_000
# What the Temporal SDK's rare crash at interpreter exit prints (tests/run.py
# guards the test runner against the same crash).
EXIT_CRASH_MARK = "Python runtime state: finalizing"


@dataclass
class CliStep:
    """A `seatflow` command the demo ran, as a person would type it, and its outcome."""

    command: str
    exit_code: int
    output: str
    booking_id: str
    party_size: int
    tables: list[str] = field(default_factory=list)  # the booking's tables afterwards
    state: str | None = None  # the booking's state afterwards
    # The process hit the Temporal SDK's rare crash at interpreter exit after
    # the command had finished (the state above is what counts then).
    crashed_at_exit: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "exit_code": self.exit_code, "output": self.output,
                "booking_id": self.booking_id, "party_size": self.party_size,
                "tables": self.tables, "state": self.state,
                "crashed_at_exit": self.crashed_at_exit}


def operator_tables(snapshot: RestaurantSnapshot, request: BookingRequest,
                    config: EngineConfig) -> tuple[str, ...] | None:
    """The tables an operator gives a party the pipeline could not seat: free
    movable tables of one zone that touch each other (or one free table) and
    hold the party. Sets that leave at most `config.max_overage` seats empty
    come first, then the fewest tables, then the fewest empty seats; a larger
    table than the rules allow (a couple at a free six-top on a full night)
    only when nothing else holds the party. Every candidate passes the forced
    manual-assignment check (`validate_plan` with the overrides `--force`
    allows), so the CLI will accept it. None when the floor has no such set."""
    from seatflow.engine.floor import Floor
    from seatflow.engine.validation import validate_plan

    floor = Floor(snapshot)
    free = {t for t in floor.free_tables(request.start, request.end, (request.booking_id,))
            if floor.tables[t].mobility == Mobility.MOVABLE or floor.tables[t].capacity
            >= request.party_size}  # a fixed table can seat a party alone, never joined
    party = request.party_size
    seen: set[frozenset[str]] = set()
    found: list[tuple[bool, int, int, tuple[str, ...]]] = []
    frontier = [frozenset([t]) for t in sorted(free)]
    while frontier and len(seen) < MAX_OPERATOR_CANDIDATES:
        grown: list[frozenset[str]] = []
        for tables in frontier:
            if tables in seen:
                continue
            seen.add(tables)
            seats = sum(floor.tables[t].capacity for t in tables)
            if seats >= party:
                empty = seats - party
                found.append((empty > config.max_overage, len(tables), empty,
                              tuple(sorted(tables))))
                continue  # adding tables only adds empty seats
            if len(tables) >= MAX_OPERATOR_TABLES:
                continue
            zone = floor.tables[next(iter(tables))].zone
            for table in tables:
                if floor.tables[table].mobility != Mobility.MOVABLE:
                    continue
                for near in floor.neighbours[table]:
                    if (near in free and near not in tables and floor.tables[near].zone == zone
                            and floor.tables[near].mobility == Mobility.MOVABLE):
                        grown.append(tables | {near})
        frontier = grown
    for _, _, _, plan in sorted(found):
        if validate_plan(snapshot, request, plan, config, allow_overage_override=True,
                         allow_zone_override=True, allow_adjacency_override=True) is None:
            return plan
    return None


async def operator_seats(ev: Evening, booking_id: str, party: int,
                          deadline: float) -> CliStep:
    """Wait until the party is in manual review (each failed attempt shown),
    then an operator decides (`_operator_decides`)."""
    from seatflow.service.bookings import booking_view

    console = ev.console
    shown = 0
    view = await booking_view(ev.engine, booking_id)
    with console.status(f"the party of {party} uses its automatic attempts..."):
        while view["assignment_state"] not in SETTLED and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            view = await booking_view(ev.engine, booking_id)
            for attempt in view["attempts"][shown:]:
                console.print(f"          attempt {attempt['attempt_no']}: {attempt['result']}"
                              f" - {attempt['reason'] or ''}")
            shown = len(view["attempts"])
    if view["assignment_state"] != "manual_review":
        console.print(f"          the party of {party} is {view['assignment_state']}; "
                      "no operator needed")
        return CliStep("", 0, "", booking_id, party, list(view["tables"]),
                       view["assignment_state"])
    console.print(f"          the party of {party} waits in manual review "
                  f"({view['last_reason'] or 'no plan'})")
    return await _operator_decides(ev, view, note=f"party of {party}: tables pushed together")


async def _operator_decides(ev: Evening, view: dict[str, Any], *, note: str) -> CliStep:
    """An operator looks at the floor for a booking in manual review: free
    tables (`operator_tables`) are assigned with `seatflow review assign --force`;
    when there are none, the booking is rejected with `seatflow review reject`
    (and the guest called), so no one is left waiting."""
    from seatflow.service.bookings import booking_view
    from seatflow.storage.restaurants import load_snapshot

    booking_id, party = view["booking_id"], int(view["party_size"])
    request = BookingRequest(
        booking_id=booking_id, party_size=party,
        start=datetime.fromisoformat(view["start"]),
        end=datetime.fromisoformat(view["occupied_until"]),
        zone_preference=view["zone_preference"])
    async with ev.engine.connect() as conn:
        snapshot = await load_snapshot(conn, ev.restaurant_id, request.start, request.end,
                                       exclude_booking=booking_id)
    tables = operator_tables(snapshot, request, ev.config)
    if tables is not None:
        args = ["review", "assign", booking_id, "--tables", ",".join(tables),
                "--actor", OPERATOR_ACTOR, "--force", "--note", note]
    else:
        local = request.start.astimezone(ev.tz)
        args = ["review", "reject", booking_id, "--actor", OPERATOR_ACTOR, "--reason",
                f"no free tables for a party of {party} at {local:%H:%M}; guest called"]
    command, code, output, crashed = await run_cli(ev, args, who="operator")
    after = await booking_view(ev.engine, booking_id)
    return CliStep(command, code, output, booking_id, party, list(after["tables"]),
                   after["assignment_state"], crashed)


async def operator_clears_queue(ev: Evening, booking_ids: list[str]) -> list[CliStep]:
    """Bookings the pipeline could not seat after all (a guest who booked a
    time another took in the same instant): the operator decides each."""
    from seatflow.service.bookings import booking_view

    steps = []
    for booking_id in booking_ids:
        view = await booking_view(ev.engine, booking_id)
        if view["assignment_state"] == "manual_review":
            steps.append(await _operator_decides(
                ev, view, note="booked in the same instant as another guest"))
    return steps


def _cli_argv() -> list[str]:
    """The `seatflow` command of this installation (its console script, or the
    same entry point through this interpreter)."""
    script = Path(sys.executable).with_name("seatflow")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c",
            "import sys; from seatflow.cli import main; sys.argv[0] = 'seatflow'; main()"]


async def run_cli(ev: Evening, args: list[str], *, who: str) -> tuple[str, int, str, bool]:
    """Run `seatflow ARGS` against the demo's stack, printing the command as a
    person would type it and what it answered: (command, exit code, output,
    whether the process crashed at interpreter exit after the command)."""
    command = shlex.join(["seatflow", *args])
    ev.console.print(f"[bold]{who:<9}[/] $ {command}")
    env = dict(os.environ)
    assert ev.stack.database_url and ev.stack.temporal_address
    env.update(DATABASE_URL=ev.stack.database_url, TEMPORAL_ADDRESS=ev.stack.temporal_address,
               TEMPORAL_NAMESPACE=ev.stack.namespace, SEATFLOW_LOG_FORMAT="console")
    process = await asyncio.create_subprocess_exec(
        *_cli_argv(), *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    output = out.decode(errors="replace").strip()
    code = process.returncode if process.returncode is not None else -1
    crashed = code < 0 and EXIT_CRASH_MARK in output
    if crashed:  # keep what the command said; the crash dump is noise to a person
        output = output[: output.index("Fatal Python error")].strip()
    for line in output.splitlines() or [""]:
        ev.console.print(Text(f"          {line}", style="" if code == 0 or crashed else "red"))
    if crashed:
        ev.console.print(f"[yellow]          (exit {code}: the Temporal SDK's rare crash at "
                         "interpreter exit, after the command finished)[/]")
    elif code != 0:
        ev.console.print(f"[red]          (exit {code})[/]")
    return command, code, output, crashed
