"""The Temporal Web UI, as an operator uses it, in a real headless Chromium.

A Temporal dev server with its Web UI on (own free ports), a real worker with
fast retries, and a booking for a table that is already taken: it uses its
five attempts and waits in manual review. The browser then loads the workflow
list filtered by `AssignmentState="manual_review"`, finds the booking's row,
opens it, and reads the workflow's summary and details (restaurant, party,
time; set when the workflow starts) and current details (state, attempts and
last reason; set by the workflow). The guest's name and email were stored
with the booking in PostgreSQL but must appear nowhere on either page, nor
anywhere in the workflow's history.

The screenshot of the opened workflow is saved to var/temporal-ui/ (the one
in docs/ was taken from it).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.config import Settings
from seatflow.domain.intake import NewBooking
from seatflow.domain.search_attributes import ALL, ASSIGNMENT_STATE
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.service.bookings import create_booking
from tests.conftest import binary
from tests.support import floorplan, import_plan, listed, slot, wait_for_state
from tests.system_tools import require_tool
from worker import build_worker

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "temporal-ui"
GUEST_NAME = "Ingrid Vandersloot"
GUEST_EMAIL = "ingrid.vandersloot@example.org"
# Chromium as root in a container, with no network but loopback: no sandbox,
# no GPU, and none of the background fetches that would only fail.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions",
]
PAGE_TIMEOUT_MS = 20_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture(scope="module")
async def ui_env() -> AsyncIterator[tuple[Any, str]]:
    """A dev server of our own with the Web UI on; yields (env, UI base URL)."""
    from temporalio.testing import WorkflowEnvironment

    port, ui_port = free_port(), free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=list(ALL),
        dev_server_log_level="error",
        port=port,
        ui=True,
        ui_port=ui_port,
    )
    try:
        yield env, f"http://127.0.0.1:{ui_port}"
    finally:
        await env.shutdown()


async def booking_in_manual_review(env: Any, db_engine: Any, queue: str,
                                   rid: str) -> tuple[str, str]:
    """Two bookings for a one-table floor at one time: the first is confirmed,
    the second exhausts its attempts and waits for an operator. Needs a
    running worker on `queue`."""
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 4}]))
    start = slot(days=3)
    first = await create_booking(db_engine, env.client, NewBooking(
        restaurant_id=rid, party_size=4, start=start, zone_preference=None,
        guest_name="First Guest", guest_email="first.guest@example.org"), task_queue=queue)
    assert await wait_for_state(db_engine, first.booking_id, "confirmed") == "confirmed"
    second = await create_booking(db_engine, env.client, NewBooking(
        restaurant_id=rid, party_size=3, start=start, zone_preference=None,
        guest_name=GUEST_NAME, guest_email=GUEST_EMAIL), task_queue=queue)
    state = await wait_for_state(db_engine, second.booking_id, "manual_review")
    assert state == "manual_review", f"expected manual_review, booking is {state}"
    # The workflow publishes its state to Temporal after the database
    # transition: wait until visibility has it too.
    handle = env.client.get_workflow_handle(second.workflow_id)
    published = None
    for _ in range(300):
        published = (await handle.describe()).typed_search_attributes.get(ASSIGNMENT_STATE)
        if published == "manual_review":
            break
        await asyncio.sleep(0.1)
    assert published == "manual_review", f"Temporal shows AssignmentState={published!r}"
    # The UI's list asks the visibility store, which indexes the change a
    # moment later (longer on a busy box): wait until the page's own query
    # finds the workflow.
    ids = await listed(env.client, f'AssignmentState="manual_review" AND RestaurantId="{rid}"',
                       second.workflow_id, timeout=30)
    assert second.workflow_id in ids, f"visibility lists {ids}"
    return second.booking_id, second.workflow_id


async def page_text(page: Any) -> str:
    """The text of the page and of every frame in it (the UI renders the
    summary and details as markdown in iframes)."""
    texts = []
    for frame in page.frames:
        with contextlib.suppress(Exception):  # a frame may detach while we read
            texts.append(await frame.locator("body").inner_text(timeout=2_000))
    return "\n".join(texts)


async def wait_for_text(page: Any, pattern: str, timeout: float = 20.0) -> str:
    """Poll until `pattern` (a regex) is on the page or in one of its frames."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    text = ""
    while loop.time() < deadline:
        text = await page_text(page)
        if re.search(pattern, text):
            return text
        await asyncio.sleep(0.25)
    raise AssertionError(f"{pattern!r} not shown within {timeout:.0f} s; the page shows:\n{text}")


async def test_operator_finds_a_manual_review_booking_in_the_temporal_ui(
    ui_env: tuple[Any, str], db_engine: AsyncEngine, test_settings: Settings, unique_id: str,
) -> None:
    chromium = require_tool("chromium", "chromium")
    from playwright.async_api import async_playwright, expect

    env, base = ui_env
    rid = f"ui-{unique_id}"
    queue = f"ui-{uuid.uuid4().hex[:8]}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    query = 'AssignmentState="manual_review"'
    list_url = f"{base}/namespaces/{env.client.namespace}/workflows?query={quote(query)}"
    # The worker keeps running while the browser looks: the UI asks the
    # workflow itself for its current details.
    async with (build_worker(env.client, db_engine, test_settings, task_queue=queue),
                async_playwright() as pw):
        booking_id, workflow_id = await booking_in_manual_review(env, db_engine, queue, rid)
        assert workflow_id == booking_workflow_id(booking_id)
        browser = await pw.chromium.launch(executable_path=chromium, headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            await page.goto(list_url)
            row_link = page.get_by_role("link", name=workflow_id)
            await expect(row_link).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            list_text = await page_text(page)
            await page.screenshot(path=str(SCREENSHOTS / "manual-review-list.png"))

            await row_link.click()
            await page.wait_for_url(re.compile(re.escape(workflow_id)))
            await page.get_by_role("tab", name="User Metadata").click()
            # Summary (set at start): restaurant, party and time. Current
            # details (set by the workflow): state, attempts and last reason.
            await wait_for_text(page, re.escape(f"{rid}: party of 3 at "))
            # Details (set at start): booking, party, restaurant, and where the guest is.
            await wait_for_text(page, re.escape(f"party of 3 at restaurant {rid}, "))
            await wait_for_text(page, re.escape(f"seatflow bookings show {booking_id}"))
            detail_text = await wait_for_text(page, r"manual_review \(v\d+\), attempts 5: \S")
            await page.screenshot(path=str(SCREENSHOTS / "manual-review-workflow.png"))
        finally:
            await browser.close()

    assert workflow_id in list_text
    history = [str(event) async for event in
               env.client.get_workflow_handle(workflow_id).fetch_history_events()]
    assert len(history) > 10 and any(rid in event for event in history)
    texts = [list_text, detail_text, "\n".join(history)]
    assert "all fitting tables are taken" in detail_text  # the last reason, in words
    for text in texts:
        for secret in (GUEST_NAME, GUEST_EMAIL, "Ingrid", "Vandersloot", "example.org"):
            assert secret.lower() not in text.lower(), f"{secret!r} is shown in the Temporal UI"
