"""Reading a floor-plan file (`load_floorplan`): whatever path an operator
gives, within limits checked before any decoding or validation, so a hostile
or mistaken file (a device, a pipe, 100,000 nested brackets, a 2 MB padding
field, thousands of tables) costs bounded time and memory and is refused
with a clear message. What the file must say is `seatflow.floorplan`.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from seatflow.floorplan import FloorPlan, FloorPlanError, parse_floorplan


class FloorPlanTooLarge(FloorPlanError):
    """The file is not something a floor plan can be: not a regular file, or
    beyond the size, nesting or list-length limits. Checked before any
    validation, so a hostile file costs bounded time and memory."""


# Limits far above any real restaurant (the examples are a few kB, depth 6),
# low enough that a file cannot exhaust memory, the recursion limit or time.
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 16
MAX_LIST_ITEMS = {"tables": 2000, "zones": 200, "adjacency": 20000, "equivalent_zones": 200,
                  "restaurant.services": 24, "turn_times": 24}
MAX_ANY_LIST = 20000


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in one object")
        result[key] = value
    return result


def _read_limited(path: str | Path, source: str) -> str:
    """The file's text: a regular file of at most MAX_FILE_BYTES, UTF-8."""
    try:
        # O_NONBLOCK: opening a FIFO must not hang; it is refused just below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FloorPlanError(source, ["(file): not found"]) from None
    except IsADirectoryError:
        raise FloorPlanTooLarge(source, ["(file): is a directory, not a floor-plan file"]) from None
    except OSError as exc:
        raise FloorPlanError(source, [f"(file): cannot be read: {exc.strerror or exc}"]) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise FloorPlanTooLarge(source, ["(file): is a directory, not a floor-plan file"])
        raise FloorPlanTooLarge(
            source, [("(file): is not a regular file (a device, pipe or socket); "
                     "give the path of a floor-plan JSON file")])
    with os.fdopen(fd, "rb") as handle:
        try:
            raw = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise FloorPlanError(source, [f"(file): cannot be read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise FloorPlanTooLarge(
            source, [f"(file): larger than the {MAX_FILE_BYTES // 1024} KiB limit for a floor plan"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FloorPlanError(source, [(f"(file): cannot be read: not UTF-8 ({exc.reason} "
                                      f"at byte {exc.start})")]) from None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def _check_depth(text: str, source: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before the decoder recurses into it."""
    depth = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise FloorPlanTooLarge(
                    source, [(f"(file): nested deeper than {MAX_DEPTH} levels; "
                             "a floor plan is at most 6 deep")])
        else:
            depth -= 1


def _check_lists(data: Any, source: str) -> None:
    """Refuse lists longer than a floor plan can need, before validating items."""

    def walk(node: Any, path: str, key: str) -> None:
        if isinstance(node, list):
            limit = min(MAX_LIST_ITEMS.get(path, MAX_LIST_ITEMS.get(key, MAX_ANY_LIST)),
                        MAX_ANY_LIST)
            if len(node) > limit:
                raise FloorPlanTooLarge(
                    source, [(f"{path or '(file)'}: {len(node)} items, more than the limit of "
                             f"{limit}")])
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]", key)
        elif isinstance(node, dict):
            for name, value in node.items():
                walk(value, f"{path}.{name}" if path else str(name), str(name))

    walk(data, "", "")


def load_floorplan(path: str | Path) -> FloorPlan:
    """Read and validate a floor-plan file; raises FloorPlanError (FloorPlanTooLarge
    when the file is beyond the limits, or not a regular file)."""
    source = str(path)
    text = _read_limited(path, source)
    _check_depth(text, source)
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise FloorPlanError(
            source, [f"(file): not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
        ) from None
    except ValueError as exc:
        raise FloorPlanError(source, [f"(file): not valid JSON: {exc}"]) from None
    except RecursionError:  # belt and braces: _check_depth refuses this first
        raise FloorPlanTooLarge(source, [f"(file): nested deeper than {MAX_DEPTH} levels"]) from None
    _check_lists(data, source)
    return parse_floorplan(data, source)
