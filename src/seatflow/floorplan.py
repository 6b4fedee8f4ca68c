"""Floor plans: the JSON file format (docs/floorplan.md) and its validation.

Pure: validating and serialising a plan touch no database. Reading a file
within limits (size, nesting, list lengths) is `seatflow.floorplan_file`
(`load_floorplan`). Storing a
plan and reading a restaurant back as one are `seatflow.storage.floorplans`
(`import_floorplan`, `export_floorplan`, `list_restaurants`).

A bad file raises `FloorPlanError`, whose problems each name the field by its
path in the file (`tables[3].capacity: must be greater than 0`), so an
operator can fix the file without reading a traceback.
"""

from __future__ import annotations

import difflib
import json
from datetime import time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

RESTAURANT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
# Table and zone ids appear in comma lists on the command line (`--tables T1,T2`),
# so they hold no commas or spaces.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

RestaurantId = Annotated[str, Field(pattern=RESTAURANT_ID_PATTERN, max_length=63)]
Code = Annotated[str, Field(pattern=CODE_PATTERN, max_length=32)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Mobility = Literal["movable", "fixed"]
Category = Literal["dining", "bar", "patio", "lounge", "private"]
TableStatus = Literal["available", "out_of_service"]


class FloorPlanError(ValueError):
    """A floor-plan file cannot be used; `problems` lists `path: message` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"floor plan {source} is invalid:\n{listing}")




def _problems(items: list[tuple[str, str]]) -> PydanticCustomError:
    """Several problems found by one validator, each at a path relative to it."""
    summary = "; ".join(f"{path}: {msg}" if path else msg for path, msg in items)
    return PydanticCustomError("floorplan", "{summary}", {"summary": summary, "problems": items})


class _Strict(BaseModel):
    # strict: "4" is not a capacity and 1 is not `true`; forbid: typos are caught.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TurnTimeBand(_Strict):
    max_party: Annotated[int, Field(ge=1)] | None
    minutes: Annotated[int, Field(gt=0, le=24 * 60)]


def _parse_clock(value: Any) -> Any:
    if isinstance(value, str):
        try:
            hours, minutes = value.split(":")
            if len(hours) == 2 and len(minutes) == 2:
                return time(int(hours), int(minutes))
        except ValueError:
            pass
    if isinstance(value, time):
        return value
    raise PydanticCustomError(
        "clock",
        'must be a local time "HH:MM", got {value}',
        {"value": json.dumps(value, default=str)},
    )


class ServiceSpec(_Strict):
    name: Code
    start: time
    end: time
    turn_times: Annotated[list[TurnTimeBand], Field(min_length=1)]

    _clock = field_validator("start", "end", mode="before")(_parse_clock)

    @field_serializer("start", "end")
    def _clock_text(self, value: time) -> str:
        return value.strftime("%H:%M")

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: time, info: ValidationInfo) -> time:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise PydanticCustomError(
                "clock",
                "must be after start ({start}); a service cannot cross midnight",
                {"start": start.strftime("%H:%M")},
            )
        return end

    @field_validator("turn_times")
    @classmethod
    def _bands_ascending(cls, bands: list[TurnTimeBand]) -> list[TurnTimeBand]:
        found: list[tuple[str, str]] = []
        previous: int | None = None
        for i, band in enumerate(bands):
            if band.max_party is None:
                if i != len(bands) - 1:
                    found.append(
                        (f"[{i}].max_party", "null (any larger party) must be the last band")
                    )
            elif previous is not None and band.max_party <= previous:
                found.append(
                    (f"[{i}].max_party", f"must be greater than the previous band's ({previous})")
                )
            if band.max_party is not None:
                previous = band.max_party
        if found:
            raise _problems(found)
        return bands

    def turn_minutes(self, party_size: int) -> int | None:
        """The first band whose max_party is null or >= the party (docs/floorplan.md)."""
        for band in self.turn_times:
            if band.max_party is None or band.max_party >= party_size:
                return band.minutes
        return None


class RestaurantSpec(_Strict):
    id: RestaurantId
    name: Name
    timezone: str
    buffer_minutes: Annotated[int, Field(ge=0, le=240)] = 5
    # The step between start times that availability offers.
    slot_minutes: Annotated[int, Field(ge=5, le=240)] = 15
    services: Annotated[list[ServiceSpec], Field(min_length=1)]

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "timezone",
                "unknown IANA time zone '{value}' (e.g. Europe/London)",
                {"value": value},
            ) from None
        return value

    @field_validator("services")
    @classmethod
    def _distinct_services(cls, services: list[ServiceSpec]) -> list[ServiceSpec]:
        found: list[tuple[str, str]] = []
        for i, service in enumerate(services):
            for j, other in enumerate(services[:i]):
                if other.name == service.name:
                    found.append(
                        (f"[{i}].name", f"duplicate service name {service.name!r} (see [{j}])")
                    )
                elif service.start < other.end and other.start < service.end:
                    found.append((f"[{i}].start", f"overlaps service {other.name!r}"))
        if found:
            raise _problems(found)
        return services


class ZoneSpec(_Strict):
    id: Code
    name: Name
    active: bool = True


class TableSpec(_Strict):
    id: Code
    capacity: Annotated[int, Field(gt=0, le=100)]
    min_party: Annotated[int, Field(ge=1)] = 1
    max_party: Annotated[int, Field(ge=1)] | None = None
    zone: Code
    mobility: Mobility = "movable"
    category: Category = "dining"
    active: bool = True
    status: TableStatus = "available"

    @field_validator("min_party")
    @classmethod
    def _min_fits(cls, min_party: int, info: ValidationInfo) -> int:
        capacity = info.data.get("capacity")
        if capacity is not None and min_party > capacity:
            raise PydanticCustomError(
                "party", "must not exceed capacity ({capacity})", {"capacity": capacity}
            )
        return min_party

    @field_validator("max_party")
    @classmethod
    def _max_in_range(cls, max_party: int | None, info: ValidationInfo) -> int | None:
        if max_party is None:
            return None
        min_party, capacity = info.data.get("min_party"), info.data.get("capacity")
        if min_party is not None and max_party < min_party:
            raise PydanticCustomError(
                "party", "must be null or >= min_party ({min_party})", {"min_party": min_party}
            )
        if capacity is not None and max_party > capacity:
            raise PydanticCustomError(
                "party", "must not exceed capacity ({capacity})", {"capacity": capacity}
            )
        return max_party


Edge = Annotated[list[Code], Field(min_length=2, max_length=2)]


class FloorPlan(_Strict):
    restaurant: RestaurantSpec
    zones: Annotated[list[ZoneSpec], Field(min_length=1)]
    tables: Annotated[list[TableSpec], Field(min_length=1)]
    adjacency: list[Edge] = []
    # Groups of zones a guest sees as one (a room and its alcove): re-packing
    # may move a booking between the zones of one group (docs/floorplan.md).
    equivalent_zones: list[Annotated[list[Code], Field(min_length=2)]] = []
    # Guests are told their table, and told again when re-packing changes it.
    # False (the default): guests hear the time, the party and the zone they
    # asked for, never a table, so re-packing is invisible to them.
    promises_tables: bool = False

    @model_validator(mode="after")
    def _references(self) -> FloorPlan:
        found = _cross_references(self.model_dump())
        if found:
            raise _problems(found)
        return self

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Adjacency as sorted, distinct undirected pairs (duplicates in either
        orientation collapse into one edge)."""
        return sorted({(min(a, b), max(a, b)) for a, b in self.adjacency})

    @property
    def zone_groups(self) -> list[list[str]]:
        """`equivalent_zones` as stored: each group's distinct ids sorted, the
        groups sorted."""
        return sorted(sorted(set(group)) for group in self.equivalent_zones)

    @property
    def total_capacity(self) -> int:
        return sum(t.capacity for t in self.tables if t.active)


def _cross_references(data: Any) -> list[tuple[str, str]]:
    """Duplicate ids and references to unknown zones or tables.

    Works on raw decoded JSON too, so that a file with both a bad field and a
    dangling reference reports both at once.
    """

    def items(key: str) -> list[Any]:
        value = data.get(key) if isinstance(data, dict) else None
        return value if isinstance(value, list) else []

    def field(item: Any, name: str) -> Any:
        return item.get(name) if isinstance(item, dict) else None

    found: list[tuple[str, str]] = []
    zone_ids: set[Any] = set()
    for i, zone in enumerate(items("zones")):
        zone_id = field(zone, "id")
        if isinstance(zone_id, str) and zone_id in zone_ids:
            found.append((f"zones[{i}].id", f"duplicate zone id {zone_id!r}"))
        zone_ids.add(zone_id)
    table_ids: set[Any] = set()
    for i, table in enumerate(items("tables")):
        table_id, zone = field(table, "id"), field(table, "zone")
        if isinstance(table_id, str) and table_id in table_ids:
            found.append((f"tables[{i}].id", f"duplicate table id {table_id!r}"))
        table_ids.add(table_id)
        if isinstance(zone, str) and zone not in zone_ids:
            found.append((f"tables[{i}].zone", f"unknown zone {zone!r}"))
    for i, edge in enumerate(items("adjacency")):
        if not (isinstance(edge, list) and len(edge) == 2):
            continue
        for j, code in enumerate(edge):
            if isinstance(code, str) and code not in table_ids:
                found.append((f"adjacency[{i}][{j}]", f"unknown table {code!r}"))
        if isinstance(edge[0], str) and edge[0] == edge[1]:
            found.append((f"adjacency[{i}]", f"table {edge[0]!r} cannot be adjacent to itself"))
    grouped: dict[str, int] = {}
    for i, group in enumerate(items("equivalent_zones")):
        if not isinstance(group, list):
            continue
        for j, code in enumerate(group):
            if not isinstance(code, str):
                continue
            if code not in zone_ids:
                found.append((f"equivalent_zones[{i}][{j}]", f"unknown zone {code!r}"))
            elif code in grouped:
                where = grouped[code]
                found.append((
                    f"equivalent_zones[{i}][{j}]",
                    f"zone {code!r} is already in this group" if where == i else
                    f"zone {code!r} is already in equivalent_zones[{where}] "
                    "(a zone belongs to one group: merge the two)",
                ))
            else:
                grouped[code] = i
    return found


# ---------------------------------------------------------------- loading


def _path_text(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _join(base: str, relative: str) -> str:
    if not relative:
        return base
    if relative.startswith("[") or not base:
        return base + relative
    return f"{base}.{relative}"


_KNOWN_FIELDS = sorted(
    {
        name
        for model in (FloorPlan, RestaurantSpec, ServiceSpec, TurnTimeBand, ZoneSpec, TableSpec)
        for name in model.model_fields
    }
)


def _message(error: Any) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(str(loc[-1]), _KNOWN_FIELDS, n=1)
        return "unknown field" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if kind == "literal_error":
        return f"must be one of {error['ctx']['expected']}, got {error['input']!r}"
    if kind == "string_pattern_mismatch":
        return f"{error['input']!r} is not a valid id (letters, digits, '_', '-', no spaces)"
    msg = str(error["msg"])
    for prefix in ("Input should be", "Value should be"):
        if msg.startswith(prefix):
            msg = "must be" + msg[len(prefix) :]
    return msg


def _validation_problems(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for error in exc.errors():
        base = _path_text(tuple(error["loc"]))
        if error["type"] == "floorplan":
            for relative, msg in error["ctx"]["problems"]:
                problems.append(f"{_join(base, relative) or '(file)'}: {msg}")
        else:
            problems.append(f"{base or '(file)'}: {_message(error)}")
    return problems


def parse_floorplan(data: Any, source: str = "<data>") -> FloorPlan:
    """Validate already-decoded JSON data; raises FloorPlanError."""
    if not isinstance(data, dict):
        raise FloorPlanError(source, ["(file): must be a JSON object"])
    try:
        return FloorPlan.model_validate(data)
    except ValidationError as exc:
        problems = _validation_problems(exc)
        # The model's reference check runs only once every field is valid; run
        # it on the raw data too so one pass reports everything.
        for path, msg in _cross_references(data):
            if f"{path}: {msg}" not in problems:
                problems.append(f"{path}: {msg}")
        raise FloorPlanError(source, problems) from None
