// The host page's script (no build step): sign in with an API token kept in
// sessionStorage, fetch the server-rendered board every few seconds with
// `Authorization: Bearer`, and send an operator's decisions to the same /v1
// routes a host application calls. The token never goes into a URL.
(() => {
  "use strict";
  const TOKEN_KEY = "seatflow.host.token";
  const $ = (id) => document.getElementById(id);

  // The index page: a restaurant id and a date, then its page.
  const pick = $("pick-restaurant");
  if (pick) {
    pick.addEventListener("submit", (event) => {
      event.preventDefault();
      const day = $("date").value;
      window.location.assign("/host/" + encodeURIComponent($("restaurant").value.trim()) +
        (day ? "?date=" + encodeURIComponent(day) : ""));
    });
    return;
  }

  const body = document.body;
  const restaurant = body.dataset.restaurant;
  const day = body.dataset.date;
  const pollMs = Number(body.dataset.pollMs) || 5000;
  const board = $("board");
  let lastHtml = null;
  let timer = null;
  let seat = null; // the booking being seated: {id, party, times, who, start, end, left, width, tables}

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    const t = token();
    if (t) h.Authorization = "Bearer " + t;  // else a proxy may add it (single sign-on)
    return h;
  }

  function say(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", Boolean(isError));
  }

  async function api(method, path, payload) {
    const options = {method, cache: "no-store",
      headers: headers(payload ? {"Content-Type": "application/json"} : {})};
    if (payload) options.body = JSON.stringify(payload);
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      return {status: 0, ok: false, data: {message: "the API did not answer; try again"}};
    }
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (response.status === 401) signedOut("Your token was refused; sign in again.");
    return {status: response.status, ok: response.ok, data: data || {}};
  }

  function boardUrl() {
    return "/host/" + encodeURIComponent(restaurant) + "/board" +
      (day ? "?date=" + encodeURIComponent(day) : "");
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, pollMs);
  }

  async function refresh() {
    clearTimeout(timer);
    let response;
    try {
      response = await fetch(boardUrl(), {headers: headers(), cache: "no-store"});
    } catch (err) {
      say("Cannot reach the API; trying again…", true);
      schedule();
      return;
    }
    if (response.status === 401) {
      signedOut(token() ? "That token was refused." : "");
      return;
    }
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).message; } catch (err) { /* not JSON */ }
      say(message, true);
      board.setAttribute("aria-busy", "false");
      schedule();
      return;
    }
    const html = await response.text();
    $("login").hidden = true;
    const first = lastHtml === null;
    if (html !== lastHtml) {
      swap(html);
      lastHtml = html;
    }
    say("Updated " + new Date().toLocaleTimeString());
    placeNow();
    if (first) scrollToNow();
    schedule();
  }

  function root() { return board.querySelector(".board-root"); }

  function swap(html) {
    const active = document.activeElement;
    const key = active && board.contains(active) ? active.dataset.key : null;
    const scroller = board.querySelector(".timeline-scroll");
    const scrollLeft = scroller ? scroller.scrollLeft : null;
    board.innerHTML = html;
    board.setAttribute("aria-busy", "false");
    const r = root();
    $("title").textContent = r.dataset.name;
    document.title = r.dataset.name + ": host timeline";
    $("who").hidden = false;
    $("signed-in").textContent = "Signed in as " + r.dataset.tokenName + " (" + r.dataset.role + ")";
    $("sign-out").hidden = !token();
    const newScroller = board.querySelector(".timeline-scroll");
    if (newScroller && scrollLeft !== null) newScroller.scrollLeft = scrollLeft;
    if (seat) applySeat();
    if (key) {
      const again = board.querySelector('[data-key="' + CSS.escape(key) + '"]');
      if (again) again.focus();
    }
  }

  function placeNow() {
    const r = root();
    if (!r) return;
    const lo = Number(r.dataset.windowStartMs);
    const hi = Number(r.dataset.windowEndMs);
    const now = Date.now();
    const line = r.querySelector(".now-line");
    if (now < lo || now > hi) {
      line.hidden = true;
      return;
    }
    line.style.setProperty("--at", ((now - lo) / (hi - lo)).toFixed(6));
    line.hidden = false;
  }

  // On first sight, the part of the day that matters: now, or the first booking.
  function scrollToNow() {
    const r = root();
    const scroller = board.querySelector(".timeline-scroll");
    if (!r || !scroller) return;
    const line = r.querySelector(".now-line");
    const marks = line.hidden ? Array.from(r.querySelectorAll(".bar")) : [line];
    if (!marks.length) return;
    const left = scroller.getBoundingClientRect().left;
    const x = Math.min(...marks.map((m) => m.getBoundingClientRect().left - left));
    scroller.scrollLeft = Math.max(0, scroller.scrollLeft + x - 160);
  }

  function signedOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(timer);
    lastHtml = null;
    seat = null;
    board.innerHTML = "";
    $("seat-panel").hidden = true;
    $("details").hidden = true;
    $("who").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    say("");
    $("token").focus();
  }

  // ------------------------------------------------------------ details

  function showDetails(lines) {
    const panel = $("details");
    panel.replaceChildren();
    const list = document.createElement("dl");
    for (const [term, value] of lines) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
    panel.append(list);
    panel.hidden = false;
  }

  function barDetails(bar) {
    const d = bar.dataset;
    const lines = [["Booking", d.shortId], ["Party", d.party], ["Guest", d.who],
      ["Time", d.times], ["Tables", d.tables], ["State", d.word]];
    if (Number(d.moved)) lines.push(["Moved", "by re-packing, " + d.moved + "×"]);
    if (d.byOperator === "1") lines.push(["Seated", "by an operator"]);
    showDetails(lines);
  }

  // ------------------------------------------------------------ seating

  function overlaps(bar) {
    const s = Date.parse(bar.dataset.start);
    const e = Date.parse(bar.dataset.end);
    return s < seat.end && seat.start < e;
  }

  function applySeat() {
    const r = root();
    if (!r) return;
    const item = r.querySelector('.queue-item[data-booking="' + CSS.escape(seat.id) + '"]');
    if (!item) {  // decided meanwhile (another operator, the deadline)
      endSeat();
      say("That booking left the manual-review queue meanwhile.", true);
      return;
    }
    item.classList.add("seating");
    for (const button of r.querySelectorAll(".table-pick")) {
      const code = button.dataset.table;
      button.disabled = false;
      button.setAttribute("aria-pressed", seat.tables.has(code) ? "true" : "false");
      const row = button.closest(".row");
      const taken = Array.from(row.querySelectorAll(".bar")).some(overlaps);
      button.classList.toggle("taken", taken);
      button.title = taken ? "taken at that time" : "";
    }
    const band = r.querySelector(".seat-band");
    if (seat.left !== null) {
      band.style.setProperty("--left", String(seat.left / 100));
      band.style.setProperty("--width", String(seat.width / 100));
      band.hidden = false;
    }
    const chosen = Array.from(seat.tables);
    const seats = chosen.reduce((sum, code) => {
      const b = r.querySelector('.table-pick[data-table="' + CSS.escape(code) + '"]');
      return sum + (b ? Number(b.dataset.seats) : 0);
    }, 0);
    $("seat-chosen").textContent = chosen.length ?
      chosen.join(", ") + " (" + seats + " seats for " + seat.party + ")" : "none";
    $("seat-confirm").disabled = chosen.length === 0;
  }

  function startSeat(item) {
    const d = item.dataset;
    seat = {id: d.booking, party: Number(d.party), times: d.times, who: d.who,
      start: Date.parse(d.start), end: Date.parse(d.end),
      left: d.left !== undefined ? Number(d.left) : null,
      width: d.width !== undefined ? Number(d.width) : null, tables: new Set()};
    $("seat-what").textContent = "Seating the party of " + seat.party + " (" + seat.who + ", " +
      seat.times + ")";
    $("seat-error").textContent = "";
    $("seat-panel").hidden = false;
    applySeat();
    const first = board.querySelector(".table-pick:not(.taken)") || board.querySelector(".table-pick");
    if (first) first.focus();
  }

  function endSeat() {
    seat = null;
    $("seat-panel").hidden = true;
    const r = root();
    if (!r) return;
    for (const button of r.querySelectorAll(".table-pick")) {
      button.disabled = true;
      button.setAttribute("aria-pressed", "false");
      button.classList.remove("taken");
    }
    r.querySelector(".seat-band").hidden = true;
    for (const item of r.querySelectorAll(".queue-item.seating")) item.classList.remove("seating");
  }

  function toggleTable(code) {
    if (!seat) return;
    if (seat.tables.has(code)) seat.tables.delete(code); else seat.tables.add(code);
    applySeat();
  }

  function ask(dialog) {
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue), {once: true});
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  async function decide(id, decision) {
    return api("POST", "/v1/bookings/" + encodeURIComponent(id) + "/review", decision);
  }

  async function confirmSeat() {
    if (!seat || !seat.tables.size) return;
    const current = seat;
    const tables = Array.from(current.tables);
    $("seat-confirm").disabled = true;
    let answer = await decide(current.id, {action: "assign", table_ids: tables});
    if (!answer.ok && answer.data.overridable) {
      $("force-what").textContent = "Party of " + current.party + " (" + current.who + ", " +
        current.times + ") at " + tables.join(", ") + ".";
      $("force-reason").textContent = answer.data.message;
      if (await ask($("force-dialog")) !== "force") {
        $("seat-error").textContent = "Not seated: " + answer.data.message;
        $("seat-confirm").disabled = false;
        return;
      }
      answer = await decide(current.id, {action: "assign", table_ids: tables, force: true});
    }
    if (!answer.ok) {
      $("seat-error").textContent = answer.data.message || "refused (" + answer.status + ")";
      $("seat-confirm").disabled = false;
      return;
    }
    endSeat();
    say("Seated the party of " + current.party + " at " + answer.data.tables.join(", ") +
      ": " + answer.data.state + ".");
    await refresh();
    const bar = board.querySelector('.bar[data-booking="' + CSS.escape(current.id) + '"]');
    if (bar) bar.focus();
  }

  async function retry(item) {
    const answer = await decide(item.dataset.booking, {action: "retry"});
    say(answer.ok ? "Retry sent for the party of " + item.dataset.party + ": " + answer.data.state + "."
      : "Retry refused: " + answer.data.message, !answer.ok);
    await refresh();
  }

  async function reject(item) {
    $("reject-what").textContent = "Party of " + item.dataset.party + " (" + item.dataset.who +
      ", " + item.dataset.times + ")";
    $("reject-reason").value = "";
    if (await ask($("reject-dialog")) !== "reject") return;
    const reason = $("reject-reason").value.trim();
    if (!reason) {
      say("Not rejected: a reason is needed.", true);
      return;
    }
    const answer = await decide(item.dataset.booking, {action: "reject", reason});
    say(answer.ok ? "Rejected the party of " + item.dataset.party + "."
      : "Reject refused: " + answer.data.message, !answer.ok);
    await refresh();
  }

  // ------------------------------------------------------------ events

  board.addEventListener("click", (event) => {
    const pickButton = event.target.closest(".table-pick");
    if (pickButton) {
      toggleTable(pickButton.dataset.table);
      return;
    }
    const bar = event.target.closest(".bar");
    if (bar) {
      if (seat) toggleTable(bar.dataset.table); else barDetails(bar);
      return;
    }
    const action = event.target.closest("[data-action]");
    if (action) {
      const item = action.closest(".queue-item");
      if (action.dataset.action === "seat") startSeat(item);
      else if (action.dataset.action === "retry") retry(item);
      else if (action.dataset.action === "reject") reject(item);
    }
  });

  board.addEventListener("keydown", (event) => {
    const item = event.target.closest && event.target.closest(".queue-item");
    if (event.key === "Enter" && item && event.target === item) {
      showDetails([["Booking", item.querySelector(".short-id").textContent],
        ["Party", item.dataset.party], ["Guest", item.dataset.who], ["Time", item.dataset.times],
        ["Reason", item.querySelector(".reason").textContent]]);
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && seat && !document.querySelector("dialog[open]")) {
      endSeat();
      say("Seating cancelled.");
    }
  });

  $("seat-confirm").addEventListener("click", confirmSeat);
  $("seat-cancel").addEventListener("click", () => { endSeat(); say("Seating cancelled."); });
  $("sign-out").addEventListener("click", () => signedOut(""));
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    $("token").value = "";
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("login-error").textContent = "";
    refresh();
  });

  setInterval(placeNow, 30000);
  refresh();
})();
