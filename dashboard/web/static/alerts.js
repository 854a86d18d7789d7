// Alerts from the PostgreSQL store (/api/alerts), filtered by kind, severity, status and manager
// (kept in the URL's query), with an Acknowledge button where the user may acknowledge.
import {
  ApiError, SEVERITY_ORDER, api, arr, badge, byId, currentUser, customerLink, fmtText, fmtTs, h, live, obj, section,
  startPage, str, t, table, tEnum, throttle,
  fill,
} from "/static/common.js";

const FILTERS = {
  kind: ["credit", "outage", "inspection"],
  severity: SEVERITY_ORDER,
  status: ["open", "escalated", "resolved"],
};
const ENUM_PREFIX = { kind: "kind", severity: "sev", status: "status" };
const form = byId("alert-filters");
let rows = [];
let message = null; // dictionary key of the last failure shown
const managers = new Set();

function filtersFromUrl() {
  const q = new URLSearchParams(window.location.search);
  const f = {};
  for (const k of ["kind", "severity", "status", "manager"]) f[k] = q.get(k) || "";
  return f;
}

function fillFilters() {
  const f = filtersFromUrl();
  for (const [name, values] of Object.entries(FILTERS)) {
    const select = form.elements[name];
    fill(select, 
      h("option", { value: "" }, t("alerts.all")),
      values.map((v) => h("option", { value: v, selected: f[name] === v }, tEnum(ENUM_PREFIX[name], v))),
    );
  }
  form.elements.manager.value = f.manager;
  fill(byId("managers"), [...managers].sort().map((m) => h("option", { value: m })));
}

/** What the alert is about: its customer (a link), else its transformer area or outage. */
function subject(r) {
  if (str(r.customer_id)) return customerLink(r.customer_id);
  if (str(r.transformer_area)) return `${t("scope.transformer_area")} ${str(r.transformer_area)}`;
  if (str(r.outage_id)) return `${t("kind.outage")} ${str(r.outage_id)}`;
  return fmtText(null);
}

function mayAck(row) {
  const me = obj(currentUser());
  // a resolved alert needs nobody's acknowledgement
  if (str(row.acknowledged_at) || row.status === "resolved") return false;
  if (me.role === "supervisor") return true;
  if (me.role === "manager") return arr(row.manager_ids).includes(me.manager_id);
  return false;
}

async function ack(alertId, button) {
  button.disabled = true;
  message = null;
  try {
    await api(`/api/alerts/${encodeURIComponent(alertId)}/ack`, { method: "POST" });
  } catch (err) {
    message = err instanceof ApiError && err.status === 403 ? "alerts.ack_forbidden" : "alerts.ack_failed";
    button.disabled = false;
  }
  await load();
}

function renderList(el) {
  fill(el, 
    table(
      [
        { label: t("alerts.ts"), class: "nowrap", cell: (r) => fmtTs(r.ts ?? r.last_ts) },
        { label: t("alerts.kind"), class: "nowrap", cell: (r) => tEnum("kind", r.kind) },
        { label: t("alerts.severity"), cell: (r) => badge("sev", r.severity) },
        { label: t("alerts.status"), cell: (r) => badge("status", r.status) },
        { label: t("alerts.rule"), cell: (r) => fmtText(r.rule) },
        { label: t("alerts.subject"), class: "nowrap", cell: subject },
        { label: t("alerts.manager"), cell: (r) => arr(r.manager_ids).map(str).filter(Boolean).join(", ") || t("common.none") },
        {
          label: t("alerts.reason"),
          cell: (r) =>
            h(
              "details",
              {},
              h("summary", {}, fmtText(r.reason)),
              h("pre", { class: "evidence" }, JSON.stringify(obj(r.evidence), null, 1)),
            ),
        },
        { label: t("alerts.opened_at"), class: "nowrap", cell: (r) => fmtTs(r.opened_at ?? r.first_ts) },
        {
          label: t("alerts.acked"),
          testid: "ack-cell",
          cell: (r) => {
            if (str(r.acknowledged_at)) {
              return h(
                "span",
                { dataset: { testid: "acked", by: str(r.acknowledged_by) || "" } },
                `${t("alerts.acked_by")} ${fmtText(r.acknowledged_by)} · ${fmtTs(r.acknowledged_at)}`,
              );
            }
            if (!mayAck(r)) return t("common.none");
            const button = h("button", { type: "button", class: "primary", dataset: { testid: "ack-button" } }, t("alerts.ack"));
            button.addEventListener("click", () => ack(str(r.alert_id), button));
            return button;
          },
        },
      ],
      rows,
      {
        testid: "alerts-table",
        rowAttrs: (r) => ({
          class: `sev-${str(r.severity) || "none"}`,
          dataset: { testid: "alert-row", alertId: str(r.alert_id) || "", acknowledged: str(r.acknowledged_at) ? "true" : "false" },
        }),
      },
    ),
  );
}

function render() {
  fillFilters();
  byId("alert-count").textContent = `${rows.length} ${t("alerts.count")}`;
  byId("alert-message").textContent = message ? t(message) : "";
  section(byId("alert-list"), renderList);
  document.body.dataset.rendered = "true";
}

async function load() {
  const f = filtersFromUrl();
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  try {
    const body = obj(await api(`/api/alerts${q.size ? `?${q}` : ""}`));
    rows = arr(body.alerts).map(obj);
    if (message === "alerts.unavailable") message = null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 503) {
      message = "alerts.unavailable";
      rows = [];
    } else throw err;
  }
  for (const r of rows) for (const m of arr(r.manager_ids)) if (str(m)) managers.add(str(m));
  render();
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams();
  for (const k of ["kind", "severity", "status", "manager"]) {
    const v = String(form.elements[k].value || "").trim();
    if (v) q.set(k, v);
  }
  const url = new URL(window.location.href);
  url.search = q.toString();
  window.history.pushState(null, "", url);
  load();
});
window.addEventListener("popstate", () => load());

await startPage("alerts", render);
const refetch = throttle(() => load().catch((err) => console.error(err)), 1500);
live(["alert"], { onUpdate: refetch, onReset: refetch });
await load();
