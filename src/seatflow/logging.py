"""Structured logs: structlog for seatflow code, stdlib logging (the Temporal
SDK, its replay-safe workflow logger, SQLAlchemy) rendered the same way.

JSON lines by default (`SEATFLOW_LOG_FORMAT=json`), a readable console format
for `seatflow dev` and `seatflow demo` (`console`). Every line from booking
work carries booking_id, workflow_id, restaurant_id and attempt:

- activities bind them with `bind_booking(...)` (a context manager over
  structlog's contextvars, so concurrent activities never mix their fields);
- workflow code logs through `workflow.logger`, which the SDK silences during
  replay; its `temporal_workflow` extra is lifted into the same field names
  here, and the booking id is read back from the workflow id.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

from seatflow.domain.workflow_ids import booking_id_of, booking_workflow_id

FORMATS = ("json", "console")



def _lift_temporal_context(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Move the SDK's `temporal_workflow` / `temporal_activity` extras to our names."""
    record = event.get("_record")
    for key, attempt_name in (("temporal_workflow", "workflow_attempt"),
                              ("temporal_activity", "activity_attempt")):
        value = event.pop(key, None)
        if not isinstance(value, dict) and record is not None:
            value = getattr(record, key, None)
        if not isinstance(value, dict):
            continue
        for src, dst in (("workflow_id", "workflow_id"), ("run_id", "run_id"),
                         ("workflow_type", "workflow_type"), ("activity_type", "activity_type"),
                         ("attempt", attempt_name)):
            if src in value and dst not in event:
                event[dst] = value[src]
    workflow_id = event.get("workflow_id")
    if isinstance(workflow_id, str) and "booking_id" not in event:
        booking_id = booking_id_of(workflow_id)
        if booking_id is not None:
            event["booking_id"] = booking_id
    return event


def _processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _lift_temporal_context,
    ]


def configure_logging(fmt: str | None = None, *, level: int | str = logging.INFO) -> None:
    """Configure structlog and the stdlib root logger (idempotent per format).

    `fmt` defaults to `SEATFLOW_LOG_FORMAT` (json). Unknown formats fall back
    to json so a typo never silences the logs.
    """
    if fmt is None:
        from seatflow.config import settings

        fmt = settings().log_format
    fmt = fmt if fmt in FORMATS else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    shared = _processors()
    structlog.configure(
        # filter_by_level first: a line below the configured level costs one
        # level check, not the processors' work (issue 27)
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.processors.StackInfoRenderer(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("seatflow")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "seatflow"]
    root.addHandler(handler)
    root.setLevel(level)
    # The SDK puts workflow/activity info in `extra`, which we render as fields.
    try:
        from temporalio import workflow

        workflow.logger.workflow_info_on_message = False
        workflow.logger.workflow_info_on_extra = True
        from temporalio import activity

        activity.logger.activity_info_on_message = False
        activity.logger.activity_info_on_extra = True
    except ImportError:  # pragma: no cover - temporalio is a dependency
        pass


def get_logger(name: str = "seatflow") -> Any:
    return structlog.stdlib.get_logger(name)


@contextmanager
def bind_booking(
    booking_id: str,
    *,
    workflow_id: str | None = None,
    restaurant_id: str | None = None,
    attempt: int | None = None,
    **extra: Any,
) -> Iterator[None]:
    """Bind a booking's identity to every log line inside the block.

    `workflow_id` defaults to the current activity's workflow (or the
    booking's workflow id outside an activity).
    """
    if workflow_id is None:
        workflow_id = _current_workflow_id() or booking_workflow_id(booking_id)
    fields: dict[str, Any] = {"booking_id": booking_id, "workflow_id": workflow_id}
    if restaurant_id is not None:
        fields["restaurant_id"] = restaurant_id
    if attempt is not None:
        fields["attempt"] = attempt
    fields.update(extra)
    with structlog.contextvars.bound_contextvars(**fields):
        yield


def _current_workflow_id() -> str | None:
    try:
        from temporalio import activity

        return activity.info().workflow_id
    except Exception:  # noqa: BLE001 - not in an activity
        return None


__all__ = ["bind_booking", "configure_logging", "get_logger"]
