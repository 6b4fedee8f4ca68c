"""The FastAPI application, assembled: its dependencies (database, Temporal
client, settings, tokens), the error handlers, and one router per resource
(`seatflow.api.routes`). Every route parses, calls one function of
`seatflow.service` (the same one the CLI calls) and renders its answer;
every error is JSON `{"code", "message"}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from seatflow.api.auth import ApiToken
from seatflow.api.deps import Deps
from seatflow.api.errors import install_error_handlers
from seatflow.api.guard import BodyGuard
from seatflow.api.ratelimit import RateLimits
from seatflow.api.routes import availability, bookings, health, holds, host, review, timeline
from seatflow.config import Settings
from seatflow.service import cpu
from seatflow.service.database import open_database

API_POOL_SIZE = 10


def create_app(
    settings: Settings,
    tokens: list[ApiToken],
    *,
    engine: AsyncEngine | None = None,
    client: Client | None = None,
) -> FastAPI:
    """The API. Without `engine`/`client`, they are made at start-up from
    `settings` (the Temporal client connects lazily: the API starts while
    Temporal is down, and bookings then wait for the intake relay)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            db = engine if engine is not None else await stack.enter_async_context(
                open_database(settings.database_url, pool_size=API_POOL_SIZE,
                              max_overflow=API_POOL_SIZE))
            temporal = client or await Client.connect(
                settings.temporal_address, namespace=settings.temporal_namespace, lazy=True
            )
            app.state.deps = Deps(settings, tokens, db, temporal, settings.engine_config())
            # availability and hold grants compute in worker processes (service/cpu.py)
            await asyncio.to_thread(cpu.configure, settings.api_cpu_workers,
                                    settings.api_cpu_wait_ms / 1000)
            try:
                yield
            finally:
                await asyncio.to_thread(cpu.shutdown)

    app = FastAPI(
        title="seatflow",
        version="1",
        description="Bookings, availability and manual review for host applications. "
        "Every request but /healthz needs `Authorization: Bearer <token>`.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyGuard, tokens=tokens, rates=RateLimits(settings.api_rate_limit))
    install_error_handlers(app)
    for resource in (bookings, holds, availability, review, timeline, health, host):
        app.include_router(resource.router)
    return app
