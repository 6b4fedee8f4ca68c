"""The worker's Temporal Runtime: the SDK's Prometheus endpoint carrying the
SDK's metrics and seatflow's own (`seatflow.metrics`), plus a sampler that
publishes how many bookings sit in each non-terminal state.

    runtime = make_runtime(settings)            # binds SEATFLOW_METRICS_ADDRESS
    client = await Client.connect(..., runtime=runtime)
    async with BookingStateSampler(engine):     # bookings-by-state gauge
        async with worker: ...

`SEATFLOW_METRICS_ADDRESS` is `host:port` (default `127.0.0.1:9464`); an
empty value or `off` disables the endpoint (the Runtime still exists, so the
meters keep working as no-ops for the exporter).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from seatflow import metrics
from seatflow.config import ConfigError, Settings
from seatflow.storage.stats import count_in_states

log = logging.getLogger("seatflow.ops.telemetry")

DISABLED = ("", "off", "none", "false", "0")


class MetricsAddressError(ConfigError):
    """SEATFLOW_METRICS_ADDRESS is malformed or its port is taken."""


def metrics_bind_address(settings: Settings) -> str | None:
    """`host:port` to bind, or None when metrics are switched off."""
    value = (settings.metrics_address or "").strip()
    if value.lower() in DISABLED:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MetricsAddressError(
            f"SEATFLOW_METRICS_ADDRESS={value!r}: expected host:port, e.g. 127.0.0.1:9464, "
            "or 'off'"
        )
    return value


def _check_port_free(address: str) -> None:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, int(port)))
        except OSError as exc:
            raise MetricsAddressError(
                f"SEATFLOW_METRICS_ADDRESS={address}: cannot bind ({exc.strerror}); another "
                "worker may use it: give each worker its own port"
            ) from None


def make_runtime(settings: Settings, *, service: str = "seatflow-worker") -> Runtime:
    """A Runtime exporting Prometheus metrics on SEATFLOW_METRICS_ADDRESS.

    Registers its meter for process-wide gauges and primes every counter and
    gauge at zero, so alert expressions have series from the first scrape.
    """
    address = metrics_bind_address(settings)
    if address is None:
        runtime = Runtime(telemetry=TelemetryConfig(global_tags={"service": service}))
    else:
        _check_port_free(address)  # the SDK's own error names no variable
        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    histogram_bucket_overrides={
                        name: list(buckets) for name, buckets in metrics.HISTOGRAM_BUCKETS.items()
                    },
                ),
                global_tags={"service": service},
            )
        )
    metrics.use_process_meter(runtime.metric_meter)
    metrics.prime(runtime.metric_meter)
    return runtime


async def count_active_states(engine: AsyncEngine) -> dict[str, int]:
    """Bookings per non-terminal state (the partial scan the bookings_state index serves)."""
    return await count_in_states(engine, metrics.ACTIVE_STATES)


class BookingStateSampler:
    """Publishes `seatflow_bookings_in_state` every `interval` seconds from
    PostgreSQL (the truth shared by all workers: dashboards take max()).

    A database error skips one sample and is logged; it never stops the worker.
    """

    def __init__(
        self, engine: AsyncEngine, meter: MetricMeter | None = None, *, interval: float = 15.0
    ) -> None:
        self.engine = engine
        self.meter = meter
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def sample_once(self) -> dict[str, int]:
        meter = self.meter or metrics.process_meter()
        counts = await count_active_states(self.engine)
        if meter is not None:
            metrics.set_bookings_in_state(meter, counts)
        return counts

    async def _run(self) -> None:
        while True:
            try:
                await self.sample_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a missed sample is not worth a crash
                log.warning("bookings-by-state sample failed: %s", exc)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="seatflow-state-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


__all__ = ["BookingStateSampler", "MetricsAddressError", "count_active_states", "make_runtime",
           "metrics_bind_address"]
