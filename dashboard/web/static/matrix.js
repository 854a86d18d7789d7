// The customer value matrix: every scored customer a point (current value across, potential value
// up), the quadrant lines at the model's origin, colour by credit grade, size by 30-day kWh.
//
// Built for 100,000 points: /api/matrix is columnar; one scatter series per (credit grade, size
// class) in ECharts' large mode (one symbol size per series, drawn as one path), so the legend
// still toggles a grade (series of one grade share its name). Live `scores`/`stats` updates change
// the columns in place and redraw at most once a second.
//
// window.gpMatrix (after every draw): {count, points, quadrants, origin, model_version, renderMs,
// buildMs (columns to series), fetchMs, firstRenderMs (since navigation start), phases (ms since
// navigation start at the first load's milestones), draws, locate(id) -> [x, y] px} — what the page shows, for people debugging it and for the browser tests.
import {
  GRADE_COLORS, api, arr, byId, chart, facts, fmtInt, fmtNum, fmtText, h, live, num, obj, section,
  startPage, str, t, tEnum, throttle,
  fill,
} from "/static/common.js";

const QUADRANTS = ["vip", "improvement", "maintenance", "abandon"];
const GRADES = ["A", "B", "C", "D", "?"];
const SIZES = [4, 6, 9, 13]; // px by 30-day kWh quartile; no kWh: the smallest

const M = { ids: [], current: [], potential: [], credit: [], kwh30: [], quadrant: [], origin: null, model_version: null };
const index = new Map();
let sizeCuts = [Infinity, Infinity, Infinity];
let loaded = false;
const pending = []; // live updates that arrived while /api/matrix was on its way
let draws = 0;
let firstRenderMs = null;
let drawn = false;
/** ms since the navigation start at the first load's milestones (debugging the first render). */
const phases = {};
const mark = (name) => {
  if (!(name in phases)) phases[name] = Math.round(performance.now());
};

const GRADE_SET = new Set(GRADES);

/** The answer's columns, each value guarded (a finite number, a string, a known grade). */
function setMatrix(body) {
  const b = obj(body);
  const ids = arr(b.ids);
  const cur = arr(b.current);
  const pot = arr(b.potential);
  const cre = arr(b.credit);
  const kwh = arr(b.kwh30);
  const qua = arr(b.quadrant);
  const n = ids.length;
  M.ids = new Array(n);
  M.current = new Array(n);
  M.potential = new Array(n);
  M.credit = new Array(n);
  M.kwh30 = new Array(n);
  M.quadrant = new Array(n);
  index.clear();
  for (let i = 0; i < n; i++) {
    const id = str(ids[i]);
    M.ids[i] = id;
    M.current[i] = num(cur[i]);
    M.potential[i] = num(pot[i]);
    M.credit[i] = GRADE_SET.has(cre[i]) ? cre[i] : "?";
    M.kwh30[i] = num(kwh[i]);
    M.quadrant[i] = str(qua[i]);
    if (id !== null) index.set(id, i);
  }
  const o = obj(b.origin);
  M.origin = num(o.current) !== null && num(o.potential) !== null ? { current: o.current, potential: o.potential } : null;
  M.model_version = str(b.model_version);
  computeSizeCuts();
}

function computeSizeCuts() {
  const v = new Float64Array(M.kwh30.length);
  let n = 0;
  for (const x of M.kwh30) if (x !== null) v[n++] = x;
  if (!n) {
    sizeCuts = [Infinity, Infinity, Infinity];
    return;
  }
  const sorted = v.subarray(0, n).sort(); // a typed array sorts numerically
  const q = (p) => sorted[Math.min(n - 1, Math.floor(p * n))];
  sizeCuts = [q(0.25), q(0.5), q(0.75)];
}

function sizeClass(kwh) {
  if (kwh === null) return 0;
  let c = 0;
  while (c < 3 && kwh >= sizeCuts[c]) c++;
  return c;
}

