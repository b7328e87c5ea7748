// Ticketline demo client: plain JS against the HTTP API of API.md (same origin as the local server); http.js
// (loaded first) makes the requests.
"use strict";

const $ = (id) => document.getElementById(id);
const won = new Intl.NumberFormat("ko-KR", { style: "currency", currency: "KRW" });
const state = {
  user: null, jwt: null,
  concertId: null, queueToken: null, status: null, activeUntil: null,
  concertsCursor: null, chosenConcert: null,  // discovery: the list's next page, the concert shown
  scheduleId: null, seats: [], seatNumber: null,
  holds: [], balance: null,                 // the caller's live holds, paid together
  chargeKey: null, payKey: null,            // Idempotency-Key of the attempt in flight (kept for its retries)
  cancelKeys: {},                           // reservationId -> the Idempotency-Key of its cancellation
  pollTimer: null, clockTimer: null,
};

// ---------- errors: one clear message (and a way out) per code of API.md ----------
const ERROR_HELP = {
  VALIDATION_ERROR: (e) => ({ text: "Some input is not valid: " + detailText(e) }),
  UNAUTHENTICATED: () => ({ text: "Your sign-in is missing or has expired. Please sign in again.",
    action: ["Sign in again", signOut] }),
  QUEUE_TOKEN_INVALID: () => ({ text: "Your place in the queue is not valid for this concert. Join the queue again.",
    action: ["Join again", () => joinQueue()] }),
  QUEUE_TOKEN_NOT_ACTIVE: () => ({ text: "It is not your turn yet: keep this page open, we will let you in." }),
  QUEUE_TOKEN_EXPIRED: () => ({ text: "Your turn has ended (tokens last a few minutes). Join the queue again to get back in line.",
    action: ["Join again", () => joinQueue()] }),
  FORBIDDEN: () => ({ text: "You are not allowed to do that (operators only, or it is someone else's)." }),
  NOT_FOUND: () => ({ text: "We could not find that: check the concert id, or the date may be gone." }),
  SEAT_UNAVAILABLE: () => ({ text: "Someone else just took that seat. Please pick another one.",
    action: ["Refresh seats", () => loadSeats(state.scheduleId)] }),
  HOLD_LIMIT_REACHED: () => ({ text: "You already hold the most seats allowed on this date. Pay for them first or let them lapse." }),
  RESERVATION_NOT_PAYABLE: () => ({ text: "This reservation cannot be paid any more (already paid or no longer held)." }),
  RESERVATION_NOT_RELEASABLE: () => ({ text: "Only a held seat can be given back, and only a paid ticket cancelled." }),
  SCHEDULE_CLOSED: () => ({ text: "This date has started: its seats are no longer on sale. Pick another date.",
    action: ["Pick again", () => backToSeats()] }),
  TICKET_LIMIT_REACHED: () => ({ text: "You already own the most tickets allowed for this concert." }),
  CANCELLATION_CLOSED: () => ({ text: "This date starts too soon: the ticket can no longer be cancelled." }),
  RESERVATION_EXPIRED: () => ({ text: "Your hold has lapsed and the seat was released. Pick a seat again.",
    action: ["Pick again", () => backToSeats()] }),
  BALANCE_LIMIT_EXCEEDED: () => ({ text: "Your wallet cannot hold that much. Charge a smaller amount." }),
  PAYLOAD_TOO_LARGE: () => ({ text: "That request is too large to send (1 MiB at most)." }),
  UNSUPPORTED_MEDIA_TYPE: () => ({ text: "The request was not sent as JSON. Please reload the page and try again." }),
  INSUFFICIENT_BALANCE: () => ({ text: "Your balance is too low for this seat. Top up your wallet, then pay again." }),
  IDEMPOTENCY_KEY_REUSED: () => ({ text: "That request was already sent with other details. Please try again." }),
  SALE_NOT_OPEN: (e, retry) => ({ text: `The sale has not opened yet. Try again in ${retry ? formatSeconds(retry) : "a while"}.` }),
  SOLD_OUT: () => ({ text: "Sold out: every seat is sold. If seats come back (a cancellation), the line moves again: keep this page open." }),
  IDEMPOTENCY_IN_PROGRESS: () => ({ text: "Your previous attempt is still being processed. Wait a moment, then try again." }),
  THROTTLED: (e, retry) => ({ text: `The system is busy. Please try again in ${retry || 1} s.` }),
  SERVICE_UNAVAILABLE: (e, retry) => ({ text: `The service is briefly unavailable. Please try again in ${retry || 1} s.` }),
  INTERNAL_ERROR: () => ({ text: "Something went wrong on our side. Please try again." }),
};

