"""The installed package runs: build the wheel from the same files the image's
build step copies (pyproject.toml, README.md, src/), install it NOT editable
into a fresh virtual environment, and from there, in a directory outside the
checkout: run the image's import check, migrate an empty database, start the
worker and the shadow worker, and settle bookings through the installed CLI.

Every test but this one runs on the editable install, which imports from src/
and so cannot notice a module or a data file the wheel leaves out.

The fresh venv gets no pip and no dependencies of its own: a `.pth` file puts
this venv's site-packages after its own, so the third-party libraries come from
there while the wheel's files come first. A plain path line in a `.pth` does not
run that directory's own `.pth` files, so the editable install's pointer to
src/ is not followed: the test asserts that every seatflow module it imports
lives inside the new venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support import floorplan, slot

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RUN_ID = uuid.uuid4().hex[:8]
# Variables of the developer's shell that would change the path a booking takes.
CLEARED = ("PYTHONPATH", "DATABASE_URL", "TEMPORAL_ADDRESS", "SEATFLOW_HOME",
           "SEATFLOW_MAILBOX_DIR", "SEATFLOW_MAIL_TRANSPORT", "SEATFLOW_MAX_ATTEMPTS")


def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv holding the seatflow wheel (not editable); yields its directory."""
    tmp = tmp_path_factory.mktemp("wheel")
    context = tmp / "context"
    context.mkdir()
    # The image's build context (deploy/Dockerfile: COPY pyproject.toml README.md, src).
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, context / name)
    shutil.copytree(ROOT / "src", context / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    dist = tmp / "dist"
    # Offline: no index, no build isolation (the test extra brings setuptools and wheel).
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--wheel-dir", str(dist), str(context)], cwd=tmp)
    wheels = list(dist.glob("seatflow-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheels[0])], cwd=tmp)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(run([str(python), "-c", where], cwd=tmp).stdout.strip())
    (purelib / "_seatflow_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    yield venv


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in CLEARED and not k.startswith("FEATURE_ASSIGNMENT_PIPELINE")}
    return {**env, **extra}


def test_the_wheel_carries_every_module_and_the_migrations(installed: Path, tmp_path: Path) -> None:
    python = str(installed / "bin" / "python")
    probe = (
        "import json, activities.booking, activities.shadow, seatflow, seatflow.cli, "
        "shadow_worker, worker, workflows.booking, workflows.shadow\n"
        "from seatflow.storage.db import MIGRATIONS_DIR\n"
        "mods = [worker, shadow_worker, seatflow, seatflow.cli, workflows.booking, "
        "workflows.shadow, activities.booking, activities.shadow]\n"
        "print(json.dumps({'files': [m.__file__ for m in mods], 'migrations': "
        "sorted(p.name for p in MIGRATIONS_DIR.glob('**/*') if p.is_file() "
        "and '__pycache__' not in p.parts), 'dir': str(MIGRATIONS_DIR)}))"
    )
    found = json.loads(run([python, "-c", probe], cwd=tmp_path, env=clean_env()).stdout)
    for file in [*found["files"], found["dir"]]:
        assert Path(file).is_relative_to(installed), f"{file} is not inside {installed}"
    shipped = sorted(
        p.name for p in (ROOT / "src/seatflow/storage/migrations").glob("**/*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert found["migrations"] == shipped

    # The host page's templates, script and stylesheet are package data: the
    # installed app serves the page and its files (no database needed for them).
    pages = (
        "import json\n"
        "from fastapi.testclient import TestClient\n"
        "from seatflow.api.app import create_app\n"
        "from seatflow.api.routes.host import HERE\n"
        "from seatflow.config import load_settings\n"
        "app = TestClient(create_app(load_settings(DATABASE_URL='postgresql://x@127.0.0.1/x'), []))\n"
        "answers = {p: app.get(p) for p in ('/host/r1', '/host/static/host.js', "
        "'/host/static/host.css')}\n"
        "print(json.dumps({'dir': str(HERE), 'files': sorted(str(f.relative_to(HERE)) for d in "
        "('templates', 'static') for f in (HERE / d).iterdir()), 'answers': {p: [a.status_code, "
        "len(a.text)] for p, a in answers.items()}}))"
    )
    served = json.loads(run([python, "-c", pages], cwd=tmp_path, env=clean_env()).stdout)
    assert Path(served["dir"]).is_relative_to(installed)
    api_dir = ROOT / "src/seatflow/api"
    assert served["files"] == sorted(str(f.relative_to(api_dir)) for d in ("templates", "static")
                                     for f in (api_dir / d).iterdir())
    assert all(status == 200 and size > 500 for status, size in served["answers"].values()), \
        served["answers"]

    # The image's build step runs exactly this check against the installed wheel.
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    check = re.search(r'/opt/seatflow/bin/python -c "([^"]+)"', dockerfile)
    assert check, "deploy/Dockerfile no longer checks its imports after pip install"
    run([python, "-c", check.group(1)], cwd=tmp_path, env=clean_env())


async def test_the_installed_worker_settles_bookings(
    installed: Path, tmp_path: Path, pg_url: str, dev_env: WorkflowEnvironment,
) -> None:
    """Migrate an empty database, run both workers and the CLI from the wheel: a V3
    booking and a legacy booking (with its shadow) are confirmed and mailed."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    from seatflow.storage.db import libpq_url

    database = f"seatflow_wheel_{RUN_ID}"
    admin = await asyncpg.connect(libpq_url(pg_url))
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    url = make_url(pg_url).set(database=database).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(
            settle_from_the_wheel, installed, tmp_path, url,
            dev_env.client.service_client.config.target_host, dev_env.client.namespace,
        )
    finally:
        admin = await asyncpg.connect(libpq_url(pg_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


def settle_from_the_wheel(installed: Path, tmp_path: Path, url: str, address: str,
                          namespace: str) -> None:
    bin_dir = installed / "bin"
    home, mailbox = tmp_path / "home", tmp_path / "mailbox"
    home.mkdir()
    v3_restaurant, legacy_restaurant = f"wheel-v3-{RUN_ID}", f"wheel-legacy-{RUN_ID}"
    env = clean_env(
        DATABASE_URL=url,
        TEMPORAL_ADDRESS=address,
        TEMPORAL_NAMESPACE=namespace,
        SEATFLOW_HOME=str(home),
        SEATFLOW_MAILBOX_DIR=str(mailbox),
        SEATFLOW_TASK_QUEUE=f"wheel-{RUN_ID}",
        SEATFLOW_SHADOW_TASK_QUEUE=f"wheel-shadow-{RUN_ID}",
        SEATFLOW_METRICS_ADDRESS="off",
        SEATFLOW_LOG_FORMAT="console",
        FEATURE_ASSIGNMENT_PIPELINE_V3="true",
        FEATURE_ASSIGNMENT_PIPELINE_V3_RESTAURANTS=v3_restaurant,
        FEATURE_ASSIGNMENT_PIPELINE_V3_SHADOW="true",
    )
    seatflow = str(bin_dir / "seatflow")
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        migrated = run([seatflow, "db", "upgrade"], cwd=home, env=env)
        assert "database at head" in migrated.stdout

        banners = {"worker": "seatflow worker: task queue",
                   "shadow_worker": "seatflow shadow worker: task queue"}
        for module in banners:
            log = tmp_path / f"{module}.log"
            with log.open("wb") as out:
                procs.append((subprocess.Popen(
                    [str(bin_dir / "python"), "-m", module], cwd=home, env=env, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True), log))
        for (proc, log), banner in zip(procs, banners.values(), strict=True):
            deadline = time.monotonic() + 60
            while banner not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, f"{log.name} exited {proc.returncode}:\n" \
                                            f"{log.read_text()}"
                time.sleep(0.2)
            assert banner in log.read_text(), log.read_text()

        start = slot(days=3, hour=19).strftime("%Y-%m-%dT%H:%M")
        booked: dict[str, str] = {}
        for rid in (v3_restaurant, legacy_restaurant):
            plan = home / f"{rid}.json"
            plan.write_text(json.dumps(floorplan(rid, [{"id": "T1", "capacity": 2},
                                                       {"id": "T2", "capacity": 4}])))
            run([seatflow, "restaurants", "import", str(plan)], cwd=home, env=env)
            created = json.loads(run(
                [seatflow, "bookings", "create", "--restaurant", rid, "--party", "3",
                 "--start", start, "--name", "Ada", "--email", f"ada-{rid}@example.com",
                 "--json"], cwd=home, env=env).stdout)
            booked[rid] = created["booking_id"]

        for rid, booking_id in booked.items():
            waited = subprocess.run([seatflow, "bookings", "wait", booking_id, "--timeout", "60"],
                                    cwd=home, env=env, capture_output=True, text=True,
                                    timeout=90, check=False)
            logs = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for _, log in procs)
            assert waited.returncode == 0, f"{rid}: {waited.stdout}{waited.stderr}\n{logs}"
            shown = json.loads(run([seatflow, "bookings", "show", booking_id, "--json"],
                                   cwd=home, env=env).stdout)
            assert shown["assignment_state"] == "confirmed", shown
            assert shown["tables"] == ["T2"], shown
            assert shown["email"]["sent"] is True and shown["email"]["count"] == 1, shown
            mails = sorted(mailbox.glob(f"{booking_id}-*.eml"))
            assert len(mails) == 1, sorted(p.name for p in mailbox.iterdir())
            assert f"ada-{rid}@example.com" in mails[0].read_text()

        # The legacy booking ran its shadow V3 on the shadow queue, read-only.
        report: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            report = json.loads(run([seatflow, "shadow-report", "--restaurant", legacy_restaurant,
                                     "--json"], cwd=home, env=env).stdout)
            if report.get("compared"):
                break
            time.sleep(0.5)
        assert report.get("compared") == 1, report
        assert report["shadow_errors"] == {**report["shadow_errors"], "count": 0}, report
        assert report["v3"] == {**report["v3"], "seated": 1}, report
        for proc, log in procs:
            assert proc.poll() is None, f"{log.name} died:\n{log.read_text()}"
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
