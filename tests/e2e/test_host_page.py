"""The host page (`/host/{restaurant}`), as the floor staff use it, in a real
headless Chromium against the API (uvicorn), PostgreSQL, the Temporal dev
server and a real worker.

An evening like the demo's at a copy of the sample restaurant: the demo's
dinner book, every booking accepted without asking availability, and a phone
booking for a party of 20 that no automatic plan seats, so it waits in manual
review. The operator signs in with a token, and the test checks that every
bar sits on the row and at the time the API reports for its booking, that
the party of 20 is in the queue with its reason, and then seats it from the
page with the keyboard: the tables the demo's operator would push together,
the override shown and confirmed. The API then says confirmed on those
tables, and its bars appear on the timeline without a reload.

A host token sees the same evening with no review action anywhere, and no
guest email (nor full name) in the page, the board or the timeline JSON.

Screenshots go to var/host-timeline/.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.config import load_settings
from seatflow.domain.intake import NewBooking
from seatflow.domain.planning import BookingRequest
from seatflow.floorplan import parse_floorplan
from seatflow.ops.demo.operator import operator_tables
from seatflow.ops.demo.scenario import plan_evening
from seatflow.service.bookings import create_booking
from seatflow.storage.floorplans import import_floorplan
from seatflow.storage.restaurants import load_snapshot
from tests.api_support import ApiServer, Tokens, new_tokens, temporal_address, tokens_json
from tests.e2e.test_temporal_ui import CHROMIUM_ARGS, PAGE_TIMEOUT_MS
from tests.support import SETTLED, wait_for_state
from tests.system_tools import require_tool
from worker import build_worker

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "floorplans" / "harbour-kitchen.json"
SCREENSHOTS = ROOT / "var" / "host-timeline"
BOOKINGS = 36
BIG_PARTY = 20
BIG_NAME, BIG_EMAIL = "Ingrid Vandersloot", "ingrid.vandersloot@example.org"


@dataclass
class Evening:
    restaurant: str
    day: date
    tz: ZoneInfo
    big: str  # the party of 20, in manual review
    emails: list[str]
    names: list[str]
    settings: Any


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return new_tokens()


@pytest.fixture(scope="module")
def host_queue() -> str:
    return f"host-{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(scope="module")
async def evening(dev_env: Any, db_engine: AsyncEngine, pg_url: str, host_queue: str,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Evening]:
    """The evening, booked and settled, with its worker running for the module."""
    rid = f"host-{uuid.uuid4().hex[:8]}"
    data = json.loads(SAMPLE.read_text())
    data["restaurant"]["id"] = rid
    await import_floorplan(db_engine, parse_floorplan(data))
    tz = ZoneInfo(data["restaurant"]["timezone"])
    day = datetime.now(tz).date() + timedelta(days=3)
    settings = load_settings(
        DATABASE_URL=pg_url, SEATFLOW_MAILBOX_DIR=str(tmp_path_factory.mktemp("mailbox")),
        SEATFLOW_RETRY_BASE_SECONDS=0.02, SEATFLOW_RETRY_CAP_SECONDS=0.2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEATURE_ASSIGNMENT_PIPELINE_V3", "true")
        async with build_worker(dev_env.client, db_engine, settings, task_queue=host_queue):
            wanted = plan_evening(day, tz, BOOKINGS, random.Random(28))
            big = NewBooking(restaurant_id=rid, party_size=BIG_PARTY,
                             start=datetime.combine(day, datetime.min.time(), tzinfo=tz)
                             .replace(hour=19), zone_preference=None,
                             guest_name=BIG_NAME, guest_email=BIG_EMAIL)
            created = [await create_booking(db_engine, dev_env.client, big,
                                            task_queue=host_queue)]
            for b in wanted:
                created.append(await create_booking(db_engine, dev_env.client, NewBooking(
                    restaurant_id=rid, party_size=b.party_size, start=b.start,
                    zone_preference=b.zone, guest_name=b.guest_name,
                    guest_email=b.guest_email), task_queue=host_queue))
            states = await asyncio.gather(*(wait_for_state(db_engine, c.booking_id, SETTLED, 120)
                                            for c in created))
            assert all(s in SETTLED for s in states), states
            assert states[0] == "manual_review", states[0]
            yield Evening(rid, day, tz, created[0].booking_id,
                          [BIG_EMAIL, *(b.guest_email for b in wanted)],
                          [BIG_NAME, *(b.guest_name for b in wanted)], settings)


@pytest.fixture(scope="module")
def api(pg_url: str, dev_env: Any, host_queue: str, tokens: Tokens,
        evening: Evening) -> Iterator[ApiServer]:
    with ApiServer(database_url=pg_url, temporal_address=temporal_address(dev_env),
                   task_queue=host_queue,
                   tokens_json=tokens_json(tokens, evening.restaurant)) as server:
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    chromium = require_tool("chromium", "chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=chromium, headless=True,
                                            args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def sign_in(browser: Any, api: ApiServer, evening: Evening, token: str) -> Any:
    page = await browser.new_page(viewport={"width": 1680, "height": 1300})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    await page.goto(f"{api.url}/host/{evening.restaurant}?date={evening.day.isoformat()}")
    await page.locator("#token").fill(token)
    await page.keyboard.press("Enter")
    await page.locator(".board-root").wait_for()
    return page


BAR_GEOMETRY = """() => Array.from(document.querySelectorAll('.bar')).map(bar => {
    const lane = bar.closest('.lane').getBoundingClientRect();
    const box = bar.getBoundingClientRect();
    return {booking: bar.dataset.booking, row: bar.closest('.row').dataset.table,
            left: box.left - lane.left, right: box.right - lane.left, lane: lane.width};
})"""


async def check_bars_match_the_api(page: Any, http: httpx.AsyncClient, token: str,
                                   evening: Evening) -> dict[str, dict[str, Any]]:
    """Every bar is on a table the API gives its booking, from its start to its
    occupied_until on the page's axis; every seated booking has a bar on each
    of its tables. Returns the bookings the API reported, by id."""
    root = page.locator(".board-root")
    lo = datetime.fromisoformat(await root.get_attribute("data-window-start"))
    hi = datetime.fromisoformat(await root.get_attribute("data-window-end"))
    bars = await page.evaluate(BAR_GEOMETRY)
    assert bars, "no booking is shown"
    views: dict[str, dict[str, Any]] = {}
    for booking_id in sorted({b["booking"] for b in bars}):
        answer = await http.get(f"/v1/bookings/{booking_id}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        views[booking_id] = answer.json()
    span = (hi - lo).total_seconds()
    for bar in bars:
        view = views[bar["booking"]]
        assert bar["row"] in view["tables"], (bar, view["tables"])
        start = datetime.fromisoformat(view["start"])
        until = datetime.fromisoformat(view["occupied_until"])
        want_left = (start - lo).total_seconds() / span * bar["lane"]
        want_right = (until - lo).total_seconds() / span * bar["lane"]
        assert abs(bar["left"] - want_left) <= 2, (bar, view["start"])
        assert abs(bar["right"] - want_right) <= 2, (bar, view["occupied_until"])
    shown = sorted((b["booking"], b["row"]) for b in bars)
    timeline = (await http.get(f"/v1/restaurants/{evening.restaurant}/timeline",
                               params={"date": evening.day.isoformat()},
                               headers=bearer(token))).json()
    assert shown == sorted((b["booking_id"], t) for b in timeline["bookings"]
                           for t in b["tables"])
    return views


async def test_the_operator_sees_the_evening_and_seats_a_party_from_the_queue(
    api: ApiServer, evening: Evening, tokens: Tokens, browser: Any, db_engine: AsyncEngine,
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        page = await sign_in(browser, api, evening, tokens.operator)
        await check_bars_match_the_api(page, http, tokens.operator, evening)

        # The party of 20 waits in the queue, with the API's reason.
        big = (await http.get(f"/v1/bookings/{evening.big}",
                              headers=bearer(tokens.operator))).json()
        item = page.locator(f'.queue-item[data-booking="{evening.big}"]')
        await item.wait_for()
        assert big["last_reason"] and big["last_reason"] in await item.inner_text()
        assert f"Party of {BIG_PARTY}" in await item.inner_text()
        await page.screenshot(path=str(SCREENSHOTS / "operator-evening.png"), full_page=True)

        # The tables the demo's operator would push together for it.
        request = BookingRequest(
            booking_id=evening.big, party_size=BIG_PARTY,
            start=datetime.fromisoformat(big["start"]),
            end=datetime.fromisoformat(big["occupied_until"]), zone_preference=None)
        async with db_engine.connect() as conn:
            snapshot = await load_snapshot(conn, evening.restaurant, request.start, request.end,
                                           exclude_booking=evening.big)
        tables = operator_tables(snapshot, request, evening.settings.engine_config())
        assert tables, "the floor has no tables to push together for the party"

        # Seat it with the keyboard; no reload from here on.
        await page.evaluate("window.__sameDocument = 28")
        await item.locator('[data-action="seat"]').focus()
        await page.keyboard.press("Enter")
        await page.locator("#seat-panel").wait_for(state="visible")
        for table in tables:
            await page.locator(f'.table-pick[data-table="{table}"]').focus()
            await page.keyboard.press("Space")
        assert await page.locator('.table-pick[aria-pressed="true"]').count() == len(tables)
        await page.locator("#seat-confirm").focus()
        await page.keyboard.press("Enter")
        # More tables than an automatic plan may join: the override is shown
        # and must be confirmed; the safe choice has the focus.
        dialog = page.locator("#force-dialog")
        await dialog.wait_for(state="visible")
        assert "override" in (await page.locator("#force-reason").inner_text())
        assert await page.evaluate("document.activeElement.id") == "force-no"
        await page.screenshot(path=str(SCREENSHOTS / "operator-override.png"))
        await page.locator("#force-yes").focus()
        await page.keyboard.press("Enter")

        for table in tables:
            await page.locator(f'.row[data-table="{table}"] '
                               f'.bar[data-booking="{evening.big}"]').wait_for()
        await item.wait_for(state="detached")
        assert await page.evaluate("window.__sameDocument") == 28  # not reloaded
        after = (await http.get(f"/v1/bookings/{evening.big}",
                                headers=bearer(tokens.operator))).json()
        assert after["assignment_state"] == "confirmed", after
        assert sorted(after["tables"]) == sorted(tables)
        assigned = [h for h in after["history"] if h["to"] == "assigned"][-1]
        assert assigned["actor"] == "api:ops" and "forced over" in (assigned["reason"] or "")
        await check_bars_match_the_api(page, http, tokens.operator, evening)
        await page.screenshot(path=str(SCREENSHOTS / "operator-seated.png"), full_page=True)


async def test_a_host_sees_no_review_actions_and_no_guest_email(
    api: ApiServer, evening: Evening, tokens: Tokens, browser: Any,
) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        # A wrong token is refused on the page (and never kept).
        page = await browser.new_page(viewport={"width": 1680, "height": 1300})
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        await page.goto(f"{api.url}/host/{evening.restaurant}?date={evening.day.isoformat()}")
        await page.locator("#token").fill("not-a-valid-token-at-all")
        await page.keyboard.press("Enter")
        await page.get_by_text("That token was refused.").wait_for()
        assert await page.evaluate("sessionStorage.length") == 0
        await page.close()

        page = await sign_in(browser, api, evening, tokens.host)
        await check_bars_match_the_api(page, http, tokens.host, evening)
        root = page.locator(".board-root")
        assert await root.get_attribute("data-role") == "host"
        for hidden in ("[data-action]", ".table-pick", "#seat-panel:visible"):
            assert await page.locator(hidden).count() == 0, hidden
        text = await page.locator("body").inner_text()
        for word in ("Seat…", "Retry", "Reject"):
            assert word not in text
        # The token is kept in this tab only, never in the URL.
        assert tokens.host not in page.url
        timeline = await http.get(f"/v1/restaurants/{evening.restaurant}/timeline",
                                  params={"date": evening.day.isoformat()},
                                  headers=bearer(tokens.host))
        assert timeline.status_code == 200
        board = await http.get(f"/host/{evening.restaurant}/board",
                               params={"date": evening.day.isoformat()},
                               headers=bearer(tokens.host))
        assert board.status_code == 200 and "data-action" not in board.text
        everything = [await page.content(), text, timeline.text, board.text]
        for shown in everything:
            assert "@" not in shown
            for secret in [*evening.emails, *evening.names]:
                assert secret not in shown, f"{secret!r} is shown to a host"
        # The queue is there for the host to read, without actions.
        assert await page.locator(".queue-item").count() == len(
            [w for w in timeline.json()["waiting"] if w["in_review"]])

        # Today (no date): the token stays in the tab across pages, and the line
        # at the current time sits where now falls on the axis (hidden outside it).
        await page.goto(f"{api.url}/host/{evening.restaurant}")
        root = page.locator(".board-root")
        await root.wait_for()
        assert await root.get_attribute("data-date") == datetime.now(evening.tz).date().isoformat()
        lo = datetime.fromisoformat(await root.get_attribute("data-window-start"))
        hi = datetime.fromisoformat(await root.get_attribute("data-window-end"))
        await page.wait_for_function("document.querySelector('#status').textContent"
                                     ".startsWith('Updated')")
        line = await page.evaluate("""() => {
            const line = document.querySelector('.now-line');
            const lane = document.querySelector('.lane').getBoundingClientRect();
            return {hidden: line.hidden, x: line.getBoundingClientRect().left - lane.left,
                    width: lane.width, now: Date.now()};
        }""")
        now = datetime.fromtimestamp(line["now"] / 1000, tz=evening.tz)
        if lo <= now <= hi:
            assert not line["hidden"]
            want = (now - lo) / (hi - lo) * line["width"]
            assert abs(line["x"] - want) <= 3, (line, want)
        else:
            assert line["hidden"], line