function showError(error) {
  if (!(error instanceof ApiError)) { console.error(error); error = new ApiError(0, null); }
  const help = ERROR_HELP[error.code];
  const shown = help ? help(error, error.retryAfter)
    : { text: error.status === 0 ? "Cannot reach the API. Is the local server running (make run)?" : error.message };
  showMessage(`${shown.text}`, "error", shown.action, error.code);
}

function showMessage(text, kind = "ok", action = null, code = "") {
  const box = $("message");
  box.hidden = false;
  box.className = "message " + (kind === "ok" ? "ok" : "error");
  box.dataset.code = code;
  $("message-text").textContent = text;
  const button = $("message-action");
  button.hidden = !action;
  if (action) {
    button.textContent = action[0];
    button.onclick = () => { hideMessage(); action[1](); };
  }
}
function hideMessage() { $("message").hidden = true; $("message").dataset.code = ""; }

// ---------- HTTP ----------
async function api(method, path, { body, queueToken, idempotencyKey, auth = true } = {}) {
  const headers = {};
  if (auth && state.jwt) headers.Authorization = "Bearer " + state.jwt;
  if (queueToken) headers["X-Queue-Token"] = queueToken;
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  return requestJson(method, path, headers, body);
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return "k-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
}

// ---------- 1. sign in ----------
async function signIn(user) {
  try {
    const { data } = await api("POST", "/_local/token", { body: { user, admin: false }, auth: false });
    state.user = data.user;
    state.jwt = data.token;
    sessionStorage.setItem("ticketline.user", JSON.stringify({ user: data.user, jwt: data.token }));
    renderSignedIn();
    await refreshWallet();
  } catch (error) { showError(error); }
}

function signOut() {
  stopTimers();
  sessionStorage.removeItem("ticketline.user");
  Object.assign(state, { user: null, jwt: null, queueToken: null, status: null, holds: [], balance: null });
  location.reload();
}

function renderSignedIn() {
  $("who").textContent = "signed in as " + state.user;
  $("sign-out").hidden = false;
  $("step-sign-in").hidden = true;
  $("step-queue").hidden = false;
  loadTickets();
}

// ---------- what is on sale (public: no sign-in needed to look) ----------
const dateFormat = { weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit",
  minute: "2-digit", timeZone: "UTC", timeZoneName: "short" };
const formatDate = (iso) => new Date(iso).toLocaleString("en-GB", dateFormat);

function formatSeconds(seconds) {
  return seconds < 120 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
}

async function loadConcerts(more = false) {
  const box = $("concerts");
  const query = "?limit=10" + (more && state.concertsCursor ? "&cursor=" + encodeURIComponent(state.concertsCursor) : "");
  try {
    const { data } = await api("GET", "/concerts" + query, { auth: false });
    if (!more) box.textContent = "";
    for (const concert of data.items) box.appendChild(concertButton(concert));
    if (!box.children.length) box.textContent = "Nothing on sale right now. Create a demo concert below once signed in.";
    state.concertsCursor = data.nextCursor;
    $("more-concerts").hidden = !data.nextCursor;
  } catch (error) { box.textContent = ""; showError(error); }
}

