"""The host page: `/host/{restaurant}?date=YYYY-MM-DD`, the day's timeline for
the floor staff, with the manual-review queue beside it.

The page itself (`/host/{restaurant}`) is a shell without data: the browser
keeps the staff member's API token in sessionStorage (never in a URL or a
cookie) and its script fetches the board, `/host/{restaurant}/board`, with
`Authorization: Bearer`, every few seconds. The board is rendered here, with
Jinja2, from exactly the JSON `GET /v1/restaurants/{id}/timeline` answers
(`seatflow.service.timeline.day_timeline`), so the page can show nothing that
JSON does not carry (no guest name or address). Review actions are rendered
for operator tokens only, and the script sends them to the same /v1 routes a
host application calls (`POST /v1/bookings/{id}/review`), under that token.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from seatflow.api.deps import Caller, Dep, RestaurantPath, require
from seatflow.api.errors import ApiError
from seatflow.domain.timeline import hour_ticks, span_position
from seatflow.service.timeline import day_timeline

HERE = Path(__file__).resolve().parents[1]  # seatflow/api: templates/ and static/
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
STATIC = HERE / "static"
STATIC_FILES = {"host.js": "text/javascript", "host.css": "text/css"}
POLL_SECONDS = 5
# The page loads nothing but its own script and stylesheet, and talks only to
# this API. Bars are placed by style attributes (rendered, never from input).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "style-src-attr 'unsafe-inline'; connect-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
# A booking's state: a colour (the CSS class) and always a mark and a word.
STATE_MARKS = {"confirmed": ("✓", "confirmed"), "assigned": ("◔", "assigned, confirming")}
MOVED_MARK = "↻"
OPERATOR_MARK = "⚑"

router = APIRouter(include_in_schema=False)
DayQuery = Annotated[date | None, Query(alias="date")]


def _local(iso: str, tz: ZoneInfo) -> datetime:
    return datetime.fromisoformat(iso).astimezone(tz)


def _hhmm(iso: str, tz: ZoneInfo) -> str:
    return _local(iso, tz).strftime("%H:%M")


def _who(item: dict[str, Any]) -> str:
    initial = item.get("guest_initial")
    return f"{initial}." if initial else str(item["short_id"])


def board_view(timeline: dict[str, Any], *, operator: bool) -> dict[str, Any]:
    """What the board template draws: rows of tables by zone with each bar's
    and hold's place (percent of the axis), the hour ticks, and the queue."""
    tz = ZoneInfo(timeline["timezone"])
    lo = datetime.fromisoformat(timeline["window_start"])
    hi = datetime.fromisoformat(timeline["window_end"])
    bars: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for b in timeline["bookings"]:
        place = span_position(datetime.fromisoformat(b["start"]),
                              datetime.fromisoformat(b["occupied_until"]), lo, hi)
        if place is None:
            continue
        mark, word = STATE_MARKS.get(b["state"], ("•", b["state"].replace("_", " ")))
        times = f"{_hhmm(b['start'], tz)}–{_hhmm(b['occupied_until'], tz)}"
        words = [f"party of {b['party_size']}", _who(b), times, word]
        if b["moved"]:
            words.append(f"moved by re-packing ({b['times_moved']}×)")
        if b["by_operator"]:
            words.append("seated by an operator")
        for table in b["tables"]:
            bars[table].append({
                **b, "left": place[0], "width": place[1], "mark": mark, "word": word,
                "who": _who(b), "times": times, "table": table,
                "label": f"{table}: " + ", ".join(words),
                "all_tables": ", ".join(b["tables"]),
            })
    holds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for h in timeline["holds"]:
        place = span_position(datetime.fromisoformat(h["start"]),
                              datetime.fromisoformat(h["end"]), lo, hi)
        if place is None:
            continue
        times = f"{_hhmm(h['start'], tz)}–{_hhmm(h['end'], tz)}"
        for table in h["tables"]:
            holds[table].append({**h, "left": place[0], "width": place[1], "times": times,
                                 "label": f"{table}: held {times}"
                                          + (f" ({h['label']})" if h["label"] else "")})
    zones = [{**z, "rows": [{**t, "bars": bars.get(t["id"], []),
                             "holds": holds.get(t["id"], [])} for t in z["tables"]]}
             for z in timeline["zones"]]
    queue = []
    for w in timeline["waiting"]:
        place = span_position(datetime.fromisoformat(w["start"]),
                              datetime.fromisoformat(w["occupied_until"]), lo, hi)
        queue.append({**w, "who": _who(w),
                      "times": f"{_hhmm(w['start'], tz)}–{_hhmm(w['occupied_until'], tz)}",
                      "since_local": _hhmm(w["since"], tz) if w["since"] else None,
                      "left": place[0] if place else None,
                      "width": place[1] if place else None})
    day = date.fromisoformat(timeline["date"])
    return {
        "t": timeline, "operator": operator, "zones": zones,
        "ticks": hour_ticks(lo, hi, tz), "hours": round((hi - lo) / timedelta(hours=1)),
        "review": [q for q in queue if q["in_review"]],
        "assigning": [q for q in queue if not q["in_review"]],
        "window_start_ms": int(lo.timestamp() * 1000),
        "window_end_ms": int(hi.timestamp() * 1000),
        "day": day, "prev_day": day - timedelta(days=1), "next_day": day + timedelta(days=1),
        "moved_mark": MOVED_MARK, "operator_mark": OPERATOR_MARK,
    }


def _html(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(request, template, context)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/host", response_class=HTMLResponse)
@router.get("/host/", response_class=HTMLResponse)
async def host_index(request: Request) -> HTMLResponse:
    """Which restaurant: a form (the dev stack's `seatflow dev status` links here)."""
    return _html(request, "host_index.html", {})


@router.get("/host/static/{name}")
async def host_static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise ApiError(404, "not_found", f"no file {name}")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name],
                        headers={"Cache-Control": "no-cache",
                                 "X-Content-Type-Options": "nosniff"})


@router.get("/host/{restaurant_id}", response_class=HTMLResponse)
async def host_page(request: Request, restaurant_id: RestaurantPath,
                    day: DayQuery = None) -> HTMLResponse:
    """The page shell: no data until its script signs in and fetches the board."""
    return _html(request, "host.html", {
        "restaurant_id": restaurant_id, "day": day.isoformat() if day else "",
        "poll_ms": POLL_SECONDS * 1000})


@router.get("/host/{restaurant_id}/board", response_class=HTMLResponse)
async def host_board(request: Request, restaurant_id: RestaurantPath, token: Caller, d: Dep,
                     day: DayQuery = None) -> HTMLResponse:
    """The board for the page's script (Authorization: Bearer, like /v1)."""
    require(token, ("host", "operator"), restaurant_id)
    timeline = await day_timeline(d.engine, restaurant_id, day,
                                  horizon_days=d.settings.booking_horizon_days)
    view = board_view(timeline, operator=token.role == "operator")
    return _html(request, "board.html", {**view, "token_name": token.name})
