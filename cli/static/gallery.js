const row = (...cells) => el("tr", {}, ...cells.map((c) => el("td", {text: c ?? ""})));
async function loadVideos() {
  const vs = await api("/api/videos");
  $("videos").tBodies[0].replaceChildren(...vs.map((v) => {
    const r = row(v.id, v.camera, v.name, v.frames, v.duration_s == null ? "" : clock(v.duration_s),
      v.start_time || "", v.first_s == null ? "" : `${clock(v.first_s)} – ${clock(v.last_s)}`,
      v.detections, v.runs.join(", "));
    r.className = "pick"; r.addEventListener("click", () => loadTracks(v)); return r;
  }));
}
async function loadTracks(v) {
  const ts = await api(`/api/videos/${v.id}/tracks`);
  $("trackshead").textContent = `${ts.length} tracks of ${v.name} (camera ${v.camera})`;
  $("tracks").replaceChildren(...ts.map((t) => el("div", {},
    el("a", {href: `/?similar=${t.best_detection_id}`, title: "find this person elsewhere", cls: "similar"},
      el("img", {src: t.thumbnail, alt: `track ${t.id}`})), el("br"),
    el("span", {text: `${clock(t.first_s)} – ${clock(t.last_s)} · ${t.detections}`}))));
}
async function loadRuns() {
  const rs = await api("/api/runs");
  $("runs").tBodies[0].replaceChildren(...rs.map((r) => row(r.id, r.video, r.camera,
    r.status + (r.error ? ` (${r.error})` : ""), r.frames_processed, r.detections, r.finished_at || "")));
}
async function loadSubjects() {
  const ss = await api("/api/subjects");
  $("subjects").replaceChildren(...(ss.length ? ss.map((s) => el("div", {text: `${s.name}: ${s.sightings} sightings`}))
    : [el("div", {cls: "meta", text: "none yet: mark hits on the search page and save them as a subject"})]));
}
let polling = null;
async function loadJobs() {
  const js = await api("/api/jobs");
  $("jobs").tBodies[0].replaceChildren(...js.map((j) => {
    const bar = el("progress", {max: j.frames_total || 1, value: j.frames_done});
    const r = row(j.id, j.source, j.camera || "", j.status, "", j.people, j.error || "");
    r.children[4].append(bar, el("span", {text: ` ${j.frames_done}/${j.frames_total ?? "?"}`}));
    r.dataset.status = j.status; return r;
  }));
  const busy = js.some((j) => j.status === "queued" || j.status === "running");
  if (busy && !polling) polling = setInterval(loadJobs, 1000);
  if (!busy && polling) { clearInterval(polling); polling = null; loadVideos(); loadRuns(); }
}
async function submit(url, form) {
  $("ingeststatus").textContent = "";
  try { await api(url, {method: "POST", body: new FormData(form)}); loadJobs(); }
  catch (e) { $("ingeststatus").textContent = e.message; }
}
$("ingest").addEventListener("submit", (ev) => { ev.preventDefault(); submit("/api/ingest", ev.target); });
$("upload").addEventListener("submit", (ev) => { ev.preventDefault(); submit("/api/ingest/upload", ev.target); });
(async () => {
  loadVideos(); loadRuns(); loadSubjects(); loadJobs();
  const f = await api("/api/ingest/files");
  $("files").replaceChildren(...f.files.map((x) => el("option", {value: x.name, text: x.name})));
  if (!f.roots) $("files").append(el("option", {value: "", text: "no --ingest-root given"}));
})();
