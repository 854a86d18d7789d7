// What every page shares: guarded field access, formatting, the JSON API, the header (navigation,
// user, language switch), the one live EventSource of the page, and redraw throttling.
import { applyI18n, lang, setLang, t, tEnum } from "/static/i18n.js";

export { t, tEnum, lang };

// ---------------------------------------------------------------- guards: a document may be anything

/** A finite number, else null ("1.5", NaN, objects are not numbers). */
export function num(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
/** A non-empty string (numbers are shown as text), else null. */
export function str(v) {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return null;
}
/** A plain object, else {} (arrays and null are not objects here). */
export function obj(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? v : {};
}
export function arr(v) {
  return Array.isArray(v) ? v : [];
}
/** obj(v)[k1][k2]... with a guard at every level. */
export function path(v, ...keys) {
  let cur = v;
  for (const k of keys) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = cur[k];
  }
  return cur;
}

// ---------------------------------------------------------------- formatting

const NONE = "—";

export function fmtNum(v, digits = 2) {
  const n = num(v);
  if (n === null) return NONE;
  return n.toLocaleString(lang() === "zh" ? "zh-CN" : "en-US", {
    minimumFractionDigits: 0,
    maximumFractionDigits: digits,
  });
}
export function fmtInt(v) {
  return fmtNum(v, 0);
}
export function fmtPct(v, digits = 1) {
  const n = num(v);
  return n === null ? NONE : `${fmtNum(n * 100, digits)} %`;
}
export function fmtText(v) {
  const s = str(v);
  return s === null || s === "" ? NONE : s;
}
/** An RFC 3339 time in the browser's local time, to the second. */
export function fmtTs(v) {
  const s = str(v);
  if (!s) return NONE;
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  return d.toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}

// ---------------------------------------------------------------- DOM

/** h("td", {class: "x", dataset: {testid: "y"}}, "text", child...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "class") el.className = v;
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** el's children become `children` (arrays flattened; null, undefined and false left out). */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

export function byId(id) {
  return document.getElementById(id);
}

/** Runs a section's render; a malformed document shows a note in that section, never breaks the page. */
export function section(el, render) {
  if (!el) return;
  try {
    render(el);
  } catch (err) {
    console.error("render failed", el.id, err);
    fill(el, h("p", { class: "muted", dataset: { testid: "render-error" } }, t("common.error")));
  }
}

/** A table: columns [{label, cell(row) -> Node|string, testid?, class?}] */
export function table(columns, rows, { rowAttrs = () => ({}), testid = null } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.label)));
  const body = rows.map((row, i) =>
    h(
      "tr",
      rowAttrs(row, i),
      columns.map((c) => {
        let content;
        try {
          content = c.cell(row, i);
        } catch {
          content = NONE;
        }
        return h("td", { class: c.class, dataset: c.testid ? { testid: c.testid } : undefined }, content);
      }),
    ),
  );
  if (!rows.length) {
    body.push(h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, t("common.empty"))));
  }
  return h("table", { class: "grid", dataset: testid ? { testid } : undefined }, h("thead", {}, head), h("tbody", {}, body));
}

/** A definition list of [label, value, testid] rows. */
export function facts(rows) {
  return h(
    "dl",
    { class: "facts" },
    rows.map(([label, value, testid]) => [
      h("dt", {}, label),
      h("dd", { dataset: testid ? { testid } : undefined }, value),
    ]),
  );
}

export function customerLink(id) {
  const s = str(id);
  if (!s) return NONE;
  return h("a", { href: `/customers/${encodeURIComponent(s)}`, dataset: { testid: "customer-link" } }, s);
}

export function badge(prefix, value) {
  const s = str(value);
  return h("span", { class: `badge ${prefix}-${s || "none"}` }, tEnum(prefix, s));
}

// ---------------------------------------------------------------- API

