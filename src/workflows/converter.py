"""The worker's data converter: Temporal's JSON, decoded without resolving a
dataclass's type hints again for every payload.

Temporal's default converter rebuilds a dataclass from JSON with
`typing.get_type_hints(cls)` on every payload; our messages
(seatflow.domain.messages) use `from __future__ import annotations`, so that
evaluates every field's annotation string again, each time (a py-spy profile
of a worker in a burst: ~20% of its CPU in payload conversion, `ForwardRef`
among the top frames; docs/performance.md). Here the fields and resolved hints
are computed once per class. The JSON on the wire is exactly the default's:
clients with the default converter (the API, the CLI, the tests) read and
write the same payloads.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, get_type_hints

from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)


@cache
def _plan(cls: type) -> tuple[tuple[dataclasses.Field[Any], ...], dict[str, Any]]:
    return dataclasses.fields(cls), get_type_hints(cls)


class _CachedDataclasses(JSONTypeConverter):
    """Dataclasses as Temporal's `value_to_type` builds them (unknown keys
    ignored, a missing required field fails in the constructor, init=False
    fields set after), with each class's hints resolved once."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)
                and isinstance(value, dict)):
            return JSONTypeConverter.Unhandled
        fields, hints = _plan(hint)
        init: dict[str, Any] = {}
        later: dict[str, Any] = {}
        for field in fields:
            raw = value.get(field.name, dataclasses.MISSING)
            if raw is dataclasses.MISSING:
                continue
            try:
                converted = value_to_type(hints[field.name], raw, _CONVERTERS)
            except Exception as err:
                raise TypeError(
                    f"Failed converting field {field.name} on dataclass {hint}") from err
            (init if field.init else later)[field.name] = converted
        obj = hint(**init)
        for name, converted in later.items():
            object.__setattr__(obj, name, converted)
        return obj


_CONVERTERS: list[JSONTypeConverter] = [_CachedDataclasses()]


class PayloadConverter(CompositePayloadConverter):
    """The default encoding converters, with the JSON one's dataclass decoding
    cached per class."""

    def __init__(self) -> None:
        super().__init__(*(
            JSONPlainPayloadConverter(custom_type_converters=_CONVERTERS)
            if isinstance(c, JSONPlainPayloadConverter) else c
            for c in DefaultPayloadConverter.default_encoding_payload_converters
        ))


DATA_CONVERTER = dataclasses.replace(DataConverter.default,
                                     payload_converter_class=PayloadConverter)
