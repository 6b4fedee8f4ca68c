"""The embedded local stack behind `seatflow dev up | down | status`.

PostgreSQL (pgserver, data in var/pg), the Temporal dev server (state in
var/temporal.db, Web UI), migrations, worker processes, the intake relay and
the HTTP API, all started in the background in their own sessions so they
outlive the command that started them. Logs go to var/log/, pid records to
var/run/. A pid record holds the process start time, so `down` never signals
an unrelated process that reused the pid. `DATABASE_URL`, and a non-loopback
`TEMPORAL_ADDRESS`, point at external servers: then nothing is started for them.

One module per idea:

- `stack`: up, status, down, restart_workers (the order of the components);
- one module per component, each with its up / status / stop: `postgres`,
  `temporal`, `workers`, `relay` (intake relay), `api`;
- `records`: var/ paths, pid records, starting and stopping a process, the lock;
- `probes`: ports, database, task-queue pollers, search-attribute registration;
- `plan`: where each piece lives (options, environment, .env) and the
  environment the started processes get;
- `model`: what `status` reports, and the error.

docs/devstack.md is the user-facing description.
"""

from __future__ import annotations

from seatflow.ops.devstack.model import DevStackError, StackStatus, mask_password
from seatflow.ops.devstack.stack import down, restart_workers, status, up

__all__ = ["DevStackError", "StackStatus", "down", "mask_password", "restart_workers", "status",
           "up"]