/** Row index of every drawn point: seriesRows[seriesIndex][dataIndex]. */
let seriesRows = [];

/**
 * One series per (grade, size class). The points go to ECharts as one flat Float32Array of
 * (current, potential) pairs per series (large mode reads it without an object per point);
 * seriesRows maps a point back to its customer for the tooltip and the click.
 */
function buildSeries() {
  const rows = GRADES.map(() => SIZES.map(() => []));
  let points = 0;
  for (let i = 0; i < M.ids.length; i++) {
    if (M.ids[i] === null || M.current[i] === null || M.potential[i] === null) continue;
    rows[GRADES.indexOf(M.credit[i])][sizeClass(M.kwh30[i])].push(i);
    points++;
  }
  const series = [];
  seriesRows = [];
  // tens of thousands of points overlap: smaller, more transparent symbols keep the density visible
  const shrink = points > 20_000 ? 0.5 : points > 5_000 ? 0.75 : 1;
  // above 20,000 points every series in large mode, the small ones too (a few thousand symbols
  // as elements of their own took as long to draw as the 100,000 of the large series)
  const everyLarge = points > 20_000;
  GRADES.forEach((g, gi) =>
    SIZES.forEach((size, si) => {
      const r = rows[gi][si];
      const xy = new Float32Array(r.length * 2);
      for (let k = 0; k < r.length; k++) {
        xy[2 * k] = M.current[r[k]];
        xy[2 * k + 1] = M.potential[r[k]];
      }
      seriesRows.push(r);
      series.push({
        type: "scatter",
        name: g === "?" ? t("matrix.grade_unknown") : `${t("matrix.credit")} ${g}`,
        id: `g${g}s${si}`,
        large: true,
        largeThreshold: everyLarge ? 1 : 2000,
        progressive: 0,
        symbolSize: Math.max(2, Math.round(size * shrink)),
        itemStyle: { color: GRADE_COLORS[g] || "#90a4ae", opacity: shrink < 1 ? 0.55 : 0.75 },
        emphasis: { scale: 1.6 },
        dimensions: ["current", "potential"],
        data: xy,
      });
    }),
  );
  const o = M.origin;
  series.push({
    type: "scatter",
    id: "origin",
    name: t("matrix.origin"),
    data: [],
    silent: true,
    markLine: o
      ? {
          silent: true,
          symbol: "none",
          animation: false,
          lineStyle: { color: "#334e68", type: "dashed", width: 1.5 },
          label: { formatter: (p) => fmtNum(p.value, 3) },
          data: [{ xAxis: o.current }, { yAxis: o.potential }],
        }
      : { data: [] },
  });
  return { series, points };
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function rowOf(p) {
  const i = (seriesRows[p.seriesIndex] || [])[p.dataIndex];
  return typeof i === "number" && i >= 0 && i < M.ids.length ? i : null;
}

function tooltip(p) {
  const i = rowOf(p);
  if (i === null) return "";
  const rows = [
    [t("common.customer"), M.ids[i]],
    [t("matrix.current"), fmtNum(M.current[i], 3)],
    [t("matrix.potential"), fmtNum(M.potential[i], 3)],
    [t("customer.quadrant"), tEnum("q", M.quadrant[i])],
    [t("matrix.credit"), M.credit[i] === "?" ? t("matrix.grade_unknown") : M.credit[i]],
    [t("matrix.kwh30"), fmtNum(M.kwh30[i], 0)],
  ];
  return rows.map(([k, v]) => `${escapeHtml(k)}: <b>${escapeHtml(v)}</b>`).join("<br>");
}

function quadrantCounts() {
  const c = Object.fromEntries(QUADRANTS.map((q) => [q, 0]));
  for (let i = 0; i < M.quadrant.length; i++) {
    const q = M.quadrant[i];
    if (M.ids[i] === null || q === null) continue;
    c[q] = (c[q] || 0) + 1;
  }
  return c;
}

let el;
let ec;

/** [x, y] in px within the chart of a customer's point, or null (not drawn / outside the view). */
function locate(id) {
  const i = index.get(id);
  if (i === undefined || M.current[i] === null || M.potential[i] === null) return null;
  const px = ec.convertToPixel({ xAxisIndex: 0, yAxisIndex: 0 }, [M.current[i], M.potential[i]]);
  return Array.isArray(px) && px.every(Number.isFinite) ? px : null;
}

function draw() {
  if (!ec || !loaded) return; // not set up yet / no columns yet: drawn once both are
  drawn = true;
  const started = performance.now();
  const { series, points } = buildSeries();
  const buildMs = performance.now() - started;
  const option = {
    animation: false,
    grid: { left: 56, right: 24, top: 40, bottom: 48 },
    legend: { top: 4, data: GRADES.map((g) => (g === "?" ? t("matrix.grade_unknown") : `${t("matrix.credit")} ${g}`)) },
    tooltip: { trigger: "item", formatter: tooltip },
    xAxis: { type: "value", name: t("matrix.current"), nameLocation: "middle", nameGap: 28, scale: true },
    yAxis: { type: "value", name: t("matrix.potential"), nameLocation: "middle", nameGap: 40, scale: true },
    dataZoom: [
      { type: "inside", xAxisIndex: 0, filterMode: "none" },
      { type: "inside", yAxisIndex: 0, filterMode: "none" },
    ],
    series,
  };
  const quadrants = quadrantCounts();
  ec.off("finished");
  ec.on("finished", () => {
    ec.off("finished");
    const renderMs = performance.now() - started;
    if (firstRenderMs === null) firstRenderMs = performance.now();
    mark("finished");
    draws++;
    window.gpMatrix = {
      count: M.ids.filter((id) => id !== null).length,
      points,
      quadrants,
      origin: M.origin,
      model_version: M.model_version,
      renderMs,
      buildMs,
      fetchMs,
      firstRenderMs,
      phases,
      draws,
      locate,
    };
    el.dataset.draws = String(draws);
    document.body.dataset.rendered = "true";
  });
  mark("setOption");
  ec.setOption(option, { replaceMerge: ["series"] });
  mark("setOptionReturned");
  renderSide(quadrants, points);
}

function renderSide(quadrants, points) {
  section(byId("matrix-side"), (side) => {
    const search = h("input", { type: "search", placeholder: t("matrix.search"), dataset: { testid: "matrix-search" } });
    const found = h("div", { class: "muted" });
    search.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter") return;
      const id = search.value.trim();
      if (index.has(id)) window.location.assign(`/customers/${encodeURIComponent(id)}`);
      else found.textContent = t("common.empty");
    });
    fill(side, 
      facts([
        [t("matrix.points"), fmtInt(points), "matrix-points"],
        [
          t("matrix.origin"),
          M.origin ? `(${fmtNum(M.origin.current, 3)}, ${fmtNum(M.origin.potential, 3)})` : t("matrix.no_origin"),
          "matrix-origin",
        ],
        [t("matrix.model_version"), fmtText(M.model_version), "matrix-model-version"],
      ]),
      h("h2", { style: "margin-top:14px" }, t("overview.quadrants")),
      QUADRANTS.map((q) =>
        h("div", { class: "q" }, h("span", {}, tEnum("q", q)), h("b", { dataset: { testid: `matrix-quadrant-${q}` } }, fmtInt(quadrants[q]))),
      ),
      h("h2", { style: "margin-top:14px" }, t("common.customer")),
      search,
      found,
    );
  });
}

