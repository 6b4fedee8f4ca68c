"""The worker's data converter decodes every message as Temporal's default
does: the same objects from the same JSON, and an error where it fails.

Every JSON object in every recorded history (workflow inputs, activity and
local-activity results, signals, updates, outcomes) is decoded into every
message class, with both converters; so are hand-made objects that take the
slow paths (an int for a float, a null, a wrong type, an unknown key, a
missing field).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from seatflow.domain import messages, shadow
from workflows.converter import DATA_CONVERTER

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
CLASSES = [c for module in (messages, shadow) for c in vars(module).values()
           if isinstance(c, type) and dataclasses.is_dataclass(c)
           and c.__module__ == module.__name__]


def _json_objects(node: Any) -> list[bytes]:
    """The data of every json/plain payload in a history (as JSON)."""
    found: list[bytes] = []
    if isinstance(node, dict):
        meta = node.get("metadata")
        if isinstance(meta, dict) and "data" in node and \
                base64.b64decode(meta.get("encoding", "")) == b"json/plain":
            data = base64.b64decode(node["data"])
            if data.startswith(b"{"):
                found.append(data)
        for value in node.values():
            found += _json_objects(value)
    elif isinstance(node, list):
        for value in node:
            found += _json_objects(value)
    return found


def _payloads() -> list[bytes]:
    seen: dict[bytes, None] = {}
    for path in sorted(HISTORIES.rglob("*.json")):
        for data in _json_objects(json.loads(path.read_text())):
            seen[data] = None
    return list(seen)


EDGE_CASES = [
    {"booking_id": "b", "expected_version": 1, "to_state": "failed", "reason": None},
    {"booking_id": "b", "expected_version": 1.0, "to_state": "failed"},  # float for int
    {"booking_id": 7, "expected_version": 1, "to_state": "failed"},  # int for str
    {"booking_id": "b", "expected_version": True, "to_state": "failed"},  # bool for int
    {"booking_id": "b", "expected_version": 1, "to_state": "x", "metadata": {"a": [1, {}]}},
    {"booking_id": "b", "expected_version": 1, "to_state": "x", "metadata": ["no"]},
    {"booking_id": "b", "unknown": 1},  # missing required fields
    {"pipeline": "v3", "max_parallel": 2, "retry_base_seconds": 1,  # int for float
     "legacy_delays_seconds": [1, 2.5], "manual_review_timeout_seconds": 5},
    {"pipeline": "v9"},  # not a pipeline
    {"pipeline": "legacy", "legacy_delays_seconds": ["a"]},
    {"pipeline": "v3", "inputs": {"1": 2}, "shadow": 1},
    {"context": {"booking_id": "b", "restaurant_id": "r", "party_size": 2, "state": "s",
                 "version": 1, "status": "x", "start": "t", "table_ids": ["t1", 2]},
     "decision": {"pipeline": "v3"}},
    {"booking_id": "b", "state": "confirmed", "version": 3, "tables": ["t1"],
     "strategy": None, "reason": None, "attempts": 1, "pipeline": "v3", "extra": {}},
]


def _decode(converter: DataConverter, data: bytes, cls: type) -> tuple[str, Any]:
    payload = Payload(metadata={"encoding": b"json/plain"}, data=data)
    try:
        return "ok", converter.payload_converter.from_payloads([payload], [cls])[0]
    except Exception as err:  # noqa: BLE001 - the kind of failure is compared
        return "error", type(err).__name__


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_every_recorded_payload_decodes_as_the_default_converter_does(cls: type) -> None:
    payloads = _payloads() + [json.dumps(case).encode() for case in EDGE_CASES]
    assert len(payloads) > 50
    decoded = 0
    for data in payloads:
        ours = _decode(DATA_CONVERTER, data, cls)
        default = _decode(DataConverter.default, data, cls)
        assert ours == default, (cls.__name__, data)
        if ours[0] == "ok":
            decoded += 1
            # the same field types too (an int where the default gives a float
            # would compare equal)
            assert [type(v) for v in vars(ours[1]).values()] == \
                [type(v) for v in vars(default[1]).values()], (cls.__name__, data)
    if cls in (messages.BeginResult, messages.AttemptResult, messages.BookingWorkflowInput,
               messages.TransitionRequest, messages.PipelineDecision):
        assert decoded > 0, cls.__name__


def test_every_message_encodes_to_the_default_converters_bytes() -> None:
    """Each recorded payload, decoded into every class it fits, encodes to
    the same bytes with both converters (nested dataclasses, enums, tuples,
    dicts of anything, None); so do values that are not messages."""
    values: list[Any] = [None, 3, 1.5, "s", [1, "a"], {"b": 1, "a": [None]}, ("t", 2),
                         messages.Pipeline.V3]
    for data in _payloads():
        for cls in CLASSES:
            kind, value = _decode(DataConverter.default, data, cls)
            if kind == "ok":
                values.append(value)
    assert sum(dataclasses.is_dataclass(v) for v in values) > 50
    assert any(isinstance(v, messages.BeginResult) for v in values)
    for value in values:
        ours = DATA_CONVERTER.payload_converter.to_payloads([value])
        default = DataConverter.default.payload_converter.to_payloads([value])
        assert ours == default, value
