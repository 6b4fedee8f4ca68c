"""The worker's Prometheus endpoint exports every metric that the alert rules
and the Grafana dashboard use, after one booking ran through it."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from seatflow import metrics
from seatflow.config import Settings
from seatflow.ops.telemetry import BookingStateSampler, MetricsAddressError, make_runtime
from seatflow.service.bookings import start_booking_workflow
from tests.smtp_server import SmtpServer
from tests.support import floorplan, import_plan, new_booking, slot
from worker import build_worker

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "seatflow.json"
# A metric name in PromQL: our own and the SDK's.
METRIC_NAME = re.compile(r"\b((?:seatflow|temporal)_[a-z0-9_]+)\b")
# Exposition-format sample lines: name{labels} value  or  name value
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", re.MULTILINE)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"')
SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?$")
# Added by the Prometheus scrape, not by the worker.
SCRAPE_LABELS = frozenset({"job", "instance"})
# Labels whose value is the same on every worker; others (task_queue) vary.
FIXED_LABELS = ("service", "service_name", "namespace", "workflow_type")


def alert_expressions() -> list[str]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in data["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    data = json.loads(DASHBOARD.read_text())
    exprs = []
    for panel in data["panels"]:
        for target in panel.get("targets", []):
            exprs.append(target["expr"])
    return exprs


def unit_test_series() -> list[tuple[str, dict[str, str]]]:
    """The synthetic input series of alerts_test.yml: (name, labels)."""
    data = yaml.safe_load(ALERTS_TEST.read_text())
    series = []
    for case in data["tests"]:
        for item in case["input_series"]:
            match = SERIES.match(item["series"])
            assert match, f"unparsable series in alerts_test.yml: {item['series']}"
            series.append((match.group(1), dict(LABEL.findall(match.group(2) or ""))))
    return series


def metric_names(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in METRIC_NAME.findall(expr)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def sample_value(exposition: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for match in SAMPLE.finditer(exposition):
        if match.group(1) != name:
            continue
        label_text = match.group(2) or ""
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(match.group(3))
    return total


@pytest.fixture
def process_meter_reset() -> Iterator[None]:
    yield
    metrics.use_process_meter(None)


def test_rules_and_dashboard_use_our_metrics() -> None:
    """Every alert rule is there, and both files name metrics."""
    data = yaml.safe_load(ALERTS.read_text())
    rules = {r["alert"]: r["labels"]["severity"] for g in data["groups"] for r in g["rules"]}
    assert rules == {
        "SeatflowAssignmentErrorRateHigh": "P1",
        "SeatflowCircuitBreakerOpen": "P2",
        "SeatflowEmailDeliveryFailing": "P2",
        "SeatflowManualReviewRateHigh": "P2",
        "SeatflowAssignmentLatencyP95High": "P3",
    }
    assert metric_names(alert_expressions()) >= {
        metrics.ASSIGNMENT_OUTCOMES, metrics.CIRCUIT_BREAKER_STATE, metrics.EMAIL_FAILURES,
        metrics.ASSIGNMENT_LATENCY + "_bucket",
    }
    assert metric_names(dashboard_expressions()) >= {
        metrics.PERMIT_WAIT + "_bucket", metrics.BOOKINGS_IN_STATE,
        metrics.CIRCUIT_BREAKER_STATE,
    }


def test_a_taken_metrics_port_is_reported_with_the_variable_name(
    test_settings: Settings, process_meter_reset: None,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = test_settings.model_copy(update={"metrics_address": f"127.0.0.1:{port}"})
        with pytest.raises(MetricsAddressError, match="SEATFLOW_METRICS_ADDRESS"):
            make_runtime(settings)


async def test_worker_exports_every_metric_of_the_rules_and_dashboard(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str,
    process_meter_reset: None,
) -> None:
    port = free_port()
    # SMTP, as deployed: the confirmation is then an activity task (with the
    # file mailbox it is a local activity), so the activity metrics exist too.
    smtp = await SmtpServer().start()
    settings = test_settings.model_copy(update={
        "metrics_address": f"127.0.0.1:{port}", "mail_transport": "smtp",
        "smtp_host": "127.0.0.1", "smtp_port": smtp.port})
    runtime = make_runtime(settings)
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        runtime=runtime,
    )
    rid = f"m-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2},
                                                 {"id": "T2", "capacity": 4}]))
    booking = await new_booking(db_engine, rid, 2)
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    async with (BookingStateSampler(db_engine, interval=0.2),
                build_worker(client, db_engine, settings, task_queue=queue)):
        handle = await start_booking_workflow(
            client, booking_id=booking, restaurant_id=rid, party_size=2, start=slot(),
            task_queue=queue)
        outcome = await handle.result()
        await asyncio.sleep(0.5)  # one more sample of the state gauge
        exposition = await asyncio.to_thread(scrape, port)
    await smtp.stop()
    assert outcome.state == "confirmed"
    exported = {m.group(1) for m in SAMPLE.finditer(exposition)}
    used = metric_names(alert_expressions()) | metric_names(dashboard_expressions())
    missing = sorted(used - exported)
    assert not missing, (
        f"used in alerts.yml or the dashboard but not exported: {missing}\n"
        f"exported: {sorted(n for n in exported if n.startswith(('seatflow', 'temporal')))}"
    )
    # The alert rules' unit tests feed series named and labelled as exported:
    # same name, same label names (beyond the scrape's), same fixed values.
    exported_labels: dict[str, list[dict[str, str]]] = {}
    for m in SAMPLE.finditer(exposition):
        exported_labels.setdefault(m.group(1), []).append(dict(LABEL.findall(m.group(2) or "")))
    unmatched = []
    for name, labels in unit_test_series():
        own = {k: v for k, v in labels.items() if k not in SCRAPE_LABELS}
        if not any(set(own) == set(got) and all(own.get(k) == got.get(k) for k in FIXED_LABELS)
                   for got in exported_labels.get(name, [])):
            unmatched.append(f"{name}{sorted(own)}")
    assert not unmatched, (
        f"alerts_test.yml feeds series no worker exports: {sorted(set(unmatched))}\n"
        f"exported: {sorted((n, sorted(ls[0])) for n, ls in exported_labels.items() if n.startswith('seatflow'))}"
    )
    # The booking itself was counted, by pipeline and outcome.
    assert sample_value(exposition, metrics.ASSIGNMENT_OUTCOMES,
                        pipeline="v3", outcome="confirmed") >= 1
    assert sample_value(exposition, metrics.ASSIGNMENT_LATENCY + "_count", pipeline="v3") >= 1
    assert sample_value(exposition, metrics.EMAILS_SENT) >= 1