function concertButton(concert) {
  const button = document.createElement("button");
  button.dataset.concertId = concert.concertId;
  button.dataset.testid = "concert";
  button.innerHTML = "<span><b></b><br><small></small></span>";
  button.querySelector("b").textContent = concert.title;
  const range = concert.firstStartsAt === concert.lastStartsAt ? formatDate(concert.firstStartsAt)
    : `${formatDate(concert.firstStartsAt)} – ${formatDate(concert.lastStartsAt)}`;
  const opens = Date.parse(concert.salesOpenAt) > Date.now() ? ` · sale opens ${formatDate(concert.salesOpenAt)}` : "";
  button.querySelector("small").textContent = range + opens;
  if (concert.soldOut) {
    const badge = document.createElement("span");
    badge.className = "sold-out";
    badge.dataset.testid = "sold-out";
    badge.textContent = "Sold out";
    button.appendChild(badge);
  }
  button.onclick = () => showConcert(concert.concertId);
  return button;
}

async function showConcert(concertId) {
  for (const button of $("concerts").children) {
    button.classList.toggle("selected", button.dataset.concertId === concertId);
  }
  try {
    const { data } = await api("GET", `/concerts/${encodeURIComponent(concertId)}`, { auth: false });
    state.chosenConcert = data;
    $("concert-detail").hidden = false;
    $("concert-title").textContent = data.title;
    const opensIn = Math.ceil((Date.parse(data.salesOpenAt) - Date.now()) / 1000);
    $("concert-sale").textContent = data.soldOut ? "Sold out: every seat of every date on sale is sold."
      : opensIn > 0 ? `The sale opens ${formatDate(data.salesOpenAt)}.` : "On sale now.";
    const dates = $("concert-dates");
    dates.textContent = "";
    for (const schedule of data.schedules) {   // only the dates that have not started
      const li = document.createElement("li");
      li.dataset.scheduleId = schedule.scheduleId;
      li.textContent = formatDate(schedule.startsAt);
      dates.appendChild(li);
    }
    $("join-concert").disabled = data.soldOut;
    $("join-concert").textContent = data.soldOut ? "Sold out" : "Join the queue";
  } catch (error) { showError(error); }
}

function joinChosenConcert() {
  const concert = state.chosenConcert;
  if (!concert) return;
  $("concert-id").value = concert.concertId;
  if (!state.jwt) {
    showMessage("Sign in first, then join the queue of " + concert.title + ".", "ok");
    $("user").focus();
    return;
  }
  joinQueue(concert.concertId);
  $("step-queue").scrollIntoView({ behavior: "smooth" });
}

// ---------- 2. the queue ----------
async function createDemoConcert() {
  try {
    const ops = await api("POST", "/_local/token", { body: { user: "demo-operator", admin: true }, auth: false });
    const day = 86400 * 1000;
    const schedules = [30, 31].map((days) => ({
      startsAt: new Date(Date.now() + days * day).toISOString().replace(/\.\d+Z$/, "Z"),
      seats: Array.from({ length: 30 }, (_, i) => ({ number: i + 1, price: i < 10 ? 80000 : 50000 })),
    }));
    const response = await fetch("/admin/concerts", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: "Bearer " + ops.data.token,
        // One key per click: a retry of this request would answer the same concert (API.md).
        "Idempotency-Key": crypto.randomUUID(),
      },
      body: JSON.stringify({ title: "Winter night (demo)", queueCapacity: 100, schedules }),
    });
    const data = await response.json();
    if (!response.ok) throw new ApiError(response.status, data, null);
    $("concert-id").value = data.concertId;
    showMessage(`Created "${data.title}" (${data.concertId}). Join its queue!`);
    await loadConcerts();
  } catch (error) { showError(error); }
}

async function joinQueue(concertId = state.concertId) {
  if (!concertId) return;
  stopTimers();
  hideMessage();
  state.concertId = concertId;
  history.replaceState(null, "", "?concert=" + encodeURIComponent(concertId));
  try {
    const { data } = await api("POST", `/concerts/${encodeURIComponent(concertId)}/queue/tokens`);
    state.queueToken = data.token;
    resetPurchase();
    applyQueueState(data.status, data.position, data.activeUntil, 1);
  } catch (error) { showError(error); }
}

