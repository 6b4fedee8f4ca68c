"""The worker's data converter: Temporal's JSON, decoded without resolving a
dataclass's type hints again for every payload.

Temporal's default converter rebuilds a dataclass from JSON with
`typing.get_type_hints(cls)` on every payload; our messages
(seatflow.domain.messages) use `from __future__ import annotations`, so that
evaluates every field's annotation string again, each time (a py-spy profile
of a worker in a burst: ~20% of its CPU in payload conversion, `ForwardRef`
among the top frames; docs/performance.md). Here the fields and resolved hints
are computed once per class, and so is each field's conversion: a field whose
JSON value already has the hint's type (a str for `str`, a list of str for
`tuple[str, ...]`, an object for a nested dataclass) is taken as it is, with
no pass through `value_to_type`'s generic checks (decoding a BeginResult 165-240
-> 64-71 us, an AttemptResult 104-211 -> 20-27 us; issue 27). Anything else
goes through `value_to_type`, which converts or raises as the default does
(tests/pure/test_converter.py decodes every recorded payload both ways).
Encoding skips `dataclasses.asdict`'s deep copy (`_Encoder`). The
JSON on the wire is exactly the default's, byte for byte: clients with the default converter
(the API, the CLI, the tests) read and write the same payloads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import Enum
from functools import cache
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)


def _generic(hint: Any) -> Callable[[Any], Any]:
    return lambda raw: value_to_type(hint, raw, _CONVERTERS)


_EXACT = (str, int, float, bool)


def _field_decoder(hint: Any) -> Callable[[Any], Any]:
    """One field's conversion, chosen once per class: the JSON value as it
    comes when its type is already the hint's (what `value_to_type` returns
    for it too), otherwise `value_to_type` itself, which converts or raises
    as the default converter does."""
    if hint is Any:
        return lambda raw: raw
    if hint in _EXACT:
        general = _generic(hint)
        return lambda raw: raw if type(raw) is hint else general(raw)
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType) and len(args) == 2 and type(None) in args:
        inner = _field_decoder(args[0] if args[1] is type(None) else args[1])
        return lambda raw: None if raw is None else inner(raw)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        general = _generic(hint)
        return lambda raw: _decoder(hint)(raw) if type(raw) is dict else general(raw)
    if isinstance(hint, type) and issubclass(hint, Enum) and issubclass(hint, str):
        general = _generic(hint)
        return lambda raw: hint(raw) if type(raw) is str else general(raw)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in _EXACT:
        item, general = args[0], _generic(hint)
        return lambda raw: (tuple(raw) if type(raw) is list
                            and all(type(x) is item for x in raw) else general(raw))
    if origin is dict and args == (str, Any):
        general = _generic(hint)
        return lambda raw: (dict(raw) if type(raw) is dict
                            and all(type(k) is str for k in raw) else general(raw))
    return _generic(hint)


@cache
def _decoder(cls: type) -> Callable[[dict[str, Any]], Any]:
    """A dataclass from its JSON object as Temporal's `value_to_type` builds
    it (unknown keys ignored, a missing required field fails in the
    constructor, init=False fields set after), with the type hints resolved
    and each field's conversion chosen once per class."""
    hints = get_type_hints(cls)
    plan = [(field.name, field.init, _field_decoder(hints[field.name]))
            for field in dataclasses.fields(cls)]

    def decode(value: dict[str, Any]) -> Any:
        init: dict[str, Any] = {}
        later: dict[str, Any] = {}
        for name, in_init, convert in plan:
            raw = value.get(name, dataclasses.MISSING)
            if raw is dataclasses.MISSING:
                continue
            try:
                converted = convert(raw)
            except Exception as err:
                raise TypeError(f"Failed converting field {name} on dataclass {cls}") from err
            (init if in_init else later)[name] = converted
        obj = cls(**init)
        for name, converted in later.items():
            object.__setattr__(obj, name, converted)
        return obj

    return decode


class _CachedDataclasses(JSONTypeConverter):
    """Dataclasses decoded by a per-class plan (`_decoder`)."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (type(value) is dict and isinstance(hint, type)
                and dataclasses.is_dataclass(hint)):
            return JSONTypeConverter.Unhandled
        return _decoder(hint)(value)


_CONVERTERS: list[JSONTypeConverter] = [_CachedDataclasses()]


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))


class _Encoder(AdvancedJSONEncoder):
    """Temporal's JSON encoder, with a dataclass given to `json` as a shallow
    dict of its fields: `json` calls this again for a nested one, so the
    bytes are the default's, without `dataclasses.asdict`'s deep copy of
    every value first (encoding a BeginResult 104 -> 19 us)."""

    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {name: getattr(o, name) for name in _field_names(type(o))}
        return super().default(o)


class PayloadConverter(CompositePayloadConverter):
    """The default encoding converters, with the JSON one's dataclass decoding
    planned per class and its encoding without the deep copy."""

    def __init__(self) -> None:
        super().__init__(*(
            JSONPlainPayloadConverter(encoder=_Encoder, custom_type_converters=_CONVERTERS)
            if isinstance(c, JSONPlainPayloadConverter) else c
            for c in DefaultPayloadConverter.default_encoding_payload_converters
        ))


DATA_CONVERTER = dataclasses.replace(DataConverter.default,
                                     payload_converter_class=PayloadConverter)