export class ApiError extends Error {
  constructor(status, detail) {
    super(`HTTP ${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

function toLogin() {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(next)}`);
}

/**
 * fetch /api/...: JSON in and out; 401 -> the sign-in page; other errors throw ApiError.
 * `meta` (an object) gets the response's `headers`.
 */
export async function api(url, { method = "GET", body = undefined, meta = undefined } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  if (meta) meta.headers = resp.headers;
  if (resp.status === 401 && !url.startsWith("/api/login")) {
    toLogin();
    throw new ApiError(401, "signed out");
  }
  let data = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  if (!resp.ok) throw new ApiError(resp.status, str(obj(data).detail) || resp.statusText);
  return data;
}

// ---------------------------------------------------------------- header

const NAV = [
  ["/", "nav.overview", "overview"],
  ["/matrix", "nav.matrix", "matrix"],
  ["/alerts", "nav.alerts", "alerts"],
  ["/outages", "nav.outages", "outages"],
  ["/reliability", "nav.reliability", "reliability"],
  ["/areas", "nav.areas", "areas"],
];

let me = null;

export function currentUser() {
  return me;
}

function renderHeader(active) {
  const el = byId("gp-header");
  if (!el) return;
  const user = me
    ? h(
        "span",
        { class: "user", dataset: { testid: "user", role: str(me.role) || "" } },
        `${fmtText(me.user)} · ${tEnum("role", me.role)}`,
      )
    : null;
  fill(el, 
    h("a", { class: "brand", href: "/" }, t("app.brand")),
    h(
      "nav",
      {},
      NAV.map(([href, key, name]) =>
        h("a", { href, class: name === active ? "active" : null, dataset: { testid: `nav-${name}` } }, t(key)),
      ),
    ),
    h("span", { class: "spacer" }),
    h("span", { id: "live-status", class: "live", dataset: { testid: "live-status", state: liveState } }, t(`live.${liveState}`)),
    user,
    h(
      "button",
      { type: "button", class: "link", dataset: { testid: "lang-switch" }, onclick: () => setLang(lang() === "zh" ? "en" : "zh") },
      t("nav.switch"),
    ),
    me
      ? h("button", { type: "button", class: "link", dataset: { testid: "logout" }, onclick: logout }, t("nav.logout"))
      : null,
  );
}

async function logout() {
  try {
    await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
  } finally {
    window.location.assign("/login");
  }
}

/**
 * Starts a signed-in page: checks the session (/api/me; 401 -> sign-in page), draws the header,
 * fills the static labels, and calls `render()` again whenever the language changes.
 */
export async function startPage(active, render) {
  applyI18n(document);
  renderHeader(active);
  me = obj(await api("/api/me"));
  renderHeader(active);
  window.addEventListener("gp:lang", () => {
    renderHeader(active);
    render();
  });
  return me;
}

// ---------------------------------------------------------------- live stream

let liveState = "connecting";

function setLiveState(state) {
  liveState = state;
  const el = byId("live-status");
  if (el) {
    el.dataset.state = state;
    el.textContent = t(`live.${state}`);
  }
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

/**
 * The page's ONE EventSource on /events. onUpdate({kind, key, doc}) per `update`, onOverview(body)
 * per `overview`, onReset() on `reset` (the client fell behind: refetch) and when the stream
 * reconnects (what was published while it was down is lost: refetch). A message that is not JSON
 * or lacks its fields is dropped here; the handlers' own errors are logged, never thrown.
 *
 * Returns {es, opened}: `opened` resolves once the server has subscribed this client (the
 * response's headers are in), at most `openWaitMs` later; a page that fetches its snapshot
 * after it loses nothing published in between. onSubscribed(version) per `subscribed` event:
 * the server's state version at the subscription (a snapshot with a lower X-Feed-Version may
 * lack a change published before it: a page that fetched at once refetches then).
 */
export function live(kinds, { onUpdate, onOverview, onReset, onSubscribed, customer, openWaitMs = 3000 } = {}) {
  const q = new URLSearchParams({ kinds: kinds.join(",") });
  if (customer) q.set("customer", customer);
  const es = new EventSource(`/events?${q}`, { withCredentials: true });
  const guarded = (fn, arg) => {
    try {
      fn(arg);
    } catch (err) {
      console.error("live handler failed", err);
    }
  };
  let openedOnce = false;
  let markOpened;
  const opened = new Promise((resolve) => {
    markOpened = resolve;
    setTimeout(resolve, openWaitMs);
  });
  es.addEventListener("open", () => {
    setLiveState("open");
    if (openedOnce && onReset) guarded(onReset);
    openedOnce = true;
    markOpened();
  });
  es.addEventListener("error", () => setLiveState(es.readyState === EventSource.CLOSED ? "error" : "connecting"));
  es.addEventListener("update", (ev) => {
    const msg = obj(parse(ev.data));
    const kind = str(msg.kind);
    const doc = msg.doc;
    if (!kind || doc === null || typeof doc !== "object" || Array.isArray(doc)) return;
    if (onUpdate) guarded(onUpdate, { kind, key: str(msg.key), doc });
  });
  es.addEventListener("overview", (ev) => {
    const body = parse(ev.data);
    if (onOverview && body && typeof body === "object") guarded(onOverview, body);
  });
  es.addEventListener("subscribed", (ev) => {
    const version = num(obj(parse(ev.data)).version);
    if (onSubscribed && version !== null) guarded(onSubscribed, version);
  });
  es.addEventListener("reset", () => {
    if (onReset) guarded(onReset);
  });
  window.addEventListener("pagehide", () => es.close());
  return { es, opened };
}

/** fn() at most once per `ms` (trailing: calls in between are folded into the one that follows). */
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return (...args) => {
    const wait = last + ms - Date.now();
    if (timer) return;
    timer = setTimeout(
      () => {
        timer = null;
        last = Date.now();
        fn(...args);
      },
      Math.max(0, wait),
    );
  };
}

/** Event-time merge: does `doc` (ts) replace `held`? Absent ts on either side: the newer message wins. */
export function newer(doc, held) {
  if (!held) return true;
  const a = Date.parse(str(doc && doc.ts) || "");
  const b = Date.parse(str(held && held.ts) || "");
  if (Number.isNaN(a) || Number.isNaN(b)) return true;
  return a >= b;
}

// ---------------------------------------------------------------- charts

/** An ECharts instance on `el`, resized with the window. */
export function chart(el) {
  const existing = window.echarts.getInstanceByDom(el);
  if (existing) return existing;
  const c = window.echarts.init(el, null, { renderer: "canvas" });
  window.addEventListener("resize", () => c.resize());
  return c;
}

export const GRADE_COLORS = { A: "#2e7d32", B: "#1e88e5", C: "#f9a825", D: "#c62828" };
export const SEVERITY_ORDER = ["critical", "major", "minor", "info"];
