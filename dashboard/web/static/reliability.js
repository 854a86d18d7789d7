// Reliability (IEEE 1366, year to date): the system and each feeder, sorted by SAIDI (largest
// first). Live reliability.indices documents replace the held one of their scope_id.
import {
  api, arr, byId, chart, facts, fmtInt, fmtNum, fmtText, fmtTs, h, live, num, obj, section, startPage, str, t,
  table, throttle,
  fill,
} from "/static/common.js";

let system = null;
const feeders = new Map();

function sortedFeeders() {
  return [...feeders.values()].sort((a, b) => (num(b.SAIDI) ?? -1) - (num(a.SAIDI) ?? -1));
}

function render() {
  section(byId("rel-system"), (el) => {
    const r = system;
    if (!r) {
      fill(el, h("p", { class: "muted" }, t("common.empty")));
      return;
    }
    fill(el, 
      facts([
        [t("rel.year"), fmtText(r.year)],
        ["SAIFI", fmtNum(r.SAIFI, 3), "system-saifi"],
        ["SAIDI", fmtNum(r.SAIDI, 2), "system-saidi"],
        ["CAIDI", fmtNum(r.CAIDI, 2), "system-caidi"],
        [t("rel.customers_served"), fmtInt(r.customers_served)],
        [t("rel.customer_interruptions"), fmtInt(r.customer_interruptions)],
        [t("rel.customer_minutes"), fmtNum(r.customer_minutes, 0)],
        [t("rel.momentary"), fmtInt(r.momentary_interruptions)],
        [t("common.updated"), fmtTs(r.ts)],
      ]),
    );
  });
  const list = sortedFeeders();
  section(byId("rel-chart"), (el) => {
    const top = list.slice(0, 30);
    chart(el).setOption(
      {
        animation: false,
        grid: { left: 90, right: 24, top: 10, bottom: 24 },
        tooltip: { trigger: "axis" },
        xAxis: { type: "value", name: "SAIDI" },
        yAxis: { type: "category", inverse: true, data: top.map((r) => fmtText(r.scope_id)) },
        series: [{ type: "bar", data: top.map((r) => num(r.SAIDI)), itemStyle: { color: "#0b5cad" } }],
      },
      true,
    );
  });
  section(byId("rel-feeders"), (el) =>
    fill(el, 
      table(
        [
          { label: t("rel.feeder"), cell: (r) => fmtText(r.scope_id) },
          { label: t("rel.year"), class: "num", cell: (r) => fmtText(r.year) },
          { label: t("rel.customers_served"), class: "num", cell: (r) => fmtInt(r.customers_served) },
          { label: t("rel.customer_interruptions"), class: "num", cell: (r) => fmtInt(r.customer_interruptions) },
          { label: t("rel.customer_minutes"), class: "num", cell: (r) => fmtNum(r.customer_minutes, 0) },
          { label: "SAIFI", class: "num", testid: "feeder-saifi", cell: (r) => fmtNum(r.SAIFI, 3) },
          { label: "SAIDI", class: "num", testid: "feeder-saidi", cell: (r) => fmtNum(r.SAIDI, 2) },
          { label: "CAIDI", class: "num", cell: (r) => fmtNum(r.CAIDI, 2) },
          { label: t("rel.momentary"), class: "num", cell: (r) => fmtInt(r.momentary_interruptions) },
          { label: t("common.updated"), cell: (r) => fmtTs(r.ts) },
        ],
        list,
        { testid: "feeders-table", rowAttrs: (r) => ({ dataset: { testid: "feeder-row", feeder: str(r.scope_id) || "" } }) },
      ),
    ),
  );
  document.body.dataset.rendered = "true";
}

function take(doc) {
  const d = obj(doc);
  const id = str(d.scope_id);
  if (!id) return false;
  if (id === "system" || d.scope === "system") system = d;
  else feeders.set(id, d);
  return true;
}

async function load() {
  const body = obj(await api("/api/reliability"));
  system = null;
  feeders.clear();
  if (body.system && typeof body.system === "object") take(body.system);
  for (const f of arr(body.feeders)) take(f);
  render();
}

await startPage("reliability", render);
const redraw = throttle(render, 1000);
let loaded = false;
const pending = [];
const { opened } = live(["reliability"], {
  onUpdate: ({ doc }) => {
    if (!loaded) pending.push(doc);
    else if (take(doc)) redraw();
  },
  onReset: () => load(),
});
await opened;
await load();
loaded = true;
for (const d of pending.splice(0)) take(d);
redraw();
