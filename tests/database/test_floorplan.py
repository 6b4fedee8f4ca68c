"""Floor plans: validation names the bad field, import is all or nothing,
re-import updates in place with stable table ids, and the CLI exits right."""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.floorplan import FloorPlan, FloorPlanError, parse_floorplan
from seatflow.floorplan_file import load_floorplan
from seatflow.storage.db import driver
from seatflow.storage.floorplans import export_floorplan, import_floorplan, list_restaurants
from seatflow.storage.restaurants import load_attempt_inputs, load_snapshot, snapshot_from_json
from seatflow.storage.schema import (
    DiningTable,
    Restaurant,
    Service,
    TableAdjacency,
    TurnTime,
    Zone,
)
from tests.cli_support import Done, seatflow_cli
from tests.support import insert_raw_booking

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "floorplans"


def example(name: str, restaurant_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    data["restaurant"]["id"] = restaurant_id
    return data


def write(tmp_path: Path, data: Any, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


async def row_counts(engine: AsyncEngine, restaurant_id: str) -> dict[str, int]:
    async with engine.connect() as conn:

        async def count(stmt: Any) -> int:
            return int((await conn.execute(stmt)).scalar_one())

        return {
            "restaurants": await count(
                select(func.count()).select_from(Restaurant).where(Restaurant.id == restaurant_id)
            ),
            "services": await count(
                select(func.count())
                .select_from(Service)
                .where(Service.restaurant_id == restaurant_id)
            ),
            "zones": await count(
                select(func.count()).select_from(Zone).where(Zone.restaurant_id == restaurant_id)
            ),
            "tables": await count(
                select(func.count())
                .select_from(DiningTable)
                .where(DiningTable.restaurant_id == restaurant_id)
            ),
            "edges": await count(
                select(func.count())
                .select_from(TableAdjacency)
                .where(TableAdjacency.restaurant_id == restaurant_id)
            ),
        }


async def table_ids(engine: AsyncEngine, restaurant_id: str) -> dict[str, tuple[int, bool]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(DiningTable.code, DiningTable.id, DiningTable.active).where(
                DiningTable.restaurant_id == restaurant_id
            )
        )
        return {code: (id_, active) for code, id_, active in rows}


def normalized(plan: FloorPlan | None) -> FloorPlan | None:
    """The plan in the canonical order in which it is stored and exported:
    zones by id, adjacency as sorted pairs (tables keep the file's order)."""
    if plan is None:
        return None
    return plan.model_copy(
        update={
            "zones": sorted(plan.zones, key=lambda zone: zone.id),
            "adjacency": [list(edge) for edge in plan.edges],
            "equivalent_zones": plan.zone_groups,
        }
    )


# ------------------------------------------------------------ the shipped examples


def test_harbour_kitchen_is_a_realistic_forty_table_restaurant() -> None:
    plan = load_floorplan(EXAMPLES / "harbour-kitchen.json")
    assert plan.restaurant.id == "harbour-kitchen"
    assert plan.restaurant.timezone == "Europe/London"
    assert plan.restaurant.buffer_minutes == 5
    assert plan.promises_tables is False
    assert len(plan.tables) == 40
    assert 140 <= plan.total_capacity <= 150
    assert {t.capacity for t in plan.tables} >= {2, 4, 6, 8}
    assert len({t.zone for t in plan.tables}) >= 4
    assert any(t.mobility == "fixed" for t in plan.tables)
    # the window alcove is part of the main room to a guest: re-packing may move between them
    assert plan.zone_groups == [["main", "window"]]
    assert [
        (s.name, s.start.isoformat("minutes"), s.end.isoformat("minutes"))
        for s in plan.restaurant.services
    ] == [("lunch", "12:00", "15:00"), ("dinner", "17:00", "23:00")]
    lunch, dinner = plan.restaurant.services
    assert [lunch.turn_minutes(p) for p in (2, 4, 6, 9)] == [60, 75, 85, 90]
    assert [dinner.turn_minutes(p) for p in (1, 3, 5)] == [90, 105, 120]


def test_harbour_kitchen_seats_parties_of_five_to_twelve_by_combining_adjacent_movable_tables() -> (
    None
):
    plan = load_floorplan(EXAMPLES / "harbour-kitchen.json")
    by_id = {t.id: t for t in plan.tables}
    neighbours: dict[str, set[str]] = {}
    for a, b in plan.edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    # Best capacity of up to three connected movable tables within one zone.
    best = 0
    for a in by_id:
        for b in neighbours.get(a, ()):
            for c in neighbours.get(a, set()) | neighbours.get(b, set()):
                group = {a, b, c}
                tables = [by_id[x] for x in group]
                if (
                    all(t.mobility == "movable" for t in tables)
                    and len({t.zone for t in tables}) == 1
                ):
                    best = max(best, sum(t.capacity for t in tables))
    assert best >= 12


def test_small_bistro_has_one_zone_and_adjacent_movable_two_and_four_tops() -> None:
    plan = load_floorplan(EXAMPLES / "small-bistro.json")
    assert len(plan.zones) == 1
    assert 8 <= len(plan.tables) <= 12
    movable = {t.id: t.capacity for t in plan.tables if t.mobility == "movable"}
    assert any(movable.get(a) == movable.get(b) == 4 for a, b in plan.edges)
    assert any(movable.get(a) == movable.get(b) == 2 for a, b in plan.edges)


@pytest.mark.parametrize("name", ["harbour-kitchen", "small-bistro"])
async def test_shipped_example_imports(db_engine: AsyncEngine, unique_id: str, name: str) -> None:
    rid = f"{name}-{unique_id}"
    plan = parse_floorplan(example(name, rid))
    summary = await import_floorplan(db_engine, plan)
    assert summary.restaurant_created
    assert summary.tables_created == len(plan.tables)
    assert summary.edges == len(plan.edges)
    counts = await row_counts(db_engine, rid)
    assert counts == {
        "restaurants": 1,
        "services": 2,
        "zones": len(plan.zones),
        "tables": len(plan.tables),
        "edges": len(plan.edges),
    }
    async with db_engine.connect() as conn:
        total = (
            await conn.execute(select(Restaurant.total_capacity).where(Restaurant.id == rid))
        ).scalar_one()
        bands = (
            await conn.execute(
                select(func.count())
                .select_from(TurnTime)
                .join(Service)
                .where(Service.restaurant_id == rid)
            )
        ).scalar_one()
    assert total == plan.total_capacity
    assert bands == sum(len(s.turn_times) for s in plan.restaurant.services)
    assert normalized(await export_floorplan(db_engine, rid)) == normalized(plan)
    assert rid in {r.id for r in await list_restaurants(db_engine)}


async def test_the_policy_reads_back_every_service_and_turn_band(
        db_engine: AsyncEngine, unique_id: str) -> None:
    """load_policy reads services and their bands in one statement (issue 27):
    the same services, in start order, each band in order, the open-ended
    (null) band last; an unknown restaurant has none."""
    from seatflow.storage.restaurants import load_policy

    rid = f"harbour-kitchen-{unique_id}"
    plan = parse_floorplan(example("harbour-kitchen", rid))
    await import_floorplan(db_engine, plan)
    async with db_engine.connect() as conn:
        policy = await load_policy(conn, rid)
        missing = await load_policy(conn, f"nowhere-{unique_id}")
    assert missing is None
    assert policy is not None and policy.id == rid and policy.name == plan.restaurant.name
    wanted = sorted(plan.restaurant.services, key=lambda s: s.start)
    assert [(s.name, s.start, s.end) for s in policy.services] == [
        (s.name, s.start, s.end) for s in wanted]
    assert [[(b.max_party, b.minutes) for b in s.turn_times] for s in policy.services] == [
        [(b.max_party, b.minutes) for b in s.turn_times] for s in wanted]
    assert any(b.max_party is None for s in policy.services for b in s.turn_times)


# ------------------------------------------------------------ bad files


def _set(data: dict[str, Any], path: list[Any], value: Any) -> None:
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _missing_capacity(d: dict[str, Any]) -> None:
    del d["tables"][2]["capacity"]


def _duplicate_table(d: dict[str, Any]) -> None:
    d["tables"][5]["id"] = d["tables"][1]["id"]


def _unknown_adjacency(d: dict[str, Any]) -> None:
    d["adjacency"].append(["S1", "T99"])


def _self_edge(d: dict[str, Any]) -> None:
    d["adjacency"].append(["S2", "S2"])


def _unknown_field(d: dict[str, Any]) -> None:
    d["tables"][0]["capactiy"] = 2


def _duplicate_zone(d: dict[str, Any]) -> None:
    d["zones"].append({"id": "main", "name": "Again"})


def _duplicate_service(d: dict[str, Any]) -> None:
    d["restaurant"]["services"][1]["name"] = "lunch"


def _null_band_not_last(d: dict[str, Any]) -> None:
    d["restaurant"]["services"][0]["turn_times"][1]["max_party"] = None


def _bands_descending(d: dict[str, Any]) -> None:
    d["restaurant"]["services"][1]["turn_times"][1]["max_party"] = 2


BAD_FILES = [
    ("missing field", _missing_capacity, "tables[2].capacity: is required"),
    (
        "capacity 0",
        lambda d: _set(d, ["tables", 3, "capacity"], 0),
        "tables[3].capacity: must be greater than 0",
    ),
    ("duplicate table ids", _duplicate_table, "tables[5].id: duplicate table id 'S2'"),
    ("adjacency to unknown table", _unknown_adjacency, "adjacency[6][1]: unknown table 'T99'"),
    ("self edge", _self_edge, "adjacency[6]: table 'S2' cannot be adjacent to itself"),
    (
        "table in unknown zone",
        lambda d: _set(d, ["tables", 4, "zone"], "cellar"),
        "tables[4].zone: unknown zone 'cellar'",
    ),
    (
        "bad timezone",
        lambda d: _set(d, ["restaurant", "timezone"], "Europe/Atlantis"),
        "restaurant.timezone: unknown IANA time zone 'Europe/Atlantis'",
    ),
    (
        "max_party < min_party",
        lambda d: _set(d, ["tables", 8, "max_party"], 1),
        "tables[8].max_party: must be null or >= min_party (3)",
    ),
    (
        "max_party > capacity",
        lambda d: _set(d, ["tables", 4, "max_party"], 6),
        "tables[4].max_party: must not exceed capacity (4)",
    ),
    (
        "unknown field",
        _unknown_field,
        "tables[0].capactiy: unknown field (did you mean 'capacity'?)",
    ),
    (
        "bad restaurant id",
        lambda d: _set(d, ["restaurant", "id"], "Small Bistro"),
        "restaurant.id: 'Small Bistro' is not a valid id",
    ),
    (
        "bad mobility",
        lambda d: _set(d, ["tables", 1, "mobility"], "wheels"),
        "tables[1].mobility: must be one of 'movable' or 'fixed', got 'wheels'",
    ),
    (
        "capacity as text",
        lambda d: _set(d, ["tables", 1, "capacity"], "4"),
        "tables[1].capacity: must be a valid integer",
    ),
    (
        "bad service time",
        lambda d: _set(d, ["restaurant", "services", 0, "start"], "noon"),
        'restaurant.services[0].start: must be a local time "HH:MM"',
    ),
    (
        "service ends before it starts",
        lambda d: _set(d, ["restaurant", "services", 0, "end"], "11:00"),
        "restaurant.services[0].end: must be after start (12:00)",
    ),
    ("duplicate zone ids", _duplicate_zone, "zones[1].id: duplicate zone id 'main'"),
    (
        "duplicate service names",
        _duplicate_service,
        "restaurant.services[1].name: duplicate service name 'lunch'",
    ),
    (
        "turn time minutes 0",
        lambda d: _set(d, ["restaurant", "services", 0, "turn_times", 0, "minutes"], 0),
        "restaurant.services[0].turn_times[0].minutes: must be greater than 0",
    ),
    (
        "null band not last",
        _null_band_not_last,
        "restaurant.services[0].turn_times[1].max_party: null (any larger party) must be the last",
    ),
    (
        "bands not ascending",
        _bands_descending,
        "restaurant.services[1].turn_times[1].max_party: must be greater than the previous band's (2)",
    ),
    ("no tables", lambda d: _set(d, ["tables"], []), "tables: "),
]


@pytest.mark.parametrize(("case", "break_it", "expected"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
async def test_bad_file_names_the_field_and_imports_nothing(
    db_engine: AsyncEngine,
    unique_id: str,
    tmp_path: Path,
    case: str,
    break_it: Any,
    expected: str,
) -> None:
    rid = f"bad-{unique_id}"
    data = example("small-bistro", rid)
    break_it(data)
    with pytest.raises(FloorPlanError) as caught:
        load_floorplan(write(tmp_path, data))
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems
    assert expected.split(":")[0] in str(caught.value)
    assert await row_counts(db_engine, rid) == dict.fromkeys(
        ["restaurants", "services", "zones", "tables", "edges"], 0
    )


def test_every_problem_in_a_file_is_reported_at_once(unique_id: str) -> None:
    data = example("small-bistro", unique_id)
    data["tables"][1]["capacity"] = 0
    data["tables"][6]["category"] = "kitchen"
    data["restaurant"]["timezone"] = "Mars/Olympus"
    data["tables"][2]["zone"] = "cellar"
    with pytest.raises(FloorPlanError) as caught:
        parse_floorplan(data)
    fields = [p.split(":")[0] for p in caught.value.problems]
    assert fields == [
        "restaurant.timezone",
        "tables[1].capacity",
        "tables[6].category",
        "tables[2].zone",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '{"restaurant": {"id": "x",\n  "name": }',
            "(file): not valid JSON: Expecting value at line 2 column 11",
        ),
        ("[1, 2]", "(file): must be a JSON object"),
        ('{"zones": [], "zones": []}', "(file): not valid JSON: duplicate key 'zones'"),
        ("", "(file): not valid JSON"),
    ],
    ids=["syntax error", "not an object", "duplicate key", "empty"],
)
def test_file_that_is_not_a_json_floor_plan_is_refused(
    tmp_path: Path, content: str, expected: str
) -> None:
    with pytest.raises(FloorPlanError) as caught:
        load_floorplan(write(tmp_path, content))
    assert caught.value.problems[0].startswith(expected), caught.value.problems


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FloorPlanError, match="not found"):
        load_floorplan(tmp_path / "nope.json")


def test_optional_fields_take_their_documented_defaults(unique_id: str) -> None:
    data = example("small-bistro", unique_id)
    del data["restaurant"]["buffer_minutes"]
    data["tables"] = [{"id": "T1", "capacity": 4, "zone": "main"}]
    data["adjacency"] = []
    plan = parse_floorplan(data)
    table = plan.tables[0]
    assert plan.restaurant.buffer_minutes == 5
    assert plan.promises_tables is False
    assert (
        table.min_party,
        table.max_party,
        table.mobility,
        table.category,
        table.active,
        table.status,
    ) == (1, None, "movable", "dining", True, "available")
    assert plan.zones[0].active is True


def test_duplicate_edges_in_either_orientation_collapse(unique_id: str) -> None:
    data = example("small-bistro", unique_id)
    data["adjacency"] = [["S1", "S2"], ["S2", "S1"], ["S1", "S2"], ["S3", "S2"]]
    assert parse_floorplan(data).edges == [("S1", "S2"), ("S2", "S3")]


# ------------------------------------------------------------ re-import


async def test_reimporting_the_same_file_changes_nothing(
    db_engine: AsyncEngine, unique_id: str
) -> None:
    rid = f"again-{unique_id}"
    plan = parse_floorplan(example("harbour-kitchen", rid))
    await import_floorplan(db_engine, plan)
    before_ids = await table_ids(db_engine, rid)
    before_counts = await row_counts(db_engine, rid)
    summary = await import_floorplan(db_engine, plan)
    assert not summary.restaurant_created
    assert (
        summary.tables_created,
        summary.tables_updated,
        summary.tables_deactivated,
        summary.tables_unchanged,
    ) == (0, 0, 0, 40)
    assert await table_ids(db_engine, rid) == before_ids
    assert await row_counts(db_engine, rid) == before_counts
    assert normalized(await export_floorplan(db_engine, rid)) == normalized(plan)


async def test_promises_tables_is_stored_on_the_restaurant_and_exported(
    db_engine: AsyncEngine, unique_id: str
) -> None:
    rid = f"promise-{unique_id}"
    data = example("small-bistro", rid)

    async def stored() -> bool:
        async with db_engine.connect() as conn:
            return bool((await conn.execute(
                select(Restaurant.promises_tables).where(Restaurant.id == rid))).scalar_one())

    await import_floorplan(db_engine, parse_floorplan(data))
    assert await stored() is False
    data["promises_tables"] = True
    promising = parse_floorplan(data)
    await import_floorplan(db_engine, promising)
    assert await stored() is True
    exported = await export_floorplan(db_engine, rid)
    assert exported is not None and exported.promises_tables is True
    assert normalized(exported) == normalized(promising)
    data["promises_tables"] = "yes"
    with pytest.raises(FloorPlanError, match="promises_tables"):
        parse_floorplan(data)


async def test_equivalent_zones_are_stored_exported_and_reach_every_snapshot(
    db_engine: AsyncEngine, unique_id: str
) -> None:
    """The plan's `equivalent_zones` is kept on the restaurant, exported as
    imported, replaced by a re-import, and carried by both snapshot reads
    (`load_snapshot`, the attempt's one-statement read) as `zone_groups`."""
    rid = f"equiv-{unique_id}"
    data = example("harbour-kitchen", rid)
    data["equivalent_zones"] = [["window", "main"]]
    plan = parse_floorplan(data)
    await import_floorplan(db_engine, plan)
    exported = await export_floorplan(db_engine, rid)
    assert exported is not None and exported.equivalent_zones == [["main", "window"]]
    assert normalized(exported) == normalized(plan)
    start = datetime(2031, 3, 20, 19, tzinfo=UTC)
    booking = await insert_raw_booking(
        db_engine, restaurant_id=rid, party_size=2, start=start,
        end=start + timedelta(minutes=90), occupied_until=start + timedelta(minutes=95),
    )

    async def snapshots() -> list[tuple[tuple[str, ...], ...]]:
        async with db_engine.connect() as conn:
            loaded = await load_snapshot(conn, rid, start, start + timedelta(hours=2))
            row = await load_attempt_inputs(await driver(conn), booking, max_parallel=4)
        return [loaded.zone_groups, snapshot_from_json(rid, row).zone_groups]

    assert await snapshots() == [(("main", "window"),)] * 2
    data["equivalent_zones"] = [["terrace", "bar"], ["private", "window", "main"]]
    await import_floorplan(db_engine, parse_floorplan(data))
    assert await snapshots() == [(("bar", "terrace"), ("main", "private", "window"))] * 2
    del data["equivalent_zones"]
    await import_floorplan(db_engine, parse_floorplan(data))
    assert await snapshots() == [()] * 2
    data["equivalent_zones"] = [["main", "cellar"]]
    with pytest.raises(FloorPlanError, match=r"equivalent_zones\[0\]\[1\]: unknown zone 'cellar'"):
        parse_floorplan(data)


async def test_reimport_updates_in_place_keeps_ids_and_deactivates_missing_tables(
    db_engine: AsyncEngine, unique_id: str
) -> None:
    rid = f"edit-{unique_id}"
    original = example("small-bistro", rid)
    await import_floorplan(db_engine, parse_floorplan(original))
    before = await table_ids(db_engine, rid)

    edited = copy.deepcopy(original)
    edited["restaurant"]["name"] = "Small Bistro (refurbished)"
    edited["restaurant"]["buffer_minutes"] = 10
    edited["zones"].append({"id": "patio", "name": "Patio"})
    edited["tables"][4]["capacity"] = 6  # S5 grows
    edited["tables"][5]["zone"] = "patio"  # S6 moves outside
    edited["tables"] = [t for t in edited["tables"] if t["id"] != "S10"]
    edited["tables"].append({"id": "S11", "capacity": 4, "zone": "patio"})
    edited["adjacency"] = [["S1", "S2"], ["S6", "S11"]]
    edited["restaurant"]["services"] = edited["restaurant"]["services"][1:]
    summary = await import_floorplan(db_engine, parse_floorplan(edited))

    assert (
        summary.tables_created,
        summary.tables_updated,
        summary.tables_unchanged,
        summary.tables_deactivated,
        summary.edges,
    ) == (1, 2, 7, 1, 2)
    after = await table_ids(db_engine, rid)
    assert {code: id_ for code, (id_, _) in after.items() if code in before} == {
        code: id_ for code, (id_, _) in before.items()
    }
    assert after["S10"][1] is False and after["S11"][1] is True
    stored = await export_floorplan(db_engine, rid)
    assert stored is not None
    assert stored.restaurant.name == "Small Bistro (refurbished)"
    assert stored.restaurant.buffer_minutes == 10
    assert [s.name for s in stored.restaurant.services] == ["dinner"]
    assert stored.edges == [("S1", "S2"), ("S11", "S6")]
    by_id = {t.id: t for t in stored.tables}
    assert by_id["S5"].capacity == 6 and by_id["S6"].zone == "patio"
    async with db_engine.connect() as conn:
        total = (
            await conn.execute(select(Restaurant.total_capacity).where(Restaurant.id == rid))
        ).scalar_one()
    assert total == 32 + 2 + 4 - 2  # S5 +2, S11 +4, S10 -2

    # Bringing the table back reactivates the same row.
    summary = await import_floorplan(db_engine, parse_floorplan(original))
    assert summary.tables_created == 0 and summary.tables_deactivated == 1  # S11
    restored = await table_ids(db_engine, rid)
    assert restored["S10"] == (before["S10"][0], True)


async def test_import_is_all_or_nothing_when_the_database_refuses(
    db_engine: AsyncEngine, unique_id: str
) -> None:
    rid = f"atomic-{unique_id}"
    original = example("small-bistro", rid)
    await import_floorplan(db_engine, parse_floorplan(original))
    before = await export_floorplan(db_engine, rid)

    # A valid file whose write fails halfway: a trigger refuses one table.
    edited = copy.deepcopy(original)
    edited["restaurant"]["name"] = "Should not stick"
    edited["tables"].append({"id": "BOOM", "capacity": 2, "zone": "main"})
    fn, trigger = f"refuse_boom_{unique_id}", f"refuse_boom_{unique_id}"
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.code = 'BOOM' AND NEW.restaurant_id = '{rid}' THEN "
                f"RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER {trigger} BEFORE INSERT ON dining_tables "
                f"FOR EACH ROW EXECUTE FUNCTION {fn}()"
            )
        )
    try:
        with pytest.raises(Exception, match="refused"):
            await import_floorplan(db_engine, parse_floorplan(edited))
    finally:
        async with db_engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {trigger} ON dining_tables"))
            await conn.execute(text(f"DROP FUNCTION {fn}()"))
    assert await export_floorplan(db_engine, rid) == before