function applyUpdate({ kind, key, doc }) {
  const id = str(doc.customer_id) || key;
  if (!id) return false;
  if (kind === "scores") {
    const x = num(doc.current_value);
    const y = num(doc.potential_value);
    if (x === null || y === null) return false;
    let i = index.get(id);
    if (i === undefined) {
      i = M.ids.length;
      index.set(id, i);
      M.ids.push(id);
      M.kwh30.push(null);
      M.current.push(x);
      M.potential.push(y);
      M.credit.push("?");
      M.quadrant.push(null);
    }
    M.current[i] = x;
    M.potential[i] = y;
    M.credit[i] = GRADES.includes(doc.credit_grade) ? doc.credit_grade : "?";
    M.quadrant[i] = str(doc.quadrant);
    const o = obj(doc.value_origin);
    if (num(o.current) !== null && num(o.potential) !== null) M.origin = { current: o.current, potential: o.potential };
    if (str(doc.model_version)) M.model_version = str(doc.model_version);
    return true;
  }
  if (kind === "stats") {
    const i = index.get(id);
    if (i === undefined) return false;
    M.kwh30[i] = num(obj(doc.d30).kwh);
    return true;
  }
  return false;
}

const redraw = throttle(draw, 1000);

let fetchMs = null;
let snapshotVersion = null; // X-Feed-Version of the columns held
let streamVersion = null; // the stream's `subscribed` version
let loadGen = 0;
let loading = null;

