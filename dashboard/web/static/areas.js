// Transformer areas by 30-day line-loss rate (largest first), with the suspects of their open
// inspection alerts (/api/areas). Live area and alert updates refetch (the suspects come from the
// alerts), at most once a second.
import {
  api, arr, byId, chart, customerLink, fmtInt, fmtNum, fmtPct, fmtText, h, live, num, obj, section, startPage, str,
  t, table, throttle,
  fill,
} from "/static/common.js";

let areas = [];

function render() {
  section(byId("areas-chart"), (el) => {
    const top = areas.slice(0, 40);
    chart(el).setOption(
      {
        animation: false,
        grid: { left: 56, right: 16, top: 16, bottom: 60 },
        tooltip: { trigger: "axis", valueFormatter: (v) => (num(v) === null ? "—" : `${fmtNum(v, 2)} %`) },
        xAxis: { type: "category", data: top.map((a) => fmtText(a.transformer_area)), axisLabel: { rotate: 40 } },
        yAxis: { type: "value", name: "%" },
        series: [
          {
            type: "bar",
            data: top.map((a) => {
              const r = num(obj(a.d30).loss_rate);
              return { value: r === null ? null : r * 100, itemStyle: { color: r !== null && r > 0.1 ? "#c62828" : r !== null && r < -0.01 ? "#6a1b9a" : "#0b5cad" } };
            }),
          },
        ],
      },
      true,
    );
  });
  section(byId("areas-list"), (el) =>
    fill(el, 
      table(
        [
          { label: t("areas.area"), cell: (a) => fmtText(a.transformer_area) },
          { label: t("areas.loss_rate_d30"), class: "num", testid: "area-loss-d30", cell: (a) => fmtPct(obj(a.d30).loss_rate, 2) },
          { label: t("areas.loss_rate_day"), class: "num", cell: (a) => fmtPct(obj(a.day).loss_rate, 2) },
          { label: t("areas.supplied"), class: "num", cell: (a) => fmtNum(obj(a.d30).supplied_kwh, 0) },
          { label: t("areas.consumed"), class: "num", cell: (a) => fmtNum(obj(a.d30).consumed_kwh, 0) },
          { label: t("areas.coverage"), class: "num", cell: (a) => fmtPct(obj(a.d30).coverage, 1) },
          { label: t("areas.complete"), cell: (a) => (obj(a.day).complete === true ? t("common.yes") : t("common.no")) },
          { label: t("areas.reporting"), class: "num", cell: (a) => `${fmtInt(obj(a.d30).customers_reporting)} / ${fmtInt(obj(a.d30).customers)}` },
          {
            label: t("areas.suspects"),
            cell: (a) => {
              const s = arr(a.suspects).map(obj);
              if (!s.length) return t("common.none");
              return h(
                "ol",
                { style: "margin:0;padding-left:18px" },
                s.slice(0, 10).map((x) =>
                  h("li", { dataset: { testid: "suspect" } }, customerLink(x.customer_id), ` ${fmtNum(x.score, 2)} `, h("span", { class: "muted" }, arr(x.reasons).map(str).filter(Boolean).join(", "))),
                ),
              );
            },
          },
        ],
        areas,
        { testid: "areas-table", rowAttrs: (a) => ({ dataset: { testid: "area-row", area: str(a.transformer_area) || "" } }) },
      ),
    ),
  );
  document.body.dataset.rendered = "true";
}

async function load() {
  areas = arr(obj(await api("/api/areas")).areas).map(obj);
  render();
}

await startPage("areas", render);
const refetch = throttle(() => load().catch((err) => console.error(err)), 1000);
live(["area", "alert"], {
  onUpdate: ({ kind, doc }) => {
    if (kind === "area" || doc.kind === "inspection") refetch();
  },
  onReset: refetch,
});
await load();
