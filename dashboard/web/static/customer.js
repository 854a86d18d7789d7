// One customer: the windows of its latest stats.customer, PF adjustment, hour-of-day curve,
// 26 months with year over year, arrears and aging, the scores with the model's explanation, and
// its alerts with their history. Live: stats/scores of this customer replace the held documents
// (by event time); a new score or alert refetches the explanation and the alert rows.
import {
  ApiError, api, arr, badge, byId, chart, facts, fmtInt, fmtNum, fmtPct, fmtText, fmtTs, h, live,
  newer, num, obj, section, startPage, str, t, table, tEnum, throttle,
  fill,
} from "/static/common.js";

const customerId = decodeURIComponent(window.location.pathname.replace(/^\/customers\//, "").replace(/\/$/, ""));
let data = { stats: null, scores: null, explanation: null, alerts: [], alertsError: null };
let missing = false;

/** A figure with its raw value kept in data-value (tests and copy-paste read the unformatted number). */
function figure(v, text, testid) {
  return h("span", { dataset: { testid, value: num(v) === null ? "" : String(v) } }, text);
}

function renderSummary(el) {
  const s = data.scores;
  if (!s || typeof s !== "object") {
    fill(el, h("p", { class: "muted" }, t("common.empty")));
    return;
  }
  fill(el, 
    facts([
      [t("customer.quadrant"), tEnum("q", s.quadrant), "scores-quadrant"],
      [t("customer.current_value"), figure(s.current_value, fmtNum(s.current_value, 3), "scores-current"), null],
      [t("customer.potential_value"), figure(s.potential_value, fmtNum(s.potential_value, 3), "scores-potential"), null],
      [t("customer.credit_grade"), fmtText(s.credit_grade), "scores-credit"],
      [t("customer.safety_grade"), fmtText(s.safety_grade), "scores-safety"],
      [t("customer.service_tier"), tEnum("tier", s.service_tier), "scores-tier"],
      [t("customer.scores_ts"), fmtTs(s.ts), "scores-ts"],
      [t("customer.model_version"), fmtText(s.model_version), "scores-model"],
    ]),
  );
}

const WINDOWS = ["day", "d30", "month"];
const WINDOW_FIELDS = [
  ["kwh", 2],
  ["kvarh", 2],
  ["avg_kw", 2],
  ["max_kw", 2],
  ["load_factor", 3],
  ["power_factor", 3],
  ["intervals", 0],
];

function windowPeriod(w, win) {
  if (w === "day") return fmtText(win.date);
  if (w === "d30") return `${fmtText(win.from)} – ${fmtText(win.to)}`;
  return fmtText(win.period);
}

function renderWindows(el) {
  const st = obj(data.stats);
  fill(el, 
    table(
      [
        { label: t("customer.window"), cell: (w) => t(`customer.w.${w}`) },
        { label: t("customer.period"), cell: (w) => windowPeriod(w, obj(st[w])) },
        ...WINDOW_FIELDS.map(([f, digits]) => ({
          label: t(`customer.${f}`),
          class: "num",
          cell: (w) => {
            const v = obj(st[w])[f];
            return figure(v, fmtNum(v, digits), `w-${w}-${f}`);
          },
        })),
      ],
      data.stats ? WINDOWS : [],
      { testid: "windows-table" },
    ),
    h("p", { class: "muted" }, `${t("customer.stats_ts")}: `, h("span", { dataset: { testid: "stats-ts" } }, fmtTs(st.ts))),
  );
}

function renderPf(el) {
  const m = obj(obj(data.stats).month);
  fill(el, 
    facts(
      [
        ["pf_standard", 2],
        ["power_factor", 3],
        ["pf_adjustment_pct", 2],
        ["pf_adjustment_cny", 2],
        ["projected_power_factor", 3],
        ["projected_pf_adjustment_pct", 2],
        ["projected_pf_adjustment_cny", 2],
      ].map(([f, digits]) => [t(`customer.${f}`), figure(m[f], fmtNum(m[f], digits), `pf-${f}`), null]),
    ),
  );
}

function renderHourly(el) {
  const hourly = arr(obj(data.stats).hourly_kw);
  chart(el).setOption(
    {
      animation: false,
      grid: { left: 48, right: 16, top: 16, bottom: 28 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: Array.from({ length: 24 }, (_, i) => `${i}${t("customer.hour")}`) },
      yAxis: { type: "value", name: "kW" },
      series: [{ type: "line", smooth: true, areaStyle: { opacity: 0.15 }, data: Array.from({ length: 24 }, (_, i) => num(hourly[i])) }],
    },
    true,
  );
}

function monthBefore(period, months) {
  const m = /^(\d{4})-(\d{2})$/.exec(period);
  if (!m) return null;
  const n = Number(m[1]) * 12 + Number(m[2]) - 1 - months;
  return `${String(Math.floor(n / 12)).padStart(4, "0")}-${String((n % 12) + 1).padStart(2, "0")}`;
}

function renderConsumption(el) {
  const st = obj(data.stats);
  const cons = obj(st.consumption);
  const months = Object.keys(cons).filter((k) => /^\d{4}-\d{2}$/.test(k) && num(cons[k]) !== null).sort();
  const yoy = months.map((p) => {
    const prev = num(cons[monthBefore(p, 12)]);
    return prev !== null && prev > 0 ? ((cons[p] - prev) / prev) * 100 : null;
  });
  fill(byId("cust-yoy"), 
    facts([
      [t("customer.yoy_growth_rate"), figure(st.yoy_growth_rate, fmtPct(st.yoy_growth_rate), "yoy-growth-rate"), null],
      [t("customer.yoy_growth_kwh"), figure(st.yoy_growth_kwh, fmtNum(st.yoy_growth_kwh, 0), "yoy-growth-kwh"), null],
    ]),
  );
  el.dataset.months = String(months.length);
  chart(el).setOption(
    {
      animation: false,
      grid: { left: 64, right: 56, top: 30, bottom: 28 },
      legend: { top: 0, data: [t("customer.month_kwh"), t("customer.yoy_pct")] },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: months },
      yAxis: [
        { type: "value", name: "kWh" },
        { type: "value", name: "%", splitLine: { show: false } },
      ],
      series: [
        { type: "bar", name: t("customer.month_kwh"), data: months.map((p) => cons[p]), itemStyle: { color: "#0b5cad" } },
        { type: "line", name: t("customer.yoy_pct"), yAxisIndex: 1, data: yoy, connectNulls: false, itemStyle: { color: "#ef6c00" } },
      ],
    },
    true,
  );
}

const BUCKETS = ["0_30", "31_60", "61_90", "over_90"];

function renderArrears(el) {
  const a = obj(obj(data.stats).arrears);
  fill(el, 
    facts(
      [
        ["outstanding", 2],
        ["oldest_overdue_days", 0],
        ["late_fees_12m", 0],
        ["reversals_12m", 0],
        ["paid_36m", 2],
        ["due_36m", 2],
        ["theft_12m", 2],
        ["credit", 2],
        ["bills_open", 0],
      ].map(([f, digits]) => [t(`customer.${f}`), figure(a[f], fmtNum(a[f], digits), `arrears-${f}`), null]),
    ),
  );
  const b = obj(a.overdue_buckets);
  chart(byId("cust-buckets-chart")).setOption(
    {
      animation: false,
      grid: { left: 64, right: 16, top: 28, bottom: 28 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: BUCKETS.map((k) => t(`customer.b.${k}`)), axisLabel: { interval: 0 } },
      yAxis: { type: "value", name: "CNY" },
      series: [{ type: "bar", data: BUCKETS.map((k) => num(b[k]) ?? 0), itemStyle: { color: "#c62828" }, label: { show: true, position: "top" } }],
    },
    true,
  );
  byId("cust-buckets-chart").dataset.buckets = JSON.stringify(BUCKETS.map((k) => num(b[k])));
}

function renderExplanation(el) {
  const ex = data.explanation;
  if (!ex || typeof ex !== "object") {
    fill(el, h("p", { class: "muted" }, t("customer.no_explanation")));
    return;
  }
  const rows = arr(ex.indicators).map(obj);
  const credit = obj(ex.credit);
  const chartEl = h("div", { class: "chart", dataset: { testid: "explanation-chart" } });
  fill(el, 
    table(
      [
        { label: t("customer.indicator"), cell: (r) => tEnum("ind", r.indicator) },
        { label: t("customer.raw"), class: "num", cell: (r) => fmtNum(r.raw, 4) },
        { label: t("customer.score"), class: "num", cell: (r) => fmtInt(r.score) },
        { label: t("customer.weight"), class: "num", cell: (r) => fmtNum(r.weight, 3) },
        { label: t("customer.contribution"), class: "num", testid: "contribution", cell: (r) => fmtNum(r.contribution, 3) },
        { label: t("customer.part"), cell: (r) => t(`customer.part.${str(r.part) || "current"}`) },
      ],
      rows,
      { testid: "explanation-table", rowAttrs: (r) => ({ dataset: { indicator: str(r.indicator) || "" } }) },
    ),
    // a published score's explanation has no credit points (they need the population pass)
    num(credit.points) === null
      ? null
      : facts([
          [t("customer.credit_points"), fmtNum(credit.points, 1), "credit-points"],
          [
            t("customer.deductions"),
            arr(credit.deductions).map(obj).map((d) => `${fmtText(d.rule)} −${fmtNum(d.points, 1)}`).join(", ") || t("common.none"),
            "credit-deductions",
          ],
        ]),
    chartEl,
  );
  chart(chartEl).setOption(
    {
      animation: false,
      grid: { left: 150, right: 24, top: 10, bottom: 24 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "value", name: t("customer.contribution") },
      yAxis: { type: "category", inverse: true, data: rows.map((r) => tEnum("ind", r.indicator)) },
      series: [
        {
          type: "bar",
          data: rows.map((r) => ({ value: num(r.contribution), itemStyle: { color: r.part === "potential" ? "#ef6c00" : "#0b5cad" } })),
        },
      ],
    },
    true,
  );
}

function renderAlerts(el) {
  const rows = arr(data.alerts).map(obj);
  fill(el, 
    data.alertsError ? h("p", { class: "muted", dataset: { testid: "customer-alerts-error" } }, t("alerts.unavailable")) : null,
    table(
      [
        { label: t("alerts.ts"), cell: (r) => fmtTs(r.ts ?? r.last_ts) },
        { label: t("alerts.kind"), cell: (r) => tEnum("kind", r.kind) },
        { label: t("alerts.severity"), cell: (r) => badge("sev", r.severity) },
        { label: t("alerts.status"), cell: (r) => badge("status", r.status) },
        { label: t("alerts.rule"), cell: (r) => fmtText(r.rule) },
        { label: t("alerts.reason"), cell: (r) => fmtText(r.reason) },
        { label: t("alerts.acked"), cell: (r) => (str(r.acknowledged_at) ? `${fmtText(r.acknowledged_by)} · ${fmtTs(r.acknowledged_at)}` : t("common.none")) },
        {
          label: t("customer.history"),
          cell: (r) => {
            const hist = arr(r.history).map(obj);
            return h(
              "details",
              {},
              h("summary", {}, `${t("customer.history")} (${hist.length})`),
              table(
                [
                  { label: t("alerts.ts"), cell: (x) => fmtTs(x.ts) },
                  { label: t("alerts.status"), cell: (x) => tEnum("status", x.status) },
                  { label: t("alerts.severity"), cell: (x) => tEnum("sev", x.severity) },
                  { label: t("alerts.reason"), cell: (x) => fmtText(x.reason) },
                ],
                hist,
              ),
            );
          },
        },
      ],
      rows,
      { testid: "customer-alerts-table", rowAttrs: (r) => ({ dataset: { alertId: str(r.alert_id) || "", testid: "customer-alert" } }) },
    ),
  );
}

function render() {
  byId("cust-id").textContent = customerId;
  byId("cust-missing").hidden = !missing;
  section(byId("cust-summary"), renderSummary);
  section(byId("cust-windows"), renderWindows);
  section(byId("cust-pf"), renderPf);
  section(byId("cust-hourly-chart"), renderHourly);
  section(byId("cust-consumption-chart"), renderConsumption);
  section(byId("cust-arrears"), renderArrears);
  section(byId("cust-explanation"), renderExplanation);
  section(byId("cust-alerts"), renderAlerts);
  document.body.dataset.statsTs = str(obj(data.stats).ts) || "";
  document.body.dataset.scoresTs = str(obj(data.scores).ts) || "";
  document.body.dataset.rendered = "true";
}

async function load() {
  try {
    const body = obj(await api(`/api/customers/${encodeURIComponent(customerId)}`));
    // a live document newer than the answer stays
    const stats = body.stats && typeof body.stats === "object" ? body.stats : null;
    const scores = body.scores && typeof body.scores === "object" ? body.scores : null;
    if (stats && newer(stats, data.stats)) data.stats = stats;
    if (scores && newer(scores, data.scores)) data.scores = scores;
    data.explanation = body.explanation && typeof body.explanation === "object" ? body.explanation : null;
    data.alerts = arr(body.alerts);
    data.alertsError = str(body.alerts_error);
    missing = false;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) missing = !data.stats && !data.scores;
    else throw err;
  }
  render();
}

const redraw = throttle(render, 1000);
// the store is written by the alerts consumer after the topic: look again a little later
const refetch = throttle(() => load().catch((err) => console.error(err)), 1500);

await startPage("customer", render);
live(["stats", "scores", "alert"], {
  customer: customerId,
  onUpdate: ({ kind, doc }) => {
    if (kind === "stats" && newer(doc, data.stats)) {
      data.stats = doc;
      missing = false;
      redraw();
    } else if (kind === "scores" && newer(doc, data.scores)) {
      data.scores = doc;
      missing = false;
      redraw();
      refetch(); // the explanation follows the scores
    } else if (kind === "alert") {
      refetch();
    }
  },
  onReset: () => refetch(),
});
await load();
