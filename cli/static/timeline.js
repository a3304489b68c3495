// One time axis for every camera: a row per camera, one shared scale, each answer a bar
// from enter to leave (a thin mark for a single sighting). Footage with a known start is
// placed by wall-clock time; a video without one gets its own row on its own offsets.
// Drag across the axis to zoom into that span; double-click (or "whole span") to zoom out.
const NS = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}
function spanOf(h) {  // [start, end] in ms on the shared axis, or offsets (s) when undated
  const a = h.appearance;
  const enter = a ? a.enter_wall : h.wall_time, leave = a ? a.leave_wall : h.wall_time;
  if (enter) return {dated: true, t0: Date.parse(enter), t1: Date.parse(leave || enter)};
  return {dated: false, t0: (a ? a.enter_s : h.time_s) * 1000, t1: (a ? a.leave_s : h.time_s) * 1000};
}
function timeOfDay(ms, dated) {
  if (!dated) return clock(ms / 1000);
  const d = new Date(ms), p = (n) => String(n).padStart(2, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
function drawTimeline(box, hits, onOpen, zoom = null) {
  box.replaceChildren();
  if (!hits.length) return;
  const lanes = new Map();  // key -> {label, dated, items}
  for (const h of hits) {
    const s = spanOf(h);
    const key = s.dated ? `cam:${h.camera}` : `video:${h.video_id}`;
    if (!lanes.has(key)) lanes.set(key, {label: s.dated ? h.camera : `${h.camera} · ${h.video} (own offsets)`, dated: s.dated, items: []});
    lanes.get(key).items.push([h, s]);
  }
  const ordered = [...lanes.values()].sort((a, b) => (b.dated - a.dated) || a.label.localeCompare(b.label));
  const dated = ordered.filter((l) => l.dated).flatMap((l) => l.items.map(([, s]) => s));
  let lo = Math.min(...dated.map((s) => s.t0)), hi = Math.max(...dated.map((s) => s.t1));
  if (zoom) [lo, hi] = zoom;
  // appearances that overlap in time stack in sub-rows of their camera's lane
  for (const lane of ordered) {
    const ends = [];
    lane.items.sort((a, b) => a[1].t0 - b[1].t0);
    for (const item of lane.items) {
      let row = ends.findIndex((end) => end < item[1].t0);
      if (row < 0) { row = Math.min(ends.length, 7); if (row === ends.length) ends.push(0); }
      ends[row] = Math.max(ends[row], item[1].t1); item.push(row);
    }
    lane.rows = Math.max(1, ends.length);
  }
  const LEFT = 150, W = 820, ROW = 14, GAP = 10;
  const H = ordered.reduce((n, l) => n + l.rows * ROW + GAP, 0) + 24;
  const svg = svgEl("svg", {viewBox: `0 0 ${LEFT + W + 10} ${H}`, class: "axis", role: "img",
    "aria-label": "appearances of every camera on one time axis"});
  let top = 4;
  ordered.forEach((lane) => {
    let a = lo, b = hi;
    if (!lane.dated) { a = Math.min(...lane.items.map(([, s]) => s.t0)); b = Math.max(...lane.items.map(([, s]) => s.t1)); }
    const span = Math.max(b - a, 1000), height = lane.rows * ROW;
    const label = svgEl("text", {x: 0, y: top + 11, "font-size": 12, class: "lane"}); label.textContent = lane.label;
    svg.append(label, svgEl("rect", {x: LEFT, y: top - 2, width: W, height: height + 2, fill: "#f3f5f8"}));
    for (const [h, s, row] of lane.items) {
      if (s.t1 < a || s.t0 > b) continue;  // outside the zoomed span
      const x = LEFT + Math.max(0, (s.t0 - a) / span) * W;
      const w = Math.max(3, Math.min(LEFT + W - x, (s.t1 - Math.max(s.t0, a)) / span * W));
      const shade = Math.round(60 + 160 * (1 - Math.max(0, Math.min(1, h.similarity))));
      const r = svgEl("rect", {x, y: top + row * ROW, width: w, height: ROW - 3, fill: `rgb(${shade},${shade},230)`,
        class: "bar", "data-camera": h.camera, "data-rank": h.rank, "data-start": s.t0, "data-dated": s.dated});
      const t = svgEl("title", {});
      t.textContent = `#${h.rank} · ${h.similarity.toFixed(3)} · ${h.camera} · ${timeOfDay(s.t0, s.dated)}–${timeOfDay(s.t1, s.dated)}`;
      r.append(t); r.addEventListener("click", () => onOpen(h)); svg.append(r);
    }
    top += height + GAP;
  });
  const H0 = H;
  if (dated.length) {
    for (let k = 0; k <= 4; k++) {
      const t = lo + (hi - lo) * k / 4, x = LEFT + W * k / 4;
      const tx = svgEl("text", {x, y: H0 - 4, "font-size": 11, "text-anchor": k === 0 ? "start" : k === 4 ? "end" : "middle"});
      tx.textContent = timeOfDay(t, true); svg.append(tx);
    }
    // drag to zoom into a span of the shared axis
    let from = null;
    const toX = (ev) => { const r = svg.getBoundingClientRect(); return (ev.clientX - r.left) / r.width * (LEFT + W + 10); };
    const toT = (x) => lo + (Math.min(Math.max(x, LEFT), LEFT + W) - LEFT) / W * (hi - lo);
    svg.addEventListener("mousedown", (ev) => { from = toX(ev); });
    svg.addEventListener("mouseup", (ev) => {
      const to = toX(ev);
      if (from !== null && Math.abs(to - from) > 8) drawTimeline(box, hits, onOpen, [toT(Math.min(from, to)), toT(Math.max(from, to))]);
      from = null;
    });
    svg.addEventListener("dblclick", () => drawTimeline(box, hits, onOpen));
  }
  const head = el("div", {cls: "meta", text: `${ordered.length} row${ordered.length > 1 ? "s" : ""} · one time axis · drag to zoom`});
  if (zoom) head.append(" ", el("button", {type: "button", text: "whole span", onclick: () => drawTimeline(box, hits, onOpen)}));
  box.append(el("div", {cls: "timeline"}, head, svg));
}
function drawJourney(box, steps, onOpen, hits) {
  box.replaceChildren();
  if (!steps.length) return;
  const gap = (s) => s === null ? "" : s < 0 ? `overlaps ${(-s).toFixed(1)} s` :
    s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  const rows = steps.map((s) => {
    const tr = el("tr", {cls: "pick", "data-rank": s.rank, title: s.gap_s !== null && s.gap_s < 0 ? "seen while the step before was still in view" : ""},
      el("td", {cls: "when", text: s.enter}), el("td", {cls: "when", text: s.leave}),
      el("td", {text: s.camera}), el("td", {cls: "name", text: s.video, title: s.video}),
      el("td", {text: String(s.sightings)}), el("td", {text: gap(s.gap_s)}), el("td", {text: `#${s.rank}`}));
    tr.addEventListener("click", () => { const h = hits.find((x) => x.rank === s.rank); if (h) onOpen(h); });
    return tr;
  });
  box.append(el("details", {open: ""}, el("summary", {text: `Journey: ${steps.length} in time order`}),
    el("table", {cls: "journey"}, el("tr", {}, ...["enter", "leave", "camera", "video", "sightings", "gap", "rank"].map((t) => el("th", {text: t}))), ...rows)));
}