async def test_plan_round_trips_through_the_model(unique_id: str) -> None:
    plan = parse_floorplan(example("harbour-kitchen", unique_id))
    assert FloorPlan.model_validate(plan.model_dump()) == plan
    assert parse_floorplan(json.loads(plan.model_dump_json())) == plan


# ------------------------------------------------------------ the command line


def seatflow(pg_url: str, *args: str) -> Done:
    return seatflow_cli().run(args, dict(os.environ, DATABASE_URL=pg_url), cwd=ROOT)


async def test_cli_import_list_show(
    pg_url: str, db_engine: AsyncEngine, unique_id: str, tmp_path: Path
) -> None:
    rid = f"cli-{unique_id}"
    path = write(tmp_path, example("harbour-kitchen", rid))

    first = seatflow(pg_url, "restaurants", "import", str(path), "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["restaurant_id"] == rid and summary["tables_created"] == 40

    again = seatflow(pg_url, "restaurants", "import", str(path))
    assert again.returncode == 0, again.stderr
    assert f"restaurant {rid} updated" in again.stdout and "40 unchanged" in again.stdout

    listed = seatflow(pg_url, "restaurants", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = [r for r in json.loads(listed.stdout) if r["id"] == rid]
    assert mine == [
        {
            "id": rid,
            "name": "Harbour Kitchen",
            "timezone": "Europe/London",
            "zones": 5,
            "tables": 40,
            "total_capacity": 142,
        }
    ]

    shown = seatflow(pg_url, "restaurants", "show", rid, "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["restaurant"]["total_capacity"] == 142
    assert len(detail["tables"]) == 40 and len(detail["adjacency"]) == 25
    assert {"id", "capacity", "zone", "mobility"} <= set(detail["tables"][0])

    text_view = seatflow(pg_url, "restaurants", "show", rid)
    assert text_view.returncode == 0, text_view.stderr
    assert "dinner" in text_view.stdout and "M15-M16" in text_view.stdout

    exported = seatflow(pg_url, "restaurants", "export", rid)
    assert exported.returncode == 0, exported.stderr
    assert normalized(parse_floorplan(json.loads(exported.stdout))) == normalized(
        load_floorplan(path)
    )


async def test_cli_refuses_a_bad_file_with_exit_1_and_imports_nothing(
    pg_url: str, db_engine: AsyncEngine, unique_id: str, tmp_path: Path
) -> None:
    rid = f"clibad-{unique_id}"
    data = example("small-bistro", rid)
    data["tables"][3]["capacity"] = 0
    data["adjacency"].append(["S1", "X9"])
    path = write(tmp_path, data)

    result = seatflow(pg_url, "restaurants", "import", str(path))
    assert result.returncode == 1
    assert "tables[3].capacity: must be greater than 0" in result.stderr
    assert "nothing was imported" in result.stderr

    as_json = seatflow(pg_url, "restaurants", "import", str(path), "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["problems"] == [
        "tables[3].capacity: must be greater than 0",
        "adjacency[6][1]: unknown table 'X9'",
    ]
    assert await row_counts(db_engine, rid) == dict.fromkeys(
        ["restaurants", "services", "zones", "tables", "edges"], 0
    )

    missing = seatflow(pg_url, "restaurants", "import", str(tmp_path / "absent.json"))
    assert missing.returncode == 1 and "not found" in missing.stderr


async def test_cli_show_unknown_restaurant_exits_1(pg_url: str, unique_id: str) -> None:
    result = seatflow(pg_url, "restaurants", "show", f"nobody-{unique_id}", "--json")
    assert result.returncode == 1
    assert "not found" in json.loads(result.stdout)["error"]


def test_the_example_in_the_documentation_is_valid() -> None:
    doc = (ROOT / "docs" / "floorplan.md").read_text()
    block = doc.split("## Example", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    plan = parse_floorplan(json.loads(block))
    assert plan.restaurant.id == "harbour-kitchen"
    assert plan.edges == [("T1", "T2"), ("T2", "T3")]
