"""What `seatflow dev status` reports (a component, the whole stack) and the
error every step raises, with database passwords kept out of both."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class DevStackError(RuntimeError):
    """A piece of the stack could not be started or stopped; says where to look."""


@dataclass(frozen=True)
class Component:
    """One piece of the stack as `status` sees it."""

    name: str  # postgres, temporal, worker-1..N, intake-relay, api
    state: str  # running | exited | stopped | external
    managed: bool  # started (or adopted) by `dev up`, so `dev down` stops it
    pid: int | None = None
    address: str | None = None
    log: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class StackStatus:
    home: Path
    database_url: str | None
    temporal_address: str | None
    namespace: str
    task_queue: str
    ui_url: str | None
    components: list[Component] = field(default_factory=list)
    api_url: str | None = None

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    @property
    def host_url(self) -> str | None:
        """The host page's index while the API runs: `/host/<restaurant id>`
        is a restaurant's timeline (the API's `/host/{restaurant}`)."""
        return f"{self.api_url}/host/" if self.api_url else None

    @property
    def workers(self) -> list[Component]:
        return [c for c in self.components if c.name.startswith("worker-")]

    @property
    def running(self) -> bool:
        """Database and Temporal are usable and every recorded worker runs."""
        core = [self.component("postgres"), self.component("temporal")]
        if any(c is None or c.state not in ("running", "external") for c in core):
            return False
        return all(w.state == "running" for w in self.workers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "running": self.running,
            "database_url": mask_password(self.database_url),
            "temporal_address": self.temporal_address,
            "namespace": self.namespace,
            "task_queue": self.task_queue,
            "ui_url": self.ui_url,
            "api_url": self.api_url,
            "host_url": self.host_url,
            "components": [asdict(c) for c in self.components],
        }


def mask_password(url: str | None) -> str | None:
    from seatflow.redact import mask_url

    return mask_url(url)


def scrub(exc: BaseException, url: str | None) -> str:
    """An error's text without the database password (drivers may quote the URL)."""
    from seatflow.redact import redact_secrets, url_password

    return redact_secrets(str(exc), (url_password(url),))