async function pollPosition() {
  try {
    const { data } = await api("GET", `/concerts/${encodeURIComponent(state.concertId)}/queue/position`,
      { queueToken: state.queueToken });
    applyQueueState(data.status, data.position, data.activeUntil, data.retryAfterSeconds);
  } catch (error) {
    if (error.retriable) { schedulePoll(error.retryAfter || 2); return; }
    if (error.code === "QUEUE_TOKEN_EXPIRED") applyQueueState("EXPIRED", 0, null, 0);
    if (error.code === "SOLD_OUT") {   // the token keeps its place: keep asking, seats may come back
      applyQueueState("SOLD_OUT", 0, null, 0);
      schedulePoll(error.retryAfter || 10);
    }
    showError(error);
  }
}

function schedulePoll(seconds) {
  clearTimeout(state.pollTimer);
  state.pollTimer = setTimeout(pollPosition, Math.max(1, seconds) * 1000);
}

function applyQueueState(status, position, activeUntil, retryAfterSeconds) {
  const wasActive = state.status === "ACTIVE";
  state.status = status;
  state.activeUntil = activeUntil;
  $("queue-status").hidden = false;
  const badge = $("queue-badge");
  badge.textContent = status.replace("_", " ");
  badge.className = "badge " + status.toLowerCase();
  if (status === "WAIT") {
    $("queue-line").textContent = position === null
      ? "In the lobby: everyone here gets a place in a random order when the sale opens"
      : position === 1 ? "You are next in line" : `${position} people ahead of you`;
    $("queue-detail").textContent = `Checking again in ${retryAfterSeconds} s. Keep this page open.`;
    schedulePoll(retryAfterSeconds);
  } else if (status === "ACTIVE") {
    $("queue-line").textContent = "It's your turn!";
    tickClock();
    if (!wasActive) loadSchedules();
  } else if (status === "SOLD_OUT") {
    $("queue-line").textContent = "Sold out";
    $("queue-detail").textContent = "You keep your place: if seats come back, the line moves again.";
    $("step-seats").hidden = true;
  } else {
    $("queue-line").textContent = "Your turn has ended";
    $("queue-detail").textContent = "Join the queue again to get back in line.";
    $("step-seats").hidden = true;
  }
}

function tickClock() {
  clearTimeout(state.clockTimer);
  const parts = [];
  if (state.status === "ACTIVE" && state.activeUntil) {
    parts.push(`Your turn ends in ${formatLeft(state.activeUntil)}.`);
  }
  for (const hold of state.holds) {
    const left = document.querySelector(`[data-hold-left="${hold.reservationId}"]`);
    if (left) left.textContent = formatLeft(hold.holdExpiresAt);
  }
  if (state.status === "ACTIVE") $("queue-detail").textContent = parts.join(" ");
  state.clockTimer = setTimeout(tickClock, 1000);
}