/**
 * /api/matrix into the columns, then the updates that came meanwhile, then a draw. Asked for at
 * once, beside the stream: every update after the stream's subscription comes on it (buffered
 * until the columns are in, then applied in order: the newest of a customer last), and one
 * published between this snapshot and the subscription is caught by the versions (below).
 */
function load() {
  const gen = ++loadGen;
  loaded = false;
  const started = performance.now();
  mark("matrixAsked");
  const meta = {};
  const request = api("/api/matrix", { meta }).then(
    (body) => {
      if (gen !== loadGen) return; // a newer load is on its way
      fetchMs = performance.now() - started;
      mark("matrixParsed");
      const header = meta.headers ? meta.headers.get("X-Feed-Version") : null;
      const v = header ? Number(header) : NaN;
      snapshotVersion = Number.isFinite(v) ? v : null;
      loading = null;
      setMatrix(body);
      mark("columnsSet");
      loaded = true;
      for (const u of pending.splice(0)) applyUpdate(u);
      draw();
      checkVersions();
    },
    (err) => {
      if (gen === loadGen) loading = null;
      throw err;
    },
  );
  loading = request;
  return request;
}

/**
 * The snapshot was taken before the stream's subscription and the state changed in between
 * (what changed then is on neither): fetch it again, now after the subscription. Rare: the
 * request and the stream start together, and it takes a change in that instant.
 */
function checkVersions() {
  if (loading || snapshotVersion === null || streamVersion === null) return;
  if (streamVersion > snapshotVersion) load();
}

const echartsReady = new Promise((resolve, reject) => {
  if (window.echarts) return resolve();
  const script = document.querySelector('script[src="/vendor/echarts.min.js"]');
  if (!script) return reject(new Error("no echarts script"));
  script.addEventListener("load", () => resolve());
  script.addEventListener("error", () => reject(new Error("echarts did not load")));
});

// the stream, the snapshot and the session check start together (echarts.min.js is still
// being compiled meanwhile); a 401 from either request sends the page to the sign-in page
live(["scores", "stats"], {
  onUpdate: (u) => {
    if (!loaded) pending.push(u);
    else if (applyUpdate(u)) redraw();
  },
  onSubscribed: (version) => {
    streamVersion = version;
    checkVersions();
  },
  onReset: () => load(),
});
const first = load();
await startPage("matrix", draw);
mark("sessionChecked");
await echartsReady;
mark("echartsReady");
el = byId("matrix-chart");
ec = chart(el);
ec.on("click", (p) => {
  const i = rowOf(p);
  const id = i === null ? null : M.ids[i];
  if (id) window.location.assign(`/customers/${encodeURIComponent(id)}`);
});
await first;
if (!drawn) draw(); // the columns came before the chart was set up
