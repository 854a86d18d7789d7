// Outages: active, planned (notices) and restored in the last 7 days (/api/outages), each with
// its totals (loss of supply vs loss of redundancy, kW and CNY/h at risk) and its affected
// customers in the document's order (most important first).
import {
  api, arr, badge, byId, customerLink, facts, fmtInt, fmtNum, fmtText, fmtTs, h, live, obj, section, startPage, str,
  t, table, tEnum, throttle,
  fill,
} from "/static/common.js";

let body = {};

function outageBlock(doc) {
  const o = obj(doc);
  const totals = obj(o.totals);
  const affected = arr(o.affected).map(obj);
  return h(
    "div",
    { class: `outage sev-${str(o.severity) || "none"}`, dataset: { testid: "outage", outageId: str(o.outage_id) || "" } },
    h(
      "h2",
      {},
      `${fmtText(o.outage_id)} · ${tEnum("scope", o.scope)} ${fmtText(o.scope_id)} `,
      badge("sev", o.severity),
      " ",
      badge("status", o.status),
      " ",
      h("span", { class: "badge" }, o.planned === true ? t("outages.planned_flag") : t("outages.fault")),
    ),
    h(
      "div",
      { class: "totals" },
      [
        ["loss_of_supply", fmtInt(totals.loss_of_supply)],
        ["loss_of_redundancy", fmtInt(totals.loss_of_redundancy)],
        ["kw", fmtNum(totals.kw, 1)],
        ["cny_per_h", fmtNum(totals.cny_per_h, 0)],
      ].map(([k, v]) => h("span", {}, `${t(`outages.${k}`)}: `, h("b", { dataset: { testid: `totals-${k}` } }, v))),
    ),
    facts([
      [t("alerts.ts"), fmtTs(o.ts)],
      [t("outages.planned_start"), fmtTs(o.planned_start)],
      [t("outages.expected_restore"), fmtTs(o.expected_restore)],
      [t("outages.cause"), fmtText(o.cause)],
      [t("alerts.reason"), fmtText(o.reason)],
    ]),
    h("h2", { style: "margin-top:10px" }, t("outages.affected")),
    table(
      [
        { label: t("common.customer"), cell: (a) => customerLink(a.customer_id) },
        { label: t("outages.importance"), cell: (a) => tEnum("imp", a.importance) },
        { label: t("customer.safety_grade"), cell: (a) => fmtText(a.safety_grade) },
        { label: t("outages.impact"), cell: (a) => badge("impact", a.impact) },
        { label: t("outages.est_kw"), class: "num", cell: (a) => fmtNum(a.est_kw, 1) },
        { label: t("outages.revenue"), class: "num", cell: (a) => fmtNum(a.revenue_at_risk_cny_per_h, 0) },
        { label: t("alerts.manager"), cell: (a) => fmtText(a.manager_id) },
      ],
      affected,
      { testid: "affected-table", rowAttrs: (a) => ({ dataset: { customerId: str(a.customer_id) || "" } }) },
    ),
  );
}

function renderGroup(el, docs) {
  const list = arr(docs);
  fill(el, ...(list.length ? list.map(outageBlock) : [h("p", { class: "muted" }, t("common.empty"))]));
}

function render() {
  const b = obj(body);
  section(byId("outages-active"), (el) => renderGroup(el, b.active));
  section(byId("outages-planned"), (el) => renderGroup(el, b.planned));
  section(byId("outages-restored"), (el) => renderGroup(el, b.restored));
  document.body.dataset.rendered = "true";
}

async function load() {
  body = obj(await api("/api/outages"));
  render();
}

await startPage("outages", render);
const refetch = throttle(() => load().catch((err) => console.error(err)), 1000);
live(["alert"], {
  onUpdate: ({ doc }) => {
    if (doc.kind === "outage" || str(doc.outage_id)) refetch();
  },
  onReset: refetch,
});
await load();
