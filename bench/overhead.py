"""What a booking's worker CPU costs above the SDK's floor, piece by piece
(issue 27, docs/performance.md "What running 100 at once adds").

One worker process serves, on one Temporal dev server and no database:

- `floor`: bench/noop_worker.py's `BenchLocalWorkflow` with three no-op
  local activities (a booking's shape, nothing in it);
- `booking`: the real BookingAssignmentWorkflow, with stand-in activities
  that return the results recorded in tests/histories/happy_path_email_local
  (the real shapes and payload sizes): the same markers, patches and
  search-attribute upserts as a confirmed booking, no database, no engine,
  no message.

The driver starts 100 at once of one kind, waits for all, and reads the
worker process's CPU time (psutil) around the burst; kinds alternate,
`--rounds` times. The worker is started per variant (`--variants`), each a
production setting switched off or on, so the difference between two
variants is that piece's cost:

    python bench/overhead.py [--rounds 6] [--burst 100] [--variants prod,no-upsert]

Variants (comma-separated flags after the name, `prod` = the production
worker's settings: its data converter, runtime, JSON logging at INFO, the
shadow worker beside it):

- `bare`: none of those (default converter, default runtime, no logging
  configured, no shadow worker);
- `no-upsert`: `_publish` sets the details only (no search-attribute upsert);
- `no-log`: logging configured at WARNING;
- `no-shadow`: without the shadow worker;
- `default-converter`: Temporal's default data converter;
- `wft-N`: workflow activations on a pool of N threads (the workers use 1:
  workflows/runner.py ACTIVATION_THREADS);
- `threads`: activations on the SDK's default pool (max_concurrent_workflow_tasks
  threads);
- `inline`: activations on the event loop's thread (the SDK's debug_mode).

Prints one JSON document: per variant and kind, the worker's CPU ms per
workflow of each round, mean and standard deviation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from temporalio import activity

from seatflow.domain.messages import (
    AttemptRequest,
    AttemptResult,
    BeginResult,
    EmailRequest,
    EmailResult,
    VerifyRequest,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ROOT, book, embedded_stack

HISTORY = ROOT / "tests" / "histories" / "happy_path_email_local.json"
FLAGS = ("bare", "no-upsert", "no-log", "no-shadow", "default-converter", "wft-1", "wft-2",
         "wft-4", "threads", "inline")


# ------------------------------------------------------------------ worker


def _canned() -> dict[str, Any]:
    """The three activity results of a confirmed booking, as recorded."""
    from temporalio.api.history.v1 import History
    from temporalio.client import WorkflowHistory

    from workflows.converter import DATA_CONVERTER

    history = WorkflowHistory.from_json("h", HISTORY.read_text())
    del History
    results: list[Any] = []
    for event in history.events:
        if not event.HasField("marker_recorded_event_attributes"):
            continue
        details = event.marker_recorded_event_attributes.details
        if "result" in details:
            results.append(details["result"].payloads[0])
    conv = DATA_CONVERTER.payload_converter
    begin, attempt, email = results
    return {"begin_booking": conv.from_payload(begin, BeginResult),
            "run_attempt": conv.from_payload(attempt, AttemptResult),
            "send_confirmation_email": conv.from_payload(email, EmailResult)}


CANNED: dict[str, Any] = {}


class StandIn:
    """The booking's three activities, returning the recorded results."""

    @activity.defn(name="begin_booking")
    async def begin_booking(self, req: VerifyRequest) -> BeginResult:
        return CANNED["begin_booking"]  # type: ignore[no-any-return]

    @activity.defn(name="run_attempt")
    async def run_attempt(self, req: AttemptRequest) -> AttemptResult:
        return CANNED["run_attempt"]  # type: ignore[no-any-return]

    @activity.defn(name="send_confirmation_email")
    async def send_confirmation_email(self, req: EmailRequest) -> EmailResult:
        return CANNED["send_confirmation_email"]  # type: ignore[no-any-return]


