// What every view of the dashboard shares: the token, calls to the API, DOM helpers, formats,
// the error banner. Text from the database is only ever set with textContent (see `el`).

const TOKEN_KEY = "influencers.apiToken";
let tz = undefined; // the API's zone (INFLUENCERS_TZ), learnt from /api/v1/status

class Unauthorized extends Error {
  constructor(token) {
    super("需要 API 令牌");
    this.unauthorized = true;
    this.token = token;
  }
}

// -- token: #token=… once, then sessionStorage ---------------------------------------------
export function takeTokenFromHash() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(refused) {
  if (sessionStorage.getItem(TOKEN_KEY) === refused) sessionStorage.removeItem(TOKEN_KEY);
}

// `api(path)` GETs; `api(path, {method, body})` sends ``body`` as JSON. Every state-changing call
// says Content-Type: application/json, also without a body: the API refuses (415) any other.
export async function api(path, options = {}) {
  const method = options.method || "GET";
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  if (method !== "GET") headers["Content-Type"] = "application/json";
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  const response = await fetch(path, { method, headers, body, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized(token);
  const reply = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const message = reply && reply.error ? reply.error.message : "HTTP " + response.status;
    throw Object.assign(new Error(message), { status: response.status });
  }
  return reply;
}

// -- small DOM helpers ----------------------------------------------------------------------
export function el(tag, props, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children || []) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

export const num = (value) => (value === null || value === undefined ? "—" : Number(value).toLocaleString("zh-CN"));
export const signed = (value) => (value === null || value === undefined ? "—" : (value > 0 ? "+" : "") + num(value));

export function setZone(zone) {
  tz = zone;
}

// The overview's times: in the API's zone, as its quota days are.
export function time(value) {
  if (!value) return "—";
  const options = { timeZone: tz, hour12: false, month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", second: "2-digit" };
  try { return new Date(value).toLocaleString("zh-CN", options); } catch (e) { return value; }
}

// A date and time in the browser's zone, for the influencer pages.
export function localTime(value) {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString("zh-CN", { hour12: false, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit" });
}

export function badge(kind, labels) {
  return el("span", { class: "status " + kind, text: labels[kind] || kind });
}

// columns: [{key, label, num?, head?() -> Node, render?(row) -> Node|string}]
export function fillTable(id, columns, rows, keyOf, rowClass) {
  const table = document.getElementById(id);
  const head = el("thead", {}, [el("tr", {}, columns.map((c) =>
    el("th", { class: c.num ? "num" : "", "data-field": c.key }, [c.head ? c.head() : c.label])))]);
  const body = el("tbody");
  if (!rows.length) {
    body.append(el("tr", {}, [el("td", { class: "empty", colSpan: columns.length, text: "暂无数据" })]));
  }
  for (const row of rows) {
    const tr = el("tr", { "data-key": keyOf(row), class: rowClass ? rowClass(row) : "" });
    for (const c of columns) {
      const raw = row[c.key];
      const content = c.render ? c.render(row) : c.num ? num(raw) : raw === null || raw === undefined ? "—" : String(raw);
      const td = el("td", { class: c.num ? "num" : "", "data-field": c.key,
        "data-value": raw === null || raw === undefined || typeof raw === "object" ? "" : raw });
      td.append(content);
      tr.append(td);
    }
    body.append(tr);
  }
  table.replaceChildren(head, body);
}

export function showError(message) {
  const banner = document.getElementById("error");
  banner.hidden = !message;
  banner.textContent = message || "";
}

// -- views: one shown at a time; a later load wins over one still in flight -----------------
export const VIEWS = ["content", "influencers-view", "influencer-view"];
let loads = 0;

// Call when a load starts; the function it returns says whether that load is still the latest.
export function begin() {
  const mine = ++loads;
  return () => mine === loads;
}

export function hideViewsExcept(id) {
  for (const view of VIEWS) if (view !== id) document.getElementById(view).hidden = true;
}

// A view's data arrived: show it (alone), drop the token form and any old error. The view's
// data-loads counts its renders (the tests wait on it).
export function shown(id) {
  hideViewsExcept(id);
  const view = document.getElementById(id);
  view.hidden = false;
  view.dataset.loads = String(Number(view.dataset.loads || 0) + 1);
  document.getElementById("login").hidden = true;
  showError("");
}

// A call failed: a refused token brings back the token form, anything else goes to the banner.
export function failed(error) {
  if (!error.unauthorized) {
    showError(error.message);
    return;
  }
  forgetToken(error.token);
  hideViewsExcept(null);
  document.getElementById("login").hidden = false;
  const live = document.getElementById("live");
  live.textContent = "未认证";
  live.className = "pill stale";
  showError("");
}
