// Ticketline operator page: sign in as an operator, watch a concert's sale (GET /admin/concerts/{id}, sampled every
// few seconds and charted), pause, resume or resize its queue (PATCH /admin/concerts/{id}/queue). http.js first.
"use strict";

const $ = (id) => document.getElementById(id);
const won = new Intl.NumberFormat("ko-KR", { style: "currency", currency: "KRW" });
const SAMPLE_SECONDS = Number(new URLSearchParams(location.search).get("sample")) || 5;
const KEPT_SAMPLES = 720;  // an hour at the default pace
const SERIES = ["waiting", "active", "sold"];
const state = { user: null, jwt: null, concertId: null, samples: [], timer: null };

// ---------- messages: the API's error body as it is (code, message, the fields at fault) ----------
function showError(error) {
  if (!(error instanceof ApiError)) { console.error(error); error = new ApiError(0, null); }
  const text = error.status === 0 ? "Cannot reach the API. Is the local server running (make run)?"
    : `${error.code}: ${detailText(error)}`;
  showMessage(text, "error", error.code);
}

function showMessage(text, kind = "ok", code = "") {
  const box = $("message");
  box.hidden = false;
  box.className = "message " + kind;
  box.dataset.code = code;
  $("message-text").textContent = text;
}

async function api(method, path, body) {
  return requestJson(method, path, state.jwt ? { Authorization: "Bearer " + state.jwt } : {}, body);
}

// ---------- sign in (the local server's development token, in the admin group) ----------
async function signIn(user) {
  try {
    const { data } = await requestJson("POST", "/_local/token", {}, { user, admin: true });
    Object.assign(state, { user: data.user, jwt: data.token });
    sessionStorage.setItem("ticketline.operator", JSON.stringify({ user: data.user, jwt: data.token }));
    renderSignedIn();
  } catch (error) { showError(error); }
}

function signOut() {
  sessionStorage.removeItem("ticketline.operator");
  location.reload();
}

function renderSignedIn() {
  $("who").textContent = "operator " + state.user;
  $("sign-out").hidden = false;
  $("sign-in").hidden = true;
  $("concert-list").hidden = false;
  loadConcerts();
}

async function loadConcerts() {
  const box = $("concerts");
  try {
    const { data } = await requestJson("GET", "/concerts?limit=20", {});  // public: no token
    box.textContent = data.items.length ? "" : "No concert on sale or coming up.";
    for (const concert of data.items) {
      const button = document.createElement("button");
      button.className = "secondary";
      button.dataset.testid = "concert";
      button.dataset.concertId = concert.concertId;
      button.textContent = `${concert.title} · ${new Date(concert.firstStartsAt).toLocaleString()}`;
      button.addEventListener("click", () => watch(concert.concertId));
      box.appendChild(button);
    }
  } catch (error) { box.textContent = ""; showError(error); }
}

// ---------- one concert's sale, sampled ----------
function watch(concertId) {
  clearInterval(state.timer);
  Object.assign(state, { concertId, samples: [] });
  for (const button of $("concerts").querySelectorAll("button")) {
    button.classList.toggle("selected", button.dataset.concertId === concertId);
  }
  $("sale").hidden = false;
  drawChart();
  sample();
  state.timer = setInterval(sample, SAMPLE_SECONDS * 1000);
}

async function sample() {
  const concertId = state.concertId;
  try {
    const { data } = await api("GET", `/admin/concerts/${encodeURIComponent(concertId)}`);
    if (concertId !== state.concertId) return;  // another concert was chosen meanwhile
    renderSale(data);
    state.samples.push({ at: Date.now(), waiting: data.queue.waiting, active: data.queue.active || 0,
      sold: data.sales.sold });
    state.samples = state.samples.slice(-KEPT_SAMPLES);
    $("f-rate").textContent = soldPerMinute().toFixed(1);
    drawChart();
  } catch (error) { showError(error); }
}

function renderSale(sale) {
  $("sale-title").textContent = sale.title;
  $("sale-status").textContent = sale.status;
  renderQueue(sale.queue);
  const figures = { free: sale.sales.free, held: sale.sales.held, sold: sale.sales.sold,
    cancelled: sale.sales.cancelled, revenue: won.format(sale.sales.revenue) };
  for (const [name, value] of Object.entries(figures)) $("f-" + name).textContent = value;
  $("as-of").textContent = `Seat figures counted ${age(sale.figuresAsOf.seats)}; line as of the admission run `
    + `${age(sale.figuresAsOf.queue)}. ${sale.sales.seats} seats over ${sale.schedules.length} date(s).`;
  $("dates").replaceChildren(...sale.schedules.map((date) => {
    const row = document.createElement("tr");
    for (const cell of [new Date(date.startsAt).toLocaleString(), date.free, date.held, date.sold]) {
      row.appendChild(document.createElement("td")).textContent = cell;
    }
    return row;
  }));
  $("changes").replaceChildren(...sale.queueChanges.slice().reverse().map((change) => {
    const item = document.createElement("li");
    const what = [change.paused === null ? null : (change.paused ? "paused" : "resumed"),
      change.capacity === null ? null : `capacity ${change.capacity}`].filter(Boolean).join(", ");
    item.textContent = `${new Date(change.at).toLocaleTimeString()} · ${change.operator} · ${what}`;
    return item;
  }));
}

