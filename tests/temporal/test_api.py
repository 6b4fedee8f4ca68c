"""The HTTP API end to end: uvicorn on loopback, real PostgreSQL, the Temporal
dev server and a real worker. Auth matrix, bookings, idempotent retries (one
booking, one workflow, one email), availability, the review Update (the actor
is the token, `force` included), the booking JSON equal to the CLI's, health."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.api.auth import authenticate, parse_tokens
from seatflow.config import ConfigError
from tests.api_support import ApiServer, Tokens, new_tokens, temporal_address, tokens_json
from tests.cli_support import Done, seatflow_cli
from tests.database.test_availability import hold_all_tables
from tests.support import fetch, floorplan, import_plan, scalar, wait_for_state
from worker import build_worker

pytestmark = pytest.mark.e2e


def future(days: int = 3, hour: int = 12) -> datetime:
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return datetime.combine(day, time(hour), tzinfo=UTC)


@pytest.fixture(scope="module")
def queue() -> str:
    return f"api-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return new_tokens()


@pytest_asyncio.fixture(scope="module")
async def restaurant(db_engine: AsyncEngine) -> str:
    rid = f"api-{uuid.uuid4().hex[:8]}"
    # T2-T3 join into a 4; nothing seats 6 (T1 stands alone): a party of 6 ends in review.
    await import_plan(db_engine, floorplan(rid, [
        {"id": "T1", "capacity": 4}, {"id": "T2", "capacity": 2}, {"id": "T3", "capacity": 2},
        {"id": "T4", "capacity": 4},
    ], adjacency=[["T2", "T3"]]))
    return rid


@pytest.fixture(scope="module")
def api(pg_url: str, dev_env: Any, queue: str, tokens: Tokens, restaurant: str
        ) -> Iterator[ApiServer]:
    with ApiServer(database_url=pg_url, temporal_address=temporal_address(dev_env),
                   task_queue=queue, tokens_json=tokens_json(tokens, restaurant)) as server:
        yield server


@pytest_asyncio.fixture
async def http(api: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


@pytest_asyncio.fixture
async def worker(dev_env: Any, db_engine: AsyncEngine, test_settings: Any, queue: str
                 ) -> AsyncIterator[None]:
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        yield


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def booking_body(start: datetime, **extra: Any) -> dict[str, Any]:
    return {"party_size": 2, "start": start.isoformat(), "guest_name": "Ada",
            "guest_email": "ada@example.com", **extra}


async def settle(db_engine: AsyncEngine, booking_id: str) -> str:
    return await wait_for_state(db_engine, booking_id,
                                {"confirmed", "manual_review", "failed", "cancelled"}, 90)


# ------------------------------------------------------------------ auth


async def test_auth_matrix(http: httpx.AsyncClient, tokens: Tokens, restaurant: str,
                           db_engine: AsyncEngine) -> None:
    created = await http.post(f"/v1/restaurants/{restaurant}/bookings", headers=auth(tokens.host),
                              json=booking_body(future(hour=9), require_availability=False))
    assert created.status_code == 201, created.text
    bid = created.json()["booking_id"]
    day = future().date().isoformat()
    routes: list[tuple[str, str, dict[str, Any] | None, str, str, str]] = [
        # method, path, body, a token allowed, a token of the wrong role, wrong restaurant
        ("POST", f"/v1/restaurants/{restaurant}/bookings", booking_body(future(hour=10)),
         tokens.host, tokens.operator, tokens.other_host),
        ("GET", f"/v1/bookings/{bid}", None, tokens.host, "", tokens.other_host),
        ("GET", f"/v1/restaurants/{restaurant}/availability?party=2&date={day}", None,
         tokens.operator, "", tokens.other_operator),
        ("GET", "/v1/review", None, tokens.operator, tokens.host, ""),
        ("POST", f"/v1/bookings/{bid}/review", {"action": "retry"},
         tokens.operator, tokens.host, tokens.other_operator),
        ("POST", f"/v1/bookings/{bid}/cancel", None, tokens.host, tokens.operator,
         tokens.other_host),
    ]
    before = await scalar(db_engine, "SELECT count(*) FROM bookings WHERE restaurant_id = :r",
                          r=restaurant)
    for method, path, body, _allowed, wrong_role, wrong_restaurant in routes:
        for headers in ({}, auth("not-a-token-at-all-xxxx"), {"Authorization": "Basic eA=="},
                        {"Authorization": f"Bearer {tokens.host}x"}):
            r = await http.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["code"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
        if wrong_role:
            r = await http.request(method, path, json=body, headers=auth(wrong_role))
            assert r.status_code == 403 and r.json()["code"] == "forbidden", (path, r.text)
            assert "needs" in r.json()["message"]
        if wrong_restaurant and path.startswith("/v1/bookings/"):
            # Another restaurant's booking: answered as if it did not exist.
            r = await http.request(method, path, json=body, headers=auth(wrong_restaurant))
            assert r.status_code == 404 and r.json()["code"] == "not_found", (path, r.text)
            assert restaurant not in r.text
        elif wrong_restaurant:
            r = await http.request(method, path, json=body, headers=auth(wrong_restaurant))
            assert r.status_code == 403 and r.json()["code"] == "forbidden", (path, r.text)
            assert "not for restaurant" in r.json()["message"]
    # Nothing refused wrote anything, and no answer ever echoed a token.
    after = await scalar(db_engine, "SELECT count(*) FROM bookings WHERE restaurant_id = :r",
                         r=restaurant)
    assert after == before
    ok = await http.get(f"/v1/bookings/{bid}", headers=auth(tokens.operator))
    assert ok.status_code == 200
    assert all(t not in ok.text for t in vars(tokens).values())


def test_token_configuration_is_validated_without_echoing_a_token() -> None:
    secret = "s3cret-token-value-1234"
    for raw, message in [
        ("not json", "must be a JSON list"),
        ('{"a": 1}', "must be a JSON list"),
        (json.dumps([{"name": "a", "token": "short", "role": "host"}]), "[0] (a): token"),
        (json.dumps([{"name": "a", "token": secret, "role": "admin"}]), "role"),
        (json.dumps([{"name": "a", "token": secret, "role": "host"},
                     {"name": "b", "token": secret, "role": "operator"}]), "share one token"),
        (json.dumps([{"name": "a", "token": secret, "role": "host"},
                     {"name": "a", "token": secret + "x", "role": "host"}]), "unique"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")
                           .replace(")", r"\)")) as err:
            parse_tokens(raw)
        assert secret not in str(err.value) and "short" not in str(err.value).replace(
            "at least", "")
    tokens = parse_tokens(json.dumps([
        {"name": "a", "token": secret, "role": "host", "restaurants": ["r1"]},
        {"name": "b", "token": secret + "b", "role": "operator"},
    ]))
    host, operator = authenticate(tokens, secret), authenticate(tokens, secret + "b")
    assert host is not None and host.name == "a"
    assert operator is not None and operator.role == "operator"
    assert authenticate(tokens, secret[:-1]) is None
    assert tokens[0].may_use("r1") and not tokens[0].may_use("r2") and tokens[1].may_use("r2")
    assert secret not in repr(tokens)


def test_seatflow_api_refuses_to_start_without_tokens(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "SEATFLOW_API_TOKENS"}
    result = seatflow_cli().run(["api"], env, cwd=tmp_path)
    assert result.returncode == 2 and "SEATFLOW_API_TOKENS is empty" in result.stderr
    env["SEATFLOW_API_TOKENS"] = json.dumps([{"name": "x", "token": "tiny-secret", "role": "host"}])
    result = seatflow_cli().run(["api"], env, cwd=tmp_path)
    assert result.returncode == 2 and "SEATFLOW_API_TOKENS[0] (x)" in result.stderr
    assert "tiny-secret" not in result.stderr + result.stdout


# -------------------------------------------------------------- bookings


async def test_book_show_and_cancel(http: httpx.AsyncClient, tokens: Tokens, restaurant: str,
                                    db_engine: AsyncEngine, worker: None, mailbox: Path) -> None:
    start = future(days=4, hour=13)
    r = await http.post(f"/v1/restaurants/{restaurant}/bookings", headers=auth(tokens.host),
                        json=booking_body(start))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["created"] and created["workflow_started"]
    bid = created["booking_id"]
    assert await settle(db_engine, bid) == "confirmed"
    shown = await http.get(f"/v1/bookings/{bid}", headers=auth(tokens.host))
    assert shown.status_code == 200
    view = shown.json()
    assert view["assignment_state"] == "confirmed" and view["tables"] in (["T2"], ["T3"])
    assert view["attempts"][0]["result"] == "confirmed" and view["email"]["sent"] in (True, False)
    assert [h["to"] for h in view["history"]][:2] == ["created", "capacity_verified"]
    assert "guest_email" not in view and "ada@example.com" not in shown.text
    cancelled = await http.post(f"/v1/bookings/{bid}/cancel", headers=auth(tokens.host_all),
                                json={"reason": "guest called"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["assignment_state"] == "cancelled"
    assert cancelled.json()["tables"] == []
    history = cancelled.json()["history"][-1]
    assert history["actor"] == "api:host-all" and history["reason"] == "guest called"
    again = await http.post(f"/v1/bookings/{bid}/cancel", headers=auth(tokens.host))
    assert again.status_code == 409 and again.json()["code"] == "already_resolved"
    assert again.json()["message"].startswith("already resolved: cancelled (guest called")
    missing = await http.get(f"/v1/bookings/{uuid.uuid4()}", headers=auth(tokens.host))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_a_cancel_signal_to_a_workflow_that_just_closed_is_not_an_error(
    http: httpx.AsyncClient, tokens: Tokens, restaurant: str, db_engine: AsyncEngine,
    worker: None, mailbox: Path, dev_env: Any,
) -> None:
    """The race behind a 500 seen once: the cancel saw the workflow running, and it
    closed (right after its confirmation email) before the signal arrived."""
    from seatflow.domain.workflow_ids import booking_workflow_id
    from seatflow.service.bookings import signal_cancel

    r = await http.post(f"/v1/restaurants/{restaurant}/bookings", headers=auth(tokens.host),
                        json=booking_body(future(days=6, hour=13)))
    assert r.status_code == 201, r.text
    bid = r.json()["booking_id"]
    assert await settle(db_engine, bid) == "confirmed"
    handle = dev_env.client.get_workflow_handle(booking_workflow_id(bid))
    await handle.result()  # closed now, as if it closed between describe and signal
    assert await signal_cancel(handle, "api:test", None) is False
    missing = dev_env.client.get_workflow_handle(booking_workflow_id(str(uuid.uuid4())))
    assert await signal_cancel(missing, "api:test", None) is False
    cancelled = await http.post(f"/v1/bookings/{bid}/cancel", headers=auth(tokens.host))
    assert cancelled.status_code == 200 and cancelled.json()["assignment_state"] == "cancelled"


async def test_idempotent_retries_make_one_booking_one_workflow_one_email(
    http: httpx.AsyncClient, tokens: Tokens, restaurant: str, db_engine: AsyncEngine,
    worker: None, mailbox: Path, dev_env: Any,
) -> None:
    path = f"/v1/restaurants/{restaurant}/bookings"
    key = f"host-app-{uuid.uuid4()}"
    body = booking_body(future(days=5, hour=12))
    first = await http.post(path, headers={**auth(tokens.host), "Idempotency-Key": key}, json=body)
    retry = await http.post(path, headers={**auth(tokens.host), "Idempotency-Key": key}, json=body)
    assert (first.status_code, retry.status_code) == (201, 200), retry.text
    assert retry.json()["booking_id"] == first.json()["booking_id"]
    assert retry.json()["created"] is False

    # Concurrent retries of another request (a host app timing out and retrying).
    key2 = f"host-app-{uuid.uuid4()}"
    body2 = booking_body(future(days=5, hour=15), guest_email="bo@example.com")
    burst = await asyncio.gather(*(
        http.post(path, headers={**auth(tokens.host), "Idempotency-Key": key2}, json=body2)
        for _ in range(8)
    ))
    assert sorted(r.status_code for r in burst) == [200] * 7 + [201]
    assert len({r.json()["booking_id"] for r in burst}) == 1

    conflict = await http.post(path, headers={**auth(tokens.host), "Idempotency-Key": key},
                               json={**body, "party_size": 3})
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict"

    # A name with a trailing space is stored trimmed: its retry is the same
    # request (it answered 409 "use a new key" before, inviting a duplicate).
    key3 = f"host-app-{uuid.uuid4()}"
    body3 = {**booking_body(future(days=5, hour=18)), "guest_name": "Ada "}
    made, again = [await http.post(path, headers={**auth(tokens.host), "Idempotency-Key": key3},
                                   json=body3) for _ in range(2)]
    assert (made.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["booking_id"] == made.json()["booking_id"]

    for k, r in ((key, first), (key2, burst[0])):
        bid = r.json()["booking_id"]
        rows = await fetch(db_engine, "SELECT id FROM bookings WHERE idempotency_key = :k", k=k)
        assert len(rows) == 1
        assert await settle(db_engine, bid) == "confirmed"
        await wait_for_email(db_engine, bid)
        outbox = await fetch(db_engine, "SELECT status, send_attempts FROM email_outbox "
                             "WHERE booking_id = CAST(:id AS uuid)", id=bid)
        assert [o.status for o in outbox] == ["sent"]
        assert [p.name for p in mailbox.glob(f"{bid}*.eml")] == [f"{bid}-confirmation.eml"]
        runs = [wf async for wf in dev_env.client.list_workflows(
            f"WorkflowId = 'booking-assignment-{bid}'")]
        assert len(runs) == 1


async def wait_for_email(db_engine: AsyncEngine, booking_id: str) -> None:
    for _ in range(1200):  # the send runs after the confirm, as a regular activity
        status = await scalar(db_engine, "SELECT status FROM email_outbox WHERE booking_id = "
                              "CAST(:id AS uuid)", id=booking_id)
        if status == "sent":
            return
        await asyncio.sleep(0.1)


async def test_a_time_without_a_plan_is_refused_with_the_nearest_times(
    http: httpx.AsyncClient, tokens: Tokens, db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"api-full-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 4},
                                                 {"id": "T2", "capacity": 2}]))
    held = future(days=6, hour=19)
    await hold_all_tables(db_engine, rid, held)
    count = "SELECT count(*) FROM bookings WHERE restaurant_id = :r"
    before = await scalar(db_engine, count, r=rid)
    path = f"/v1/restaurants/{rid}/bookings"
    r = await http.post(path, headers=auth(tokens.host_all), json=booking_body(held))
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "not_available" and "nearest available" in body["message"]
    # Nearest first (17:15 is 1:45 away; 17:00 and 21:00 tie at 2:00, earlier first).
    assert [datetime.fromisoformat(t).strftime("%H:%M") for t in body["nearest"]] == [
        "17:15", "17:00", "21:00"]
    assert await scalar(db_engine, count, r=rid) == before
    # A walk-in or phone booking is still accepted without the check.
    walk_in = await http.post(path, headers=auth(tokens.host_all),
                              json=booking_body(held, require_availability=False))
    assert walk_in.status_code == 201 and await scalar(db_engine, count, r=rid) == before + 1
    avail = await http.get(f"/v1/restaurants/{rid}/availability",
                           params={"party": 2, "date": held.date().isoformat()},
                           headers=auth(tokens.host_all))
    assert avail.status_code == 200
    data = avail.json()
    assert data["slot_minutes"] == 15 and len(data["slots"]) == 96
    assert held.isoformat() not in data["available"]
    assert (held + timedelta(hours=2)).isoformat() in data["available"]
    # every slot says whether re-packing was left undecided (here nothing may move)
    assert all(slot["undecided"] is False for slot in data["slots"])


async def test_bad_input_gets_a_clear_json_error(
    http: httpx.AsyncClient, tokens: Tokens, restaurant: str,
) -> None:
    path = f"/v1/restaurants/{restaurant}/bookings"
    h = auth(tokens.host)
    cases: list[tuple[str, str, dict[str, Any], Any, int, str, str]] = [
        ("POST", path, {}, {"party_size": 0, "start": "2030-01-01T12:00"}, 422,
         "validation_error", "party_size"),
        ("POST", path, {}, {"party_size": 2, "start": "tomorrow"}, 422, "bad_start",
         "not an ISO 8601"),
        ("POST", path, {}, {"party_size": 2, "start": "2001-01-01T12:00"}, 422, "start_in_past",
         "in the past"),
        ("POST", path, {}, {"party_size": 2, "start": future().isoformat(),
                            "guest_email": "a@x.com, victim@y.com"}, 422, "validation_error",
         "guest_email"),
        ("POST", path, {}, {"party_size": 2, "start": future().isoformat(), "extra": 1}, 422,
         "validation_error", "extra"),
        ("POST", path, {}, {"party_size": 2, "start": future().isoformat(),
                            "zone_preference": "roof"}, 422, "unknown_zone", "no zone"),
        ("POST", path, {}, {"party_size": 60, "start": future().isoformat()}, 422,
         "party_exceeds_capacity", "total capacity"),
        ("POST", "/v1/restaurants/nowhere/bookings", {}, booking_body(future()), 403,
         "forbidden", "not for restaurant"),
        ("GET", "/v1/bookings/not-a-uuid", {}, None, 422, "validation_error", "booking_id"),
        ("GET", f"/v1/restaurants/{restaurant}/availability?party=2", {}, None, 422,
         "bad_window", "give date"),
        ("GET", f"/v1/restaurants/{restaurant}/availability?party=x&date=2030-01-01", {}, None,
         422, "validation_error", "party"),
        ("GET", "/v1/nothing-here", {}, None, 404, "not_found", "Not Found"),
        ("POST", path, {"Idempotency-Key": "x" * 300}, booking_body(future()), 422,
         "bad_idempotency_key", "Idempotency-Key"),
    ]
    for method, url, headers, body, status, code, message in cases:
        r = await http.request(method, url, headers={**h, **headers}, json=body)
        assert r.status_code == status, (url, body, r.text)
        assert r.json()["code"] == code and message in r.json()["message"], r.text
    raw = await http.post(path, headers={**h, "Content-Type": "application/json"},
                          content=b"{not json")
    assert raw.status_code == 422 and raw.json()["code"] == "validation_error"
    unknown = await http.post("/v1/restaurants/nowhere/bookings", headers=auth(tokens.host_all),
                              json=booking_body(future()))
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_restaurant"


async def test_strict_bounded_input_never_a_500(
    http: httpx.AsyncClient, tokens: Tokens, restaurant: str, db_engine: AsyncEngine,
) -> None:
    """Issue 26, item 1: no coercion, a booking horizon (no date overflows),
    a bounded body, and authentication before the body is read."""
    path = f"/v1/restaurants/{restaurant}/bookings"
    h = auth(tokens.host)
    count = "SELECT count(*) FROM bookings WHERE restaurant_id = :r"
    before = await scalar(db_engine, count, r=restaurant)
    start = future().isoformat()
    beyond = future(days=400, hour=19).isoformat()
    refused: list[tuple[dict[str, Any], str, str]] = [
        ({"party_size": "4", "start": start}, "validation_error", "party_size"),
        ({"party_size": True, "start": start}, "validation_error", "party_size"),
        ({"party_size": 4.0, "start": start}, "validation_error", "party_size"),
        ({"party_size": 2, "start": start, "require_availability": "false"},
         "validation_error", "require_availability"),
        ({"party_size": 2, "start": start, "guest_name": 7}, "validation_error", "guest_name"),
        ({"party_size": 2, "start": 1893456000}, "validation_error", "start"),
        ({"party_size": 2, "start": "9999-12-31T19:30"}, "beyond_horizon", "365 days ahead"),
        ({"party_size": 2, "start": "9999-12-31T22:45", "require_availability": False},
         "beyond_horizon", "365 days ahead"),
        ({"party_size": 2, "start": "9999-12-31T23:59:59.999999-12:00",
          "require_availability": False}, "beyond_horizon", "365 days ahead"),
        ({"party_size": 2, "start": beyond}, "beyond_horizon", "365 days ahead"),
        ({"party_size": 2, "start": "0001-01-01T00:00+14:00", "require_availability": False},
         "start_in_past", "in the past"),
    ]
    for body, code, message in refused:
        r = await http.post(path, headers=h, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == code and message in r.json()["message"], (body, r.text)
    decision = await http.post(f"/v1/bookings/{uuid.uuid4()}/review",
                               headers=auth(tokens.operator),
                               json={"action": "assign", "table_ids": ["T1"], "force": "yes"})
    assert decision.status_code == 422 and "force" in decision.json()["message"]
    avail = f"/v1/restaurants/{restaurant}/availability"
    for params, code in [
        ({"date": "9999-12-31"}, "beyond_horizon"),
        ({"date": "0001-01-01"}, "in_the_past"),
        ({"date": (datetime.now(UTC) + timedelta(days=400)).date().isoformat()},
         "beyond_horizon"),
        ({"from": "9999-12-31T18:00", "to": "9999-12-31T23:59"}, "beyond_horizon"),
        ({"from": "9999-12-31T23:00-12:00", "to": "9999-12-31T23:30-12:00"},
         "beyond_horizon"),
        ({"from": "0001-01-01T00:00+14:00", "to": "0001-01-01T12:00+14:00"}, "in_the_past"),
    ]:
        r = await http.get(avail, headers=h, params={"party": 2, **params})
        assert r.status_code == 422 and r.json()["code"] == code, (params, r.text)
    # 64 KiB at most, declared or streamed; refused before any parsing.
    padded = {"party_size": 2, "start": start, "guest_name": "x" * (70 * 1024)}
    big = await http.post(path, headers=h, json=padded)
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large", big.text

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"party_size": 2, "guest_name": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    streamed = await http.post(path, headers={**h, "Content-Type": "application/json"},
                               content=stream())
    assert streamed.status_code == 413 and streamed.json()["code"] == "payload_too_large"
    # Without a token: 401 before the body is read, whatever it is.
    for headers, content in [({}, b"{not json"), ({}, b"x" * (1024 * 1024)),
                             (auth("not-a-token-at-all-xxxx"), b"{not json")]:
        r = await http.post(path, headers={**headers, "Content-Type": "application/json"},
                            content=content)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized", r.text
    assert await scalar(db_engine, count, r=restaurant) == before


# ---------------------------------------------------------------- review


async def test_review_queue_and_decisions(
    http: httpx.AsyncClient, tokens: Tokens, restaurant: str, db_engine: AsyncEngine,
    worker: None,
) -> None:
    r = await http.post(f"/v1/restaurants/{restaurant}/bookings", headers=auth(tokens.host),
                        json={**booking_body(future(days=7, hour=20)), "party_size": 6,
                              "require_availability": False})
    assert r.status_code == 201, r.text
    bid = r.json()["booking_id"]
    assert await settle(db_engine, bid) == "manual_review"
    queue = await http.get("/v1/review", headers=auth(tokens.operator))
    assert queue.status_code == 200
    assert bid in [item["booking_id"] for item in queue.json()]
    other = await http.get("/v1/review", headers=auth(tokens.other_operator))
    assert bid not in [item["booking_id"] for item in other.json()]
    path = f"/v1/bookings/{bid}/review"
    ops = auth(tokens.operator)
    refused = await http.post(path, headers=ops, json={"action": "assign", "table_ids": ["T9"]})
    assert refused.status_code == 422 and refused.json()["code"] == "decision_refused"
    assert "unknown table(s)" in refused.json()["message"]
    invalid = await http.post(path, headers=ops, json={"action": "reject"})
    assert invalid.status_code == 422 and invalid.json()["code"] == "invalid_decision"
    assert "reject needs a reason" in invalid.json()["message"]
    forced_retry = await http.post(path, headers=ops, json={"action": "retry", "force": True})
    assert forced_retry.status_code == 422 and forced_retry.json()["code"] == "invalid_decision"
    assert "unexpected field(s) for retry: force" in forced_retry.json()["message"]
    # The actor is the token, never the body: a body naming one is refused, clearly.
    named = await http.post(path, headers=ops, json={"action": "reject", "actor": "ops-anna",
                                                     "reason": "party too large"})
    assert named.status_code == 422 and named.json()["code"] == "validation_error"
    assert named.json()["message"].startswith("actor: not accepted: the actor is the API token")
    rejected = await http.post(path, headers=ops, json={"action": "reject",
                                                        "reason": "party too large"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["state"] == "failed" and rejected.json()["action"] == "reject"
    assert await settle(db_engine, bid) == "failed"
    late = await http.post(path, headers=ops, json={"action": "retry"})
    assert late.status_code == 409 and late.json()["code"] == "already_resolved"
    assert late.json()["message"] == (
        "already resolved: failed (rejected by api:ops: party too large)")


async def test_an_operator_seats_a_party_with_force_and_the_history_names_the_token(
    http: httpx.AsyncClient, tokens: Tokens, restaurant: str, db_engine: AsyncEngine,
    worker: None,
) -> None:
    """A party of 6 that no automatic plan holds (T1 and T4 are not adjacent) is
    seated from the API, as `seatflow review assign --force` does it."""
    r = await http.post(f"/v1/restaurants/{restaurant}/bookings", headers=auth(tokens.host),
                        json={**booking_body(future(days=9, hour=20)), "party_size": 6,
                              "require_availability": False})
    assert r.status_code == 201, r.text
    bid = r.json()["booking_id"]
    assert await settle(db_engine, bid) == "manual_review"
    path = f"/v1/bookings/{bid}/review"
    # Too few seats: nothing overrides capacity, so the answer offers no override.
    small = await http.post(path, headers=auth(tokens.operator),
                            json={"action": "assign", "table_ids": ["T1"]})
    assert small.status_code == 409 and small.json()["code"] == "assignment_refused", small.text
    assert "overridable" not in small.json()
    plan = {"action": "assign", "table_ids": ["T1", "T4"], "note": "two tables side by side"}
    unforced = await http.post(path, headers=auth(tokens.operator), json=plan)
    assert unforced.status_code == 409, unforced.text
    assert unforced.json()["code"] == "assignment_refused"
    assert "not adjacent" in unforced.json()["message"]
    assert unforced.json()["overridable"] is True  # what the host page asks about
    forced = await http.post(path, headers=auth(tokens.operator), json={**plan, "force": True})
    assert forced.status_code == 200, forced.text
    assert forced.json()["state"] == "confirmed" and forced.json()["tables"] == ["T1", "T4"]
    view = (await http.get(f"/v1/bookings/{bid}", headers=auth(tokens.operator))).json()
    assert view["assignment_state"] == "confirmed" and view["tables"] == ["T1", "T4"]
    assigned = [h for h in view["history"] if h["to"] == "assigned"]
    assert [h["actor"] for h in assigned] == ["api:ops"]
    assert "forced over" in assigned[0]["reason"] and "not adjacent" in assigned[0]["reason"]
    rows = await fetch(db_engine, "SELECT actor, metadata FROM booking_assignment_state_history "
                       "WHERE booking_id = CAST(:b AS uuid) AND to_state = 'assigned'", b=bid)
    assert [(row.actor, row.metadata["force"]) for row in rows] == [("api:ops", True)]


async def test_the_timeline_of_a_day_for_hosts_and_operators(
    http: httpx.AsyncClient, tokens: Tokens, restaurant: str, db_engine: AsyncEngine,
    worker: None,
) -> None:
    """`GET /v1/restaurants/{id}/timeline`: the tables by zone, a seated booking
    on its tables with its times, no guest email or name; bad days and other
    restaurants refused as every route refuses them."""
    start = future(days=11, hour=19)
    r = await http.post(f"/v1/restaurants/{restaurant}/bookings", headers=auth(tokens.host),
                        json=booking_body(start, guest_name="Zelda Quint",
                                          guest_email="zelda.quint@example.net"))
    assert r.status_code == 201, r.text
    bid = r.json()["booking_id"]
    assert await settle(db_engine, bid) == "confirmed"
    path = f"/v1/restaurants/{restaurant}/timeline"
    for token in (tokens.host, tokens.operator):
        answer = await http.get(path, params={"date": start.date().isoformat()},
                                headers=auth(token))
        assert answer.status_code == 200, answer.text
        day = answer.json()
        assert "zelda" not in answer.text.lower() and "@" not in answer.text
        (seated,) = [b for b in day["bookings"] if b["booking_id"] == bid]
        view = (await http.get(f"/v1/bookings/{bid}", headers=auth(token))).json()
        assert seated["tables"] == view["tables"] and seated["guest_initial"] == "Z"
        assert datetime.fromisoformat(seated["start"]) == datetime.fromisoformat(view["start"])
        assert (datetime.fromisoformat(seated["occupied_until"])
                == datetime.fromisoformat(view["occupied_until"]))
        assert seated["state"] == "confirmed" and seated["short_id"] == bid[:8]
        tables = [t["id"] for z in day["zones"] for t in z["tables"]]
        assert tables == ["T1", "T2", "T3", "T4"] and day["holds"] == []
        # The test floor serves all day: the axis is the local day.
        assert day["window_start"].startswith(f"{start.date().isoformat()}T00:00")
    today = await http.get(path, headers=auth(tokens.host))
    assert today.status_code == 200 and today.json()["date"] == datetime.now(UTC).date().isoformat()
    for bad, code in (("9999-12-31", "beyond_horizon"), ("0001-01-01", "beyond_horizon"),
                      ("2026-02-30", "validation_error"), ("tonight", "validation_error")):
        refused = await http.get(path, params={"date": bad}, headers=auth(tokens.host))
        assert refused.status_code == 422 and refused.json()["code"] == code, (bad, refused.text)
    assert (await http.get(path, headers=auth(tokens.other_host))).status_code == 403
    assert (await http.get(path)).status_code == 401
    unknown = await http.get("/v1/restaurants/no-such-place/timeline", headers=auth(tokens.operator))
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_restaurant"


async def test_the_api_and_the_cli_show_the_same_booking_json(
    http: httpx.AsyncClient, tokens: Tokens, restaurant: str, db_engine: AsyncEngine,
    worker: None, mailbox: Path, pg_url: str, dev_env: Any,
) -> None:
    import os

    r = await http.post(f"/v1/restaurants/{restaurant}/bookings", headers=auth(tokens.host),
                        json=booking_body(future(days=10, hour=13)))
    assert r.status_code == 201, r.text
    bid = r.json()["booking_id"]
    assert await settle(db_engine, bid) == "confirmed"
    await wait_for_email(db_engine, bid)  # nothing changes the booking after its email
    api_view = await http.get(f"/v1/bookings/{bid}", headers=auth(tokens.host))
    env = dict(os.environ, DATABASE_URL=pg_url, TEMPORAL_ADDRESS=temporal_address(dev_env))
    cli = await seatflow_cli().arun(["bookings", "show", bid, "--json"], env)
    assert cli.returncode == 0, cli.stderr
    assert api_view.status_code == 200
    assert api_view.json() == json.loads(cli.stdout)
    assert api_view.json()["email"]["status"] == "sent"
    assert set(api_view.json()["email"]) >= {"status", "error"}


# ---------------------------------------------------------------- health


async def test_healthz(http: httpx.AsyncClient, pg_url: str, queue: str, tokens: Tokens,
                       restaurant: str) -> None:
    r = await http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok",
                                                 "temporal": "ok"}
    from tests.api_support import free_port

    with ApiServer(database_url=pg_url, temporal_address=f"127.0.0.1:{free_port()}",
                   task_queue=queue, tokens_json=tokens_json(tokens, restaurant)) as down:
        async with httpx.AsyncClient(base_url=down.url, timeout=30) as client:
            r = await client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "degraded" and r.json()["database"] == "ok"
    assert r.json()["temporal"].startswith("unreachable")


# ------------------------------------------------------------------- CLI


async def test_cli_create_requires_availability_and_is_idempotent(
    pg_url: str, dev_env: Any, db_engine: AsyncEngine, unique_id: str, queue: str,
) -> None:
    import os

    rid = f"api-cli-{unique_id}"
    held = future(days=8, hour=19)
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 4},
                                                 {"id": "T2", "capacity": 2}]))
    await hold_all_tables(db_engine, rid, held)
    env = dict(os.environ, DATABASE_URL=pg_url, TEMPORAL_ADDRESS=temporal_address(dev_env),
               SEATFLOW_TASK_QUEUE=queue)
    cli = ["bookings", "create", "--restaurant", rid, "--party", "2"]

    async def seatflow(*args: str) -> Done:
        return await seatflow_cli().arun([*cli, *args], env)

    refused = await seatflow("--start", held.isoformat(), "--require-availability")
    assert refused.returncode == 1, refused.stderr
    assert "nearest available: 17:15, 17:00, 21:00" in refused.stderr  # nearest first
    count = "SELECT count(*) FROM bookings WHERE restaurant_id = :r"
    assert await scalar(db_engine, count, r=rid) == 2  # the two holders only
    later = (held + timedelta(hours=3)).isoformat()
    first = await seatflow("--start", later, "--require-availability",
                           "--idempotency-key", "k1", "--json")
    again = await seatflow("--start", later, "--require-availability",
                           "--idempotency-key", "k1", "--json")
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    one, two = json.loads(first.stdout), json.loads(again.stdout)
    assert one["booking_id"] == two["booking_id"]
    assert (one["created"], two["created"]) == (True, False)
    other = await seatflow("--start", held.isoformat(), "--idempotency-key", "k1")
    assert other.returncode == 1 and "already used for a different booking" in other.stderr
    assert await scalar(db_engine, count, r=rid) == 3
