// Overview: quadrant counts, grade and tier distributions, open alerts, system reliability, data health.
// Fetched once from /api/overview, then replaced by each `overview` event of the live stream.
import {
  GRADE_COLORS, SEVERITY_ORDER, api, arr, byId, chart, facts, fmtInt, fmtNum, fmtText, fmtTs, h, live, num,
  obj, section, startPage, str, t, table, tEnum, throttle,
  fill,
} from "/static/common.js";

const QUADRANTS = ["vip", "improvement", "maintenance", "abandon"];
const QUADRANT_COLORS = { vip: "#2e7d32", improvement: "#1e88e5", maintenance: "#f9a825", abandon: "#9e9e9e" };
let overview = null;

function card(label, value, testid) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value", dataset: { testid } }, value));
}

function counts(o, order) {
  // the known keys in order, then any others the server adds
  const m = obj(o);
  const keys = [...order.filter((k) => k in m), ...Object.keys(m).filter((k) => !order.includes(k)).sort()];
  return keys.map((k) => [k, num(m[k]) ?? 0]);
}

function bar(el, pairs, labelOf, colorOf) {
  const c = chart(el);
  c.setOption(
    {
      grid: { left: 40, right: 16, top: 16, bottom: 28 },
      tooltip: { trigger: "item" },
      xAxis: { type: "category", data: pairs.map(([k]) => labelOf(k)) },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        {
          type: "bar",
          data: pairs.map(([k, v]) => ({ value: v, itemStyle: { color: colorOf(k) } })),
          label: { show: true, position: "top" },
        },
      ],
    },
    true,
  );
}