function renderQueue(queue) {
  for (const name of ["waiting", "admitted", "capacity"]) $("f-" + name).textContent = queue[name];
  $("f-active").textContent = queue.active === null ? "–" : queue.active;
  $("f-paused").textContent = queue.paused ? "PAUSED" : "running";
  $("f-paused").dataset.paused = String(queue.paused);
  $("f-wait").textContent = queue.estimatedWaitSeconds === null ? "–" : `${queue.estimatedWaitSeconds} s`;
  if (document.activeElement !== $("capacity-input")) $("capacity-input").value = queue.capacity;
}

function age(iso) {
  if (!iso) return "never yet";
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return `${seconds} s ago`;
}

function soldPerMinute() {
  const last = state.samples[state.samples.length - 1];
  const first = state.samples.find((s) => last.at - s.at <= 60000) || last;
  const minutes = (last.at - first.at) / 60000;
  return minutes > 0 ? (last.sold - first.sold) / minutes : 0;
}

// ---------- the chart: plain SVG, minutes since the first sample on the x axis ----------
const SVG = "http://www.w3.org/2000/svg";
const BOX = { left: 44, right: 730, top: 12, bottom: 196 };

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function drawChart() {
  const chart = $("chart");
  const samples = state.samples;
  chart.dataset.points = String(samples.length);
  const first = samples.length ? samples[0].at : Date.now();
  const spanMinutes = Math.max(1, samples.length ? (samples[samples.length - 1].at - first) / 60000 : 1);
  const top = Math.max(1, ...samples.flatMap((s) => SERIES.map((name) => s[name])));
  const x = (at) => BOX.left + ((at - first) / 60000 / spanMinutes) * (BOX.right - BOX.left);
  const y = (value) => BOX.bottom - (value / top) * (BOX.bottom - BOX.top);
  const parts = [
    svg("line", { class: "axis", x1: BOX.left, y1: BOX.bottom, x2: BOX.right, y2: BOX.bottom }),
    svg("line", { class: "axis", x1: BOX.left, y1: BOX.top, x2: BOX.left, y2: BOX.bottom }),
    svg("text", { x: 4, y: BOX.top + 10 }, String(top)),
    svg("text", { x: 4, y: BOX.bottom }, "0"),
  ];
  const step = spanMinutes <= 10 ? 1 : Math.ceil(spanMinutes / 10);
  for (let minute = 0; minute <= spanMinutes; minute += step) {
    parts.push(svg("text", { x: x(first + minute * 60000), y: BOX.bottom + 16, "text-anchor": "middle" },
      `${minute} min`));
  }
  for (const name of SERIES) {
    const points = samples.map((s) => `${x(s.at).toFixed(1)},${y(s[name]).toFixed(1)}`);
    parts.push(svg("polyline", { class: name, points: points.join(" ") }));
    for (const s of samples) {
      parts.push(svg("circle", { class: name, cx: x(s.at).toFixed(1), cy: y(s[name]).toFixed(1), r: 2.5,
        "data-series": name }));
    }
  }
  chart.replaceChildren(...parts);
}

// ---------- the controls ----------
async function changeQueue(body, done) {
  try {
    const { data } = await api("PATCH", `/admin/concerts/${encodeURIComponent(state.concertId)}/queue`, body);
    renderQueue(data);
    showMessage(done(data), "ok");
    sample();
  } catch (error) { showError(error); }
}

$("sign-in-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("user").value.trim()); });
$("sign-out").addEventListener("click", signOut);
$("message-close").addEventListener("click", () => { $("message").hidden = true; });
$("concert-form").addEventListener("submit", (e) => { e.preventDefault(); watch($("concert-id").value.trim()); });
$("pause").addEventListener("click", () => changeQueue({ paused: true },
  (q) => `Admission paused (the server says paused: ${q.paused}).`));
$("resume").addEventListener("click", () => changeQueue({ paused: false },
  (q) => `Admission resumed (the server says paused: ${q.paused}).`));
$("capacity-form").addEventListener("submit", (e) => {
  e.preventDefault();
  // Sent as typed: the API's own validation answers a bad number (a 400 with the field at fault).
  changeQueue({ capacity: Number($("capacity-input").value) }, (q) => `Capacity set to ${q.capacity}.`);
});

(function restore() {
  $("sample-seconds").textContent = SAMPLE_SECONDS;
  const saved = JSON.parse(sessionStorage.getItem("ticketline.operator") || "null");
  if (saved) {
    Object.assign(state, { user: saved.user, jwt: saved.jwt });
    renderSignedIn();
  }
  const concert = new URLSearchParams(location.search).get("concert");
  if (concert && saved) watch(concert);
})();
