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
const VIEW_SECONDS = 6;  // the viewer plays this long before and after the hit
let viewing = -1;  // index in lastHits of the hit in the viewer
function openViewer(h) {
  viewing = lastHits.indexOf(h);
  $("viewframe").src = h.frame_image;
  $("viewclip").src = `${h.clip}?seconds=${VIEW_SECONDS}&source=true`;  // seekable, full size
  const a = h.appearance;
  const when = a ? `${shortTime(a.enter_wall, a.enter_s)} – ${shortTime(a.leave_wall, a.leave_s)} · ${a.sightings} sightings`
    : (h.wall_time || clock(h.time_s));
  $("viewcap").textContent = `#${h.rank} of ${lastHits.length} · ${h.similarity.toFixed(3)} · ${h.camera} · ` +
    `${h.video} · ${when} · frame ${h.frame}` + (marks.get(h.detection_id) ? ` · marked ${marks.get(h.detection_id)}` : "") +
    " · ←/→ previous/next, y/n mark, s find similar, Esc close";
  $("viewer").classList.add("open");
}
function closeViewer() {
  $("viewboxes").hidden = true;
  $("viewer").classList.remove("open"); $("viewclip").pause(); $("viewclip").removeAttribute("src"); viewing = -1;
}
function step(by) {
  if (viewing < 0 || !lastHits.length) return;
  openViewer(lastHits[(viewing + by + lastHits.length) % lastHits.length]);
}
function markViewed(kind) {
  if (viewing < 0) return;
  const h = lastHits[viewing];
  setMark(h.detection_id, kind);
  openViewer(h);
}
$("viewer").addEventListener("click", (ev) => { if (ev.target.id === "viewer") closeViewer(); });
$("viewclose").addEventListener("click", closeViewer);
$("viewprev").addEventListener("click", () => step(-1));
$("viewnext").addEventListener("click", () => step(1));
$("viewyes").addEventListener("click", () => markViewed("confirmed"));
$("viewno").addEventListener("click", () => markViewed("rejected"));
$("viewsimilar").addEventListener("click", () => { const h = lastHits[viewing]; closeViewer(); if (h) findSimilar(h.detection_id); });
document.addEventListener("keydown", (ev) => {
  if (!$("viewer").classList.contains("open") || ev.target.tagName === "INPUT") return;
  const act = {Escape: closeViewer, ArrowLeft: () => step(-1), ArrowRight: () => step(1),
    y: () => markViewed("confirmed"), n: () => markViewed("rejected"),
    s: () => $("viewsimilar").click(), p: () => $("viewpick").click()}[ev.key];
  if (act) { ev.preventDefault(); act(); }
});
// pick on the viewer's paused frame: its stored boxes (click one), or a dragged rectangle
// cropped from the frame in the browser and searched as an uploaded image
let pickFrame = null;  // {video, frame} of the frame shown under the boxes
async function pickOnFrame() {
  const over = $("viewboxes");
  if (!over.hidden) { over.hidden = true; $("viewclip").play(); return; }
  const h = lastHits[viewing], clipEl = $("viewclip");
  const v = videos.find((x) => x.id === h.video_id);
  if (!h || !v) return;
  clipEl.pause();
  const fps = v.fps || 25, first = Math.max(0, h.frame - Math.round(VIEW_SECONDS * fps));
  const n = Math.min(v.frames - 1, first + Math.round(clipEl.currentTime * fps));
  pickFrame = {video: v, frame: n};
  const boxes = await api(`/api/videos/${v.id}/frames/${n}/detections`);
  over.replaceChildren(...boxes.map((b) => {
    const [x1, y1, x2, y2] = b.box;
    const btn = el("button", {type: "button", cls: "box", title: `detection ${b.detection_id}`, "data-detection": b.detection_id});
    Object.assign(btn.style, {left: `${100 * x1 / v.width}%`, top: `${100 * y1 / v.height}%`,
      width: `${100 * (x2 - x1) / v.width}%`, height: `${100 * (y2 - y1) / v.height}%`});
    btn.addEventListener("mousedown", (ev) => ev.stopPropagation());
    btn.addEventListener("click", () => { closeViewer(); findSimilar(b.detection_id); });
    return btn;
  }));
  over.hidden = false;
}
$("viewpick").addEventListener("click", pickOnFrame);
(() => {
  const over = $("viewboxes");
  let start = null, rect = null;
  const at = (ev) => { const r = over.getBoundingClientRect(); return [(ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height]; };
  over.addEventListener("mousedown", (ev) => {
    start = at(ev); rect = el("div", {cls: "drag"}); over.append(rect); ev.preventDefault();
  });
  over.addEventListener("mousemove", (ev) => {
    if (!start) return;
    const [x, y] = at(ev);
    Object.assign(rect.style, {left: `${100 * Math.min(x, start[0])}%`, top: `${100 * Math.min(y, start[1])}%`,
      width: `${100 * Math.abs(x - start[0])}%`, height: `${100 * Math.abs(y - start[1])}%`});
  });
  over.addEventListener("mouseup", async (ev) => {
    if (!start) return;
    const [x, y] = at(ev), a = start; start = null; rect.remove();
    if (Math.abs(x - a[0]) < 0.01 || Math.abs(y - a[1]) < 0.02 || !pickFrame) return;
    const {video: v, frame: n} = pickFrame;
    const img = new Image();
    img.src = `/api/videos/${v.id}/frames/${n}`;
    await img.decode();
    const sx = Math.min(x, a[0]) * img.naturalWidth, sy = Math.min(y, a[1]) * img.naturalHeight;
    const sw = Math.abs(x - a[0]) * img.naturalWidth, sh = Math.abs(y - a[1]) * img.naturalHeight;
    const canvas = el("canvas", {width: Math.round(sw), height: Math.round(sh)});
    canvas.getContext("2d").drawImage(img, sx, sy, sw, sh, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.92));
    const files = new DataTransfer();
    files.items.add(new File([blob], `frame${n}-crop.jpg`, {type: "image/jpeg"}));
    closeViewer();
    pickedDetection = null; $("subject").value = ""; clearMarks();
    $("image").files = files.files;
    search();
  });
})();
function shortTime(wall, seconds) {
  return wall ? wall.slice(11, 19) : clock(seconds);
}
function setMark(id, kind) {
  if (marks.get(id) === kind) marks.delete(id); else marks.set(id, kind);
  const c = grid.querySelector(`.hit[data-detection="${id}"]`);
  if (c) { c.classList.remove("confirmed", "rejected"); if (marks.get(id)) c.classList.add(marks.get(id)); }
  showMarks();
}
function card(h) {
  const c = el("div", {cls: "hit", "data-detection": h.detection_id, "data-camera": h.camera});
  const mark = marks.get(h.detection_id); if (mark) c.classList.add(mark);
  const img = el("img", {src: h.thumbnail, alt: `detection ${h.detection_id}`, title: "frame, clip, previous/next"});
  img.addEventListener("click", () => openViewer(h));
  const a = h.appearance;
  const when = a ? `${shortTime(a.enter_wall, a.enter_s)}–${shortTime(a.leave_wall, a.leave_s)}`
    : shortTime(h.wall_time, h.time_s);
  const day = (a ? a.enter_wall : h.wall_time) || "";
  c.append(img, el("div", {cls: "sim", text: `#${h.rank} · ${h.similarity.toFixed(3)}`}),
    el("div", {cls: "meta name", text: h.camera, title: h.camera}),
    el("div", {cls: "meta name", text: h.video, title: h.video}),
    el("div", {cls: "meta when", text: when, title: day ? day.slice(0, 10) : "seconds from the video's start"}),
    el("div", {cls: "meta", text: a ? `${a.sightings} sightings` : `frame ${h.frame}`}),
    el("div", {cls: "chips", title: "clothing colours: upper | lower (approximate)"},
      ...[h.upper, h.lower].map((set, i) => el("span", {cls: i ? "part lower" : "part upper"},
        ...(set.length ? set : [null]).map((c) => el("span", {cls: `chip c-${c || "none"}`, text: c || "?"}))))),
    el("div", {cls: "marks"},
      el("button", {type: "button", cls: "yes", title: "the person", text: "✓", onclick: () => setMark(h.detection_id, "confirmed")}),
      el("button", {type: "button", cls: "no", title: "not the person", text: "✗", onclick: () => setMark(h.detection_id, "rejected")}),
      el("button", {type: "button", cls: "similar", title: "search with this sighting", text: "similar", onclick: () => findSimilar(h.detection_id)})));
  return c;
}
function findSimilar(id) {
  pickedDetection = id; $("image").value = ""; $("subject").value = ""; clearMarks();
  $("querying").replaceChildren(el("span", {text: `querying with detection #${id} `}),
    el("img", {src: `/api/detections/${id}/thumbnail`, alt: "picked", cls: "picked"}));
  search();
}
async function search() {
  statusLine.textContent = "searching…";
  grid.classList.add("searching");  // the old hits stay until the answer: dimmed, not markable
  try {
    const body = await api("/api/search", {method: "POST", body: query()});
    lastHits = body.hits;
    const unit = body.by === "track" ? "appearances" : "sightings";
    statusLine.textContent = `${body.hits.length} ${unit} · ${body.embedder} · ${(body.seconds * 1000).toFixed(0)} ms`;
    for (const n of body.notes) statusLine.append(el("div", {cls: "note", text: n}));
    if (!pickedDetection) $("querying").replaceChildren(...body.query_crops.map((src) => el("img", {src, alt: "query", cls: "picked"})));
    grid.replaceChildren(...body.hits.map(card));
    drawTimeline($("timelines"), body.hits, openViewer);
    drawJourney($("journey"), body.journey, openViewer, body.hits);
  } catch (e) { statusLine.textContent = e.message; }
  finally { grid.classList.remove("searching"); }
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
$("clearquery").addEventListener("click", () => {
  pickedDetection = null; $("image").value = ""; $("subject").value = ""; clearMarks();
  $("querying").replaceChildren(); $("subjectbar").hidden = true;
  statusLine.textContent = "Upload a crop, pick a person on a frame, choose a subject, or search by clothing colour alone.";
});
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
  for (const [field, id] of [["case", "casename"], ["analyst", "analyst"], ["notes", "subjectnotes"]])
    if ($(id).value.trim()) data.set(field, $(id).value.trim());
  try {
    const s = await api("/api/subjects", {method: "POST", body: data});
    statusLine.textContent = `subject “${s.name}” holds ${s.detection_ids.length} sightings`;
    loadSubjects();
  } catch (e) { statusLine.textContent = e.message; }
});
async function loadSubjects() {
  const list = await api("/api/subjects");
  $("subject").replaceChildren(el("option", {value: "", text: "—"}),
    ...list.map((s) => el("option", {value: s.id, text: `${s.name} (${s.sightings})${s.case ? " · " + s.case : ""}`})));
  showSubject();
}
async function showSubject() {  // the chosen subject: its case, and rename / delete
  const id = $("subject").value;
  $("subjectbar").hidden = !id;
  if (!id) return;
  const s = await api(`/api/subjects/${id}`);
  $("subjectinfo").textContent = `subject “${s.name}” · ${s.detection_ids.length} sightings` +
    (s.case ? ` · case ${s.case}` : "") + (s.analyst ? ` · analyst ${s.analyst}` : "") + (s.notes ? ` · ${s.notes}` : "");
}
$("subject").addEventListener("change", showSubject);
$("renamesubject").addEventListener("click", async () => {
  const id = $("subject").value, name = prompt("New name of the subject");
  if (!id || !name) return;
  const data = new FormData(); data.set("name", name);
  try { await api(`/api/subjects/${id}`, {method: "PATCH", body: data}); await loadSubjects(); $("subject").value = id; showSubject(); }
  catch (e) { statusLine.textContent = e.message; }
});
$("deletesubject").addEventListener("click", async () => {
  const id = $("subject").value;
  if (!id || !confirm("Delete this subject? Its sightings stay in the gallery.")) return;
  try { await api(`/api/subjects/${id}`, {method: "DELETE"}); $("subject").value = ""; await loadSubjects(); }
  catch (e) { statusLine.textContent = e.message; }
});
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
    btn.addEventListener("click", () => findSimilar(b.detection_id));
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
  const asked = new URLSearchParams(location.search);  // from the gallery page's links
  if (asked.get("similar")) findSimilar(Number(asked.get("similar")));
  else if (asked.get("subject")) {
    await loadSubjects(); $("subject").value = asked.get("subject"); showSubject(); search();
  }
})();