function formatLeft(iso) {
  const seconds = Math.max(0, Math.round((Date.parse(iso) - Date.now()) / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

function stopTimers() { clearTimeout(state.pollTimer); clearTimeout(state.clockTimer); }

// ---------- 3. dates and seats ----------
async function loadSchedules() {
  $("step-seats").hidden = false;
  const box = $("schedules");
  box.textContent = "Loading dates…";
  try {
    const { data } = await api("GET", `/concerts/${encodeURIComponent(state.concertId)}/schedules`,
      { queueToken: state.queueToken });
    box.textContent = "";
    if (!data.schedules.length) { box.textContent = "Sold out: no date has a free seat."; return; }
    for (const schedule of data.schedules) {
      const button = document.createElement("button");
      button.dataset.scheduleId = schedule.scheduleId;
      button.dataset.testid = "schedule";
      button.innerHTML = `<b></b><small></small>`;
      button.querySelector("b").textContent = new Date(schedule.startsAt).toLocaleString("en-GB",
        { weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
          timeZone: "UTC", timeZoneName: "short" });
      button.querySelector("small").textContent = `${schedule.availableSeats} seats free`;
      button.onclick = () => loadSeats(schedule.scheduleId);
      box.appendChild(button);
    }
  } catch (error) { box.textContent = ""; showError(error); }
}

async function loadSeats(scheduleId) {
  if (!scheduleId) return;
  state.scheduleId = scheduleId;
  state.seatNumber = null;
  for (const button of $("schedules").children) {
    button.classList.toggle("selected", button.dataset.scheduleId === scheduleId);
  }
  try {
    const { data } = await api("GET",
      `/concerts/${encodeURIComponent(state.concertId)}/schedules/${encodeURIComponent(scheduleId)}/seats`,
      { queueToken: state.queueToken });
    state.seats = data.seats;
    renderSeatMap();
  } catch (error) { showError(error); }
}

function renderSeatMap() {
  $("seat-area").hidden = false;
  const map = $("seat-map");
  map.textContent = "";
  const free = new Map(state.seats.map((seat) => [seat.number, seat]));
  const highest = Math.max(0, ...state.seats.map((seat) => seat.number), state.seatNumber || 0);
  const last = Math.max(10, Math.ceil(highest / 10) * 10);
  for (let number = 1; number <= last; number++) {
    const seat = free.get(number);
    const cell = document.createElement("button");
    cell.className = "seat" + (seat ? "" : " taken") + (number === state.seatNumber ? " chosen" : "");
    cell.textContent = number;
    cell.dataset.seat = number;
    cell.disabled = !seat;
    cell.title = seat ? `Seat ${number}: ${won.format(seat.price)}` : `Seat ${number}: taken`;
    if (seat) cell.onclick = () => chooseSeat(number);
    map.appendChild(cell);
  }
  const chosen = free.get(state.seatNumber);
  $("seat-choice").textContent = chosen ? `Seat ${chosen.number} · ${won.format(chosen.price)}` : "Choose a free seat.";
  $("hold").disabled = !chosen;
}

function chooseSeat(number) { state.seatNumber = number; renderSeatMap(); }

async function holdSeat() {
  $("hold").disabled = true;
  try {
    const { data } = await api("POST", "/reservations",
      { body: { scheduleId: state.scheduleId, seatNumber: state.seatNumber }, queueToken: state.queueToken });
    state.holds.push(data);
    state.payKey = null;                      // another set of seats: another payment
    hideMessage();
    renderHolds();
    $("step-pay").hidden = false;
    await Promise.all([refreshWallet(), loadSeats(state.scheduleId)]);
  } catch (error) {
    showError(error);
    if (error.code === "SEAT_UNAVAILABLE") await loadSeats(state.scheduleId);
    else $("hold").disabled = false;
  }
}

function renderHolds() {
  const box = $("reservation");
  box.textContent = "";
  for (const hold of state.holds) {
    const line = document.createElement("div");
    line.className = "row";
    line.dataset.testid = "hold-line";
    line.innerHTML = `<span>Seat <b></b> held for you: <b></b>. Pay within <b></b>.</span>`
      + `<button class="small secondary" data-testid="release">Give back</button>`;
    const bolds = line.querySelectorAll("b");
    bolds[0].textContent = hold.seatNumber;
    bolds[1].textContent = won.format(hold.price);
    bolds[2].dataset.holdLeft = hold.reservationId;
    line.querySelector("button").onclick = () => releaseHold(hold);
    box.appendChild(line);
  }
  if (!state.holds.length) box.textContent = "No seat held: pick one above.";
  const total = state.holds.reduce((sum, hold) => sum + hold.price, 0);
  const seats = state.holds.length === 1 ? "1 seat" : `${state.holds.length} seats`;
  $("pay").textContent = `Pay ${won.format(total)} for ${seats}`;
  updatePayButton();
  tickClock();
}

async function releaseHold(hold) {
  try {
    await api("DELETE", `/reservations/${encodeURIComponent(hold.reservationId)}`);
    showMessage(`Seat ${hold.seatNumber} given back: it is free for the next buyer.`);
  } catch (error) {
    showError(error);
    if (error.code !== "RESERVATION_NOT_RELEASABLE") return;   // else lapsed or paid meanwhile: not ours to hold
  }
  state.holds = state.holds.filter((h) => h.reservationId !== hold.reservationId);
  state.payKey = null;
  renderHolds();
  if (hold.scheduleId === state.scheduleId) await loadSeats(state.scheduleId);
}

function backToSeats() {
  state.holds = state.holds.filter((hold) => Date.parse(hold.holdExpiresAt) > Date.now());
  renderHolds();
  if (!state.holds.length) $("step-pay").hidden = true;
  loadSeats(state.scheduleId);
}

// ---------- 4. wallet and payment ----------
async function refreshWallet() {
  try {
    const { data } = await api("GET", "/wallet");
    state.balance = data.balance;
    $("balance").textContent = won.format(data.balance);
    updatePayButton();
    await refreshHistory();
  } catch (error) { showError(error); }
}

async function refreshHistory() {
  try {
    const { data } = await api("GET", "/wallet/history?limit=10");
    const list = $("history");
    list.textContent = "";
    for (const item of data.items) {
      const li = document.createElement("li");
      const sign = item.type === "PAYMENT" ? "−" : "+";
      li.textContent = `${new Date(item.at).toLocaleString("en-GB")} · ${item.type} ${sign}${won.format(item.amount)}`
        + ` → ${won.format(item.balanceAfter)}`;
      list.appendChild(li);
    }
    if (!data.items.length) list.innerHTML = "<li>No movements yet.</li>";
  } catch (error) { /* the history is a nicety: the balance already told the user what matters */ }
}

async function topUp(amount) {
  state.chargeKey = state.chargeKey || newKey();   // a retry of the same attempt reuses its key: charged once
  $("top-up").disabled = true;
  try {
    const { data } = await api("POST", "/wallet/charges", { body: { amount }, idempotencyKey: state.chargeKey });
    state.chargeKey = null;
    state.balance = data.balance;
    $("balance").textContent = won.format(data.balance);
    showMessage(`Added ${won.format(amount)} to your wallet.`);
    updatePayButton();
    await refreshHistory();
  } catch (error) {
    if (!error.retriable && error.code !== "IDEMPOTENCY_IN_PROGRESS") state.chargeKey = null;
    showError(error);
  } finally { $("top-up").disabled = false; }
}

function updatePayButton() {
  $("pay").disabled = !state.holds.length;
}

async function pay() {
  state.payKey = state.payKey || newKey();
  $("pay").disabled = true;
  const paying = state.holds.slice();
  try {
    const { data } = await api("POST", "/payments",
      { body: { reservationIds: paying.map((hold) => hold.reservationId) }, queueToken: state.queueToken,
        idempotencyKey: state.payKey });
    state.payKey = null;
    state.holds = [];
    state.balance = data.balance;
    $("balance").textContent = won.format(data.balance);
    await refreshHistory();
    stopTimers();
    state.status = "DONE";
    hideMessage();
    const numbers = paying.map((hold) => hold.seatNumber).join(", ");
    const ticket = $("ticket");
    ticket.innerHTML = (paying.length === 1 ? "Seat <b></b> is yours." : "Seats <b></b> are yours.")
      + " Paid <b></b> · payment <code></code><br><span class='hint'>Balance left: <span></span></span>";
    ticket.querySelectorAll("b")[0].textContent = numbers;
    ticket.querySelectorAll("b")[1].textContent = won.format(data.amount);
    ticket.querySelector("code").textContent = data.paymentId;
    ticket.querySelector(".hint span").textContent = won.format(data.balance);
    $("step-done").hidden = false;
    $("step-seats").hidden = true;
    renderHolds();                            // the wallet and its history stay in view (refunds show there)
    $("queue-line").textContent = "Done: your queue token is used up";
    $("queue-detail").textContent = "";
    await loadTickets();
    $("step-done").scrollIntoView({ behavior: "smooth" });
  } catch (error) {
    if (!error.retriable && error.code !== "IDEMPOTENCY_IN_PROGRESS") state.payKey = null;
    if (error.code === "RESERVATION_EXPIRED" || error.code === "RESERVATION_NOT_PAYABLE") {
      state.holds = state.holds.filter((hold) => Date.parse(hold.holdExpiresAt) > Date.now());
      renderHolds();
    }
    updatePayButton();
    showError(error);
  }
}

// ---------- my tickets: cancel a paid one, the price back in the wallet ----------
async function loadTickets() {
  try {
    const { data } = await api("GET", "/reservations?limit=20");
    const list = $("tickets");
    list.textContent = "";
    const tickets = data.items.filter((r) => r.status === "PAID" || r.status === "CANCELLED");
    for (const ticket of tickets) {
      const li = document.createElement("li");
      li.className = "row";
      li.dataset.testid = "ticket-line";
      li.dataset.reservationId = ticket.reservationId;
      li.innerHTML = "<span>Seat <b></b> · <span></span> <span class='status'></span></span>";
      li.querySelector("b").textContent = ticket.seatNumber;
      li.querySelector("span > span").textContent = won.format(ticket.price);
      const status = li.querySelector(".status");
      status.textContent = ticket.status;
      status.classList.toggle("paid", ticket.status === "PAID");
      if (ticket.status === "PAID") {
        const cancel = document.createElement("button");
        cancel.className = "small secondary";
        cancel.dataset.testid = "cancel-ticket";
        cancel.textContent = "Cancel (refund)";
        cancel.onclick = () => cancelTicket(ticket, cancel);
        li.appendChild(cancel);
      }
      list.appendChild(li);
    }
    $("step-tickets").hidden = !tickets.length;
  } catch (error) { /* a nicety like the history: the purchase itself told the user what matters */ }
}

async function cancelTicket(ticket, button) {
  const key = state.cancelKeys[ticket.reservationId] || newKey();   // a retry of this cancellation: refunded once
  state.cancelKeys[ticket.reservationId] = key;
  button.disabled = true;
  try {
    const { data } = await api("POST", `/reservations/${encodeURIComponent(ticket.reservationId)}/cancellation`,
      { idempotencyKey: key });
    delete state.cancelKeys[ticket.reservationId];
    showMessage(`Seat ${ticket.seatNumber} cancelled: ${won.format(data.refund)} refunded to your wallet.`);
    await Promise.all([refreshWallet(), loadTickets()]);
  } catch (error) {
    if (!error.retriable && error.code !== "IDEMPOTENCY_IN_PROGRESS") delete state.cancelKeys[ticket.reservationId];
    button.disabled = false;
    showError(error);
  }
}

function resetPurchase() {
  Object.assign(state, { scheduleId: null, seats: [], seatNumber: null, holds: [], payKey: null });
  $("seat-area").hidden = true;
  $("step-pay").hidden = true;
  $("step-done").hidden = true;
}

// ---------- wiring ----------
$("sign-in-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("user").value.trim()); });
$("sign-out").addEventListener("click", signOut);
$("concert-form").addEventListener("submit", (e) => { e.preventDefault(); joinQueue($("concert-id").value.trim()); });
$("create-demo").addEventListener("click", (e) => { e.preventDefault(); createDemoConcert(); });
$("more-concerts").addEventListener("click", () => loadConcerts(true));
$("join-concert").addEventListener("click", joinChosenConcert);
$("hold").addEventListener("click", holdSeat);
$("top-up-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const amount = Number($("amount").value);
  if (!Number.isInteger(amount) || amount < 1 || amount > 10000000) {
    showMessage("Top up between ₩1 and ₩10,000,000 (whole won).", "error", null, "VALIDATION_ERROR");
    return;
  }
  topUp(amount);
});
$("pay").addEventListener("click", pay);
$("again").addEventListener("click", () => joinQueue());
$("message-close").addEventListener("click", hideMessage);

(function restore() {
  loadConcerts();
  const params = new URLSearchParams(location.search);
  if (params.get("concert")) $("concert-id").value = params.get("concert");
  const saved = JSON.parse(sessionStorage.getItem("ticketline.user") || "null");
  if (saved) {
    state.user = saved.user;
    state.jwt = saved.jwt;
    renderSignedIn();
    refreshWallet();
  }
})();