function render() {
  const o = obj(overview);
  const alertsOpen = obj(o.alerts_open);
  const bySeverity = counts(alertsOpen.by_severity, SEVERITY_ORDER);
  section(byId("ov-cards"), (el) =>
    fill(el, 
      card(t("overview.customers_scored"), fmtInt(o.customers_scored), "customers-scored"),
      card(t("overview.alerts_open"), fmtInt(bySeverity.reduce((s, [, v]) => s + v, 0)), "alerts-open-total"),
      card(t("common.as_of"), fmtTs(o.as_of), "as-of"),
    ),
  );
  const quadrants = counts(o.quadrants, QUADRANTS);
  section(byId("ov-quadrants"), (el) =>
    fill(el, 
      h(
        "div",
        { class: "cards" },
        quadrants.map(([q, n]) => card(tEnum("q", q), fmtInt(n), `quadrant-${q}`)),
        h("div", { class: "card" }, h("a", { href: "/matrix" }, t("overview.open_matrix"))),
      ),
    ),
  );
  section(byId("ov-quadrant-chart"), (el) =>
    chart(el).setOption(
      {
        tooltip: { trigger: "item" },
        series: [
          {
            type: "pie",
            radius: ["40%", "70%"],
            data: quadrants.map(([q, n]) => ({ name: tEnum("q", q), value: n, itemStyle: { color: QUADRANT_COLORS[q] } })),
          },
        ],
      },
      true,
    ),
  );
  section(byId("ov-credit-chart"), (el) =>
    bar(el, counts(o.credit_grades, ["A", "B", "C", "D"]), (k) => k, (k) => GRADE_COLORS[k] || "#90a4ae"),
  );
  section(byId("ov-safety-chart"), (el) =>
    bar(el, counts(o.safety_grades, ["A", "B", "C", "D"]), (k) => k, (k) => GRADE_COLORS[k] || "#90a4ae"),
  );
  section(byId("ov-tier-chart"), (el) =>
    bar(el, counts(o.service_tiers, ["special", "level1", "level2", "level3"]), (k) => tEnum("tier", k), () => "#0b5cad"),
  );
  section(byId("ov-alerts"), (el) => {
    const byKind = counts(alertsOpen.by_kind, ["credit", "outage", "inspection"]);
    fill(el, 
      h("h2", {}, t("overview.by_severity")),
      table(
        [
          { label: t("alerts.severity"), cell: ([k]) => tEnum("sev", k) },
          { label: t("common.count"), class: "num", cell: ([k, v]) => h("a", { href: `/alerts?severity=${encodeURIComponent(k)}`, dataset: { testid: `alerts-severity-${k}` } }, fmtInt(v)) },
        ],
        bySeverity,
      ),
      h("h2", { style: "margin-top:12px" }, t("overview.by_kind")),
      table(
        [
          { label: t("alerts.kind"), cell: ([k]) => tEnum("kind", k) },
          { label: t("common.count"), class: "num", cell: ([k, v]) => h("a", { href: `/alerts?kind=${encodeURIComponent(k)}`, dataset: { testid: `alerts-kind-${k}` } }, fmtInt(v)) },
        ],
        byKind,
      ),
    );
  });
  section(byId("ov-reliability"), (el) => {
    const r = o.reliability_system;
    if (!r || typeof r !== "object") {
      fill(el, h("p", { class: "muted" }, t("common.empty")));
      return;
    }
    fill(el, 
      facts([
        [t("rel.year"), fmtText(r.year), "system-year"],
        ["SAIFI", fmtNum(r.SAIFI, 3), "system-saifi"],
        ["SAIDI", fmtNum(r.SAIDI, 2), "system-saidi"],
        ["CAIDI", fmtNum(r.CAIDI, 2), "system-caidi"],
        [t("rel.customers_served"), fmtInt(r.customers_served)],
        [t("rel.customer_interruptions"), fmtInt(r.customer_interruptions)],
        [t("rel.customer_minutes"), fmtNum(r.customer_minutes, 0)],
        [t("common.updated"), fmtTs(r.ts)],
      ]),
    );
  });
  section(byId("ov-health"), (el) => {
    const d = obj(o.data_health);
    const malformed = Object.entries(obj(d.malformed));
    fill(el, 
      facts([
        [t("overview.newest_reading"), fmtTs(d.newest_reading_ts), "newest-reading"],
        [
          t("overview.newest_reading_age"),
          num(d.newest_reading_age_s) === null ? fmtText(null) : `${fmtNum(d.newest_reading_age_s, 0)} ${t("overview.seconds")}`,
          "newest-reading-age",
        ],
      ]),
      h(
        "div",
        { class: "panels", style: "margin-top:12px" },
        h(
          "div",
          {},
          h("h2", {}, t("overview.dlq")),
          table(
            [
              { label: t("overview.topic"), cell: (r) => fmtText(obj(r).topic) },
              { label: t("overview.error"), cell: (r) => fmtText(obj(r).error) },
              { label: t("overview.count_1h"), class: "num", cell: (r) => fmtInt(obj(r).count_1h) },
            ],
            arr(d.dlq),
            { testid: "dlq-table" },
          ),
        ),
        h(
          "div",
          {},
          h("h2", {}, t("overview.lag")),
          table(
            [
              { label: t("overview.topic"), cell: (r) => fmtText(obj(r).topic) },
              { label: t("overview.partition"), class: "num", cell: (r) => fmtText(obj(r).partition) },
              { label: t("overview.lag_msgs"), class: "num", cell: (r) => fmtInt(obj(r).lag) },
            ],
            arr(d.consumer_lag),
            { testid: "lag-table" },
          ),
        ),
        h(
          "div",
          {},
          h("h2", {}, t("overview.malformed")),
          table(
            [
              { label: t("overview.topic"), cell: ([k]) => str(k) },
              { label: t("common.count"), class: "num", cell: ([, v]) => fmtInt(v) },
            ],
            malformed,
            { testid: "malformed-table" },
          ),
        ),
      ),
    );
  });
  document.body.dataset.rendered = "true";
}

async function load() {
  overview = await api("/api/overview");
  render();
}

await startPage("overview", render);
const redraw = throttle(render, 1000);
// the stream sends the current overview first, then one a second at most when it changes
const { opened } = live(["overview"], {
  onOverview: (body) => {
    overview = body;
    redraw();
  },
  onReset: load,
});
await opened;
if (!overview) await load();