async def serve(address: str, queue: str, flags: set[str]) -> None:
    import signal

    import noop_worker
    from temporalio.client import Client
    from temporalio.converter import DataConverter
    from temporalio.worker import Worker

    import worker as production
    from seatflow.config import load_settings
    from workflows.booking import BookingAssignmentWorkflow, core
    from workflows.converter import DATA_CONVERTER
    from workflows.runner import workflow_runner

    bare = "bare" in flags
    settings = load_settings()
    if not bare:
        from seatflow.logging import configure_logging

        configure_logging("json")
        if "no-log" in flags:
            import logging

            logging.getLogger().setLevel(logging.WARNING)
    if "no-upsert" in flags:
        def details_only(self: Any) -> None:
            from temporalio import workflow

            s = self.s
            workflow.set_current_details(f"{s.state} (v{s.version}), attempts {s.attempts}")
        core.WorkflowCore._publish = details_only  # type: ignore[method-assign]
    CANNED.update(_canned())

    stand_in = StandIn()
    if bare:
        client = await Client.connect(address)
    else:
        from seatflow.ops.telemetry import make_runtime

        client = await Client.connect(address, runtime=make_runtime(settings))
    if not bare and "default-converter" not in flags:
        config = client.config()
        config["data_converter"] = DATA_CONVERTER
        client = Client(**config)
    del DataConverter
    from concurrent.futures import ThreadPoolExecutor

    extra: dict[str, Any] = {}
    if "inline" in flags:
        extra["debug_mode"] = True
    elif "threads" not in flags:  # the workers' pool unless wft-N says otherwise
        threads = next((n for n in (1, 2, 4) if f"wft-{n}" in flags), 1)
        extra["workflow_task_executor"] = ThreadPoolExecutor(threads)
    workers = [Worker(
        client, task_queue=queue, **extra,
        workflows=[BookingAssignmentWorkflow, noop_worker.LocalWorkflow],
        activities=[stand_in.begin_booking, stand_in.run_attempt,
                    stand_in.send_confirmation_email, noop_worker.noop],
        workflow_runner=workflow_runner(),
        max_concurrent_activities=production.MAX_CONCURRENT_ACTIVITIES,
        max_concurrent_workflow_tasks=production.MAX_CONCURRENT_WORKFLOW_TASKS)]
    if not bare and "no-shadow" not in flags:
        from seatflow.storage.db import make_engine
        from shadow_worker import build_shadow_worker

        engine = make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")  # never used
        workers.append(build_shadow_worker(client, engine, settings,
                                           task_queue=f"{queue}-shadow"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for w in workers:
        await w.__aenter__()
    print("overhead worker ready", flush=True)
    await stop.wait()
    for w in reversed(workers):
        await w.__aexit__(None, None, None)


# ------------------------------------------------------------------ driver

# `real+mail-pool`: seatflow.mail.deliver hands the file mailbox's write to
# the mail pool, as it did before it wrote on the loop (set before the
# activities import it).
MAIL_POOL = """
import asyncio
import seatflow.mail as m
async def _deliver(transport, claim, sender):
    message = m.build_message(claim, sender)
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(m._mail_pool, transport.deliver,
                                          f"{claim.booking_id}-{claim.kind}", message)
    except m.MailError:
        raise
    except Exception as exc:
        raise m.classify(exc) from None
m.deliver = _deliver
"""


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


async def one_burst(client: Any, queue: str, kind: str, count: int, pid: int) -> float:
    from seatflow.domain.messages import BookingWorkflowInput
    from seatflow.domain.workflow_ids import booking_workflow_id

    tag = uuid.uuid4().hex[:8]
    before = cpu_seconds(pid)
    if kind == "floor":
        handles = await asyncio.gather(*(
            client.start_workflow("BenchLocalWorkflow", 3, id=f"floor-{tag}-{i}",
                                  task_queue=queue) for i in range(count)))
    else:
        handles = await asyncio.gather(*(
            client.start_workflow("BookingAssignmentWorkflow",
                                  BookingWorkflowInput(booking_id=f"b{tag}{i:04d}"),
                                  id=booking_workflow_id(f"b{tag}{i:04d}"), task_queue=queue)
            for i in range(count)))
    await asyncio.gather(*(h.result() for h in handles))
    await asyncio.sleep(0.5)  # the last completions' acknowledgements
    return (cpu_seconds(pid) - before) * 1000 / count


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(argv, env=env, stdout=out, stderr=out, cwd=ROOT)


async def wait_ready(log: Path, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if "overhead worker ready" in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise SystemExit(f"worker exited:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(0.1)
    raise SystemExit("worker not ready")


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    async with embedded_stack("seatflow-overhead-") as stack:
        return await drive_on(stack, args)


async def drive_on(stack: Any, args: argparse.Namespace) -> dict[str, Any]:
    from seatflow.storage.db import make_engine

    kinds = args.kinds.split(",")
    variants = [(v, set(v.split("+")) - {"prod"}) for v in args.variants.split(",")]
    for _, flags in variants:
        if flags - set(FLAGS):
            raise SystemExit(f"unknown flags {sorted(flags - set(FLAGS))}; known: {FLAGS}")
    if not set(kinds) - {"real"}:
        variants = []
    client, address = stack.client, stack.address
    engine = make_engine(stack.database_url, pool_size=20, max_overflow=20)
    logdir = Path(args.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, list[float]]] = {v: {k: [] for k in kinds if k != "real"}
                                                   for v, _ in variants}
    procs: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for name in (args.real.split(",") if "real" in kinds else []):
            queue = f"ovh-{name}-{uuid.uuid4().hex[:6]}"
            log = logdir / f"worker-{name}.log"
            # `real+threads`: the production worker with activations on the
            # SDK's thread pool (workflows/runner.py ACTIVATION_THREADS);
            # `real+mail-pool`: the file mailbox written on the mail pool
            code = ("import workflows.runner as r; r.ACTIVATION_THREADS = "
                    f"{None if 'threads' in name else 1}; "
                    f"{MAIL_POOL if 'mail-pool' in name else ''}"
                    "import worker; worker.main()")
            proc = start([sys.executable, "-c", code],
                         stack.process_env(SEATFLOW_TASK_QUEUE=queue), log)
            procs[name] = (proc, queue)
            results[name] = {"real": []}
            print(f"{name}: pid {proc.pid}", file=sys.stderr, flush=True)
            await book(engine, client, queue, f"w{uuid.uuid4().hex[:4]}", 20, 5, seed=1)
        for name, flags in variants:
            if not set(kinds) - {"real"}:
                break
            queue = f"ovh-{uuid.uuid4().hex[:6]}"
            log = logdir / f"worker-{name}.log"
            log.write_text("")
            proc = start([sys.executable, __file__, "--serve", address, queue,
                          ",".join(sorted(flags))], stack.process_env(), log)
            await wait_ready(log, proc)
            procs[name] = (proc, queue)
            print(f"{name}: pid {proc.pid}", file=sys.stderr, flush=True)
            for kind in ("floor", "booking"):  # warm-up
                await one_burst(client, queue, kind, 20, proc.pid)
        runs = [(name, k) for name, _ in variants for k in kinds if k != "real"]
        runs += [(name, "real") for name in (args.real.split(",") if "real" in kinds else [])]
        for r in range(args.rounds):
            for name, kind in (runs if r % 2 == 0 else runs[::-1]):
                proc, queue = procs[name]
                if kind == "real":
                    before = cpu_seconds(proc.pid)
                    await book(engine, client, queue, f"r{uuid.uuid4().hex[:6]}", args.burst,
                               10, seed=r)
                    await asyncio.sleep(0.5)
                    ms = (cpu_seconds(proc.pid) - before) * 1000 / args.burst
                else:
                    ms = await one_burst(client, queue, kind, args.burst, proc.pid)
                results[name][kind].append(round(ms, 2))
                print(f"round {r} {name} {kind}: {ms:.2f} ms "
                      f"(load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    finally:
        for proc, _ in procs.values():
            proc.terminate()
        for proc, _ in procs.values():
            proc.wait(timeout=15)
        await engine.dispose()

    def summary(xs: list[float]) -> dict[str, Any]:
        return {"rounds": xs, "mean": round(statistics.mean(xs), 2),
                "sd": round(statistics.stdev(xs), 2) if len(xs) > 1 else 0.0}

    return {"burst": args.burst, "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "worker_cpu_ms_per_workflow": {
                name: {kind: summary(xs) for kind, xs in kinds.items()}
                | ({"booking_minus_floor": summary([
                    round(b - f, 2) for b, f in zip(kinds["booking"], kinds["floor"],
                                                    strict=True)])}
                   if "booking" in kinds and "floor" in kinds else {})
                for name, kinds in results.items()}}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        address, queue, flags = sys.argv[2], sys.argv[3], sys.argv[4]
        asyncio.run(serve(address, queue, set(filter(None, flags.split(",")))))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--variants", default="prod,bare")
    parser.add_argument("--kinds", default="floor,booking",
                        help="floor, booking (canned activities), real (the production "
                             "worker with PostgreSQL)")
    parser.add_argument("--real", default="real,real+threads",
                        help="the production workers of kind `real`: real (as it is), "
                             "real+threads (activations on the SDK's thread pool), "
                             "real+mail-pool (the file mailbox written on the mail pool)")
    parser.add_argument("--logdir", default=f"/tmp/seatflow-overhead-{os.getpid()}")
    args = parser.parse_args()
    started = time.time()
    out = asyncio.run(drive(args))
    out["seconds"] = round(time.time() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
