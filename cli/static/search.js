const form = $("q"), grid = $("grid"), statusLine = $("status");
const marks = new Map();  // detection id -> "confirmed" | "rejected"
let pickedDetection = null, lastHits = [];

function showMarks() {
  const yes = [...marks].filter(([, m]) => m === "confirmed").map(([d]) => d);
  const no = [...marks].filter(([, m]) => m === "rejected").map(([d]) => d);
  $("marks").textContent = marks.size ?
    `marked: ${yes.length} the person, ${no.length} not; the next search uses them` : "";
  return [yes, no];
}
function query() {
  const data = new FormData(form);
  for (const [k, v] of [...data]) if (v === "" || (v instanceof File && !v.name)) data.delete(k);
  if (pickedDetection) data.set("detection_id", pickedDetection);
  const [yes, no] = showMarks();
  if (yes.length) data.set("confirmed", yes.join(","));
  if (no.length) data.set("rejected", no.join(","));
  return data;
}
function openViewer(h) {
  $("viewframe").src = h.frame_image;
  $("viewclip").src = h.clip;
  $("viewcap").textContent = `#${h.rank} · ${h.similarity.toFixed(3)} · ${h.camera} · ` +
    `${h.video} · ${h.wall_time || clock(h.time_s)} · frame ${h.frame} · click outside to close`;
  $("viewer").classList.add("open");
}
$("viewer").addEventListener("click", (ev) => {
  if (ev.target.id === "viewer") {
    $("viewer").classList.remove("open"); $("viewclip").pause(); $("viewclip").removeAttribute("src");
  }
});
function timelines(hits) {
  const box = $("timelines"); box.replaceChildren();
  const byCam = new Map();
  for (const h of hits) { if (!byCam.has(h.camera)) byCam.set(h.camera, []); byCam.get(h.camera).push(h); }
  const NS = "http://www.w3.org/2000/svg", W = 800;
  for (const [cam, group] of [...byCam].sort()) {
    const t0 = Math.min(...group.map((h) => h.time_s)), t1 = Math.max(...group.map((h) => h.time_s));
    const span = Math.max(t1 - t0, 1e-3);
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("width", W + 20); svg.setAttribute("height", 44);
    const line = document.createElementNS(NS, "line");
    Object.entries({x1: 10, y1: 18, x2: W + 10, y2: 18, stroke: "#999"}).forEach(([k, v]) => line.setAttribute(k, v));
    svg.append(line);
    for (const h of group) {
      const r = document.createElementNS(NS, "rect");
      const shade = Math.round(40 + 180 * (1 - Math.max(0, Math.min(1, h.similarity))));
      Object.entries({x: 8 + (h.time_s - t0) / span * W, y: 6, width: 4, height: 24,
        fill: `rgb(230,${shade},${shade})`, class: "mark"}).forEach(([k, v]) => r.setAttribute(k, v));
      const title = document.createElementNS(NS, "title");
      title.textContent = `#${h.rank} ${h.similarity.toFixed(3)} ${h.wall_time || clock(h.time_s)}`;
      r.append(title); r.addEventListener("click", () => openViewer(h)); svg.append(r);
    }
    for (const [x, t, anchor] of [[10, t0, "start"], [W + 10, t1, "end"]]) {
      const tx = document.createElementNS(NS, "text");
      Object.entries({x, y: 42, "font-size": 11, "text-anchor": anchor}).forEach(([k, v]) => tx.setAttribute(k, v));
      tx.textContent = clock(t); svg.append(tx);
    }
    box.append(el("div", {cls: "timeline"}, el("div", {cls: "meta", text: `camera ${cam} · ${group.length} sightings`}), svg));
  }
}
function card(h) {
  const c = el("div", {cls: "hit", "data-detection": h.detection_id});
  const mark = marks.get(h.detection_id); if (mark) c.classList.add(mark);
  const img = el("img", {src: h.thumbnail, alt: `detection ${h.detection_id}`, title: "full frame and clip"});
  img.addEventListener("click", () => openViewer(h));
  const toggle = (kind) => () => {
    if (marks.get(h.detection_id) === kind) marks.delete(h.detection_id); else marks.set(h.detection_id, kind);
    c.classList.remove("confirmed", "rejected");
    if (marks.get(h.detection_id)) c.classList.add(marks.get(h.detection_id));
    showMarks();
  };
  c.append(img, el("div", {cls: "sim", text: h.similarity.toFixed(3)}),
    el("div", {cls: "meta", text: `${h.camera} · ${h.video}`}),
    el("div", {cls: "meta", text: h.wall_time || clock(h.time_s)}),
    el("div", {cls: "marks"}, el("button", {type: "button", cls: "yes", title: "the person", text: "✓", onclick: toggle("confirmed")}),
      el("button", {type: "button", cls: "no", title: "not the person", text: "✗", onclick: toggle("rejected")})));
  return c;
}
async function search() {
  statusLine.textContent = "searching…";
  try {
    const body = await api("/api/search", {method: "POST", body: query()});
    lastHits = body.hits;
    statusLine.textContent = `${body.hits.length} hits · ${body.embedder} · ${(body.seconds * 1000).toFixed(0)} ms`;
    for (const n of body.notes) statusLine.append(el("div", {text: n}));
    grid.replaceChildren(...body.hits.map(card));
    timelines(body.hits);
  } catch (e) { statusLine.textContent = e.message; }
}
form.addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
function clearMarks() {
  marks.clear(); showMarks();
  grid.querySelectorAll(".hit").forEach((c) => c.classList.remove("confirmed", "rejected"));
}
// marks belong to one person: a new query image, pick or subject starts without them
$("image").addEventListener("change", () => { pickedDetection = null; $("querying").textContent = ""; clearMarks(); });
$("subject").addEventListener("change", clearMarks);
$("clearmarks").addEventListener("click", clearMarks);
$("export").addEventListener("click", async () => {
  statusLine.textContent = "making the evidence zip (frames and clips)…";
  try {
    let job = await api("/api/export", {method: "POST", body: query()});
    while (job.status === "queued" || job.status === "running") {
      statusLine.textContent = `making the evidence zip: ${job.done} of ${job.total || "?"} steps…`;
      await new Promise((r) => setTimeout(r, 500));
      job = await api(`/api/exports/${job.id}`);
    }
    if (job.status !== "complete") throw new Error(job.error || "the export failed");
    const a = el("a", {href: job.zip, download: job.name});
    document.body.append(a); a.click(); a.remove();
    statusLine.textContent = `evidence zip ready (${(job.size_bytes / 1e6).toFixed(1)} MB)`;
  } catch (e) { statusLine.textContent = e.message; }
});
$("savesubject").addEventListener("click", async () => {
  const [yes] = showMarks();
  const data = new FormData();
  data.set("name", $("subjectname").value); data.set("detection_ids", yes.join(","));
  try {
    const s = await api("/api/subjects", {method: "POST", body: data});
    statusLine.textContent = `subject “${s.name}” holds ${s.detection_ids.length} sightings`;
    loadSubjects();
  } catch (e) { statusLine.textContent = e.message; }
});
async function loadSubjects() {
  const list = await api("/api/subjects");
  $("subject").replaceChildren(el("option", {value: "", text: "—"}),
    ...list.map((s) => el("option", {value: s.id, text: `${s.name} (${s.sightings})`})));
}
// picking a person on a stored frame
let videos = [];
async function showFrame() {
  const vid = $("pickvideo").value, n = $("pickframe").value;
  if (!vid) return;
  const boxes = await api(`/api/videos/${vid}/frames/${n}/detections`);
  const v = videos.find((x) => String(x.id) === vid);
  const img = el("img", {src: `/api/videos/${vid}/frames/${n}`, alt: `frame ${n}`});
  const wrap = $("picker"); wrap.replaceChildren(img);
  for (const b of boxes) {
    const [x1, y1, x2, y2] = b.box;
    const btn = el("button", {type: "button", cls: "box", title: `detection ${b.detection_id}`, "data-detection": b.detection_id});
    Object.assign(btn.style, {left: `${100 * x1 / v.width}%`, top: `${100 * y1 / v.height}%`,
      width: `${100 * (x2 - x1) / v.width}%`, height: `${100 * (y2 - y1) / v.height}%`});
    btn.addEventListener("click", () => {
      pickedDetection = b.detection_id; $("image").value = ""; clearMarks();
      $("querying").replaceChildren(el("span", {text: `querying with detection #${b.detection_id} `}),
        el("img", {src: `/api/detections/${b.detection_id}/thumbnail`, alt: "picked", cls: "picked"}));
      search();
    });
    wrap.append(btn);
  }
}
(async () => {
  loadSubjects();
  videos = await api("/api/videos");
  for (const v of videos) {
    $("video").append(el("option", {value: v.id, text: `${v.camera} · ${v.name}`}));
    $("pickvideo").append(el("option", {value: v.id, text: `${v.camera} · ${v.name}`}));
  }
  const sync = () => { const v = videos.find((x) => String(x.id) === $("pickvideo").value);
    if (v) { $("pickslider").max = Math.max(0, v.frames - 1); $("pickframe").max = Math.max(0, v.frames - 1); } };
  $("pickvideo").addEventListener("change", () => { sync(); showFrame(); });
  $("pickframe").addEventListener("change", () => { $("pickslider").value = $("pickframe").value; showFrame(); });
  $("pickslider").addEventListener("change", () => { $("pickframe").value = $("pickslider").value; showFrame(); });
  $("pickbox").addEventListener("toggle", () => { sync(); showFrame(); });
})();
