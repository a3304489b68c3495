"""`prowl serve`'s application: one process that opens the gallery and loads its embedder
once, and answers the search page and its JSON API through the same ``run_query`` the CLI
calls.

Security: the server holds surveillance data. It binds 127.0.0.1 unless told otherwise, and
any other bind needs an access token, checked on every request (``Authorization: Bearer``,
the ``prowl_token`` cookie the page sets, or ``?token=`` once). URLs carry ids, never file
paths. Uploads are size-limited and decoded as images before use. Requests that change
state or upload data refuse other origins. Errors are JSON with one message, never a
traceback. The page builds every piece of gallery text with ``textContent``; the little that
is rendered on the server is HTML-escaped.
"""

from __future__ import annotations

import hmac
import html
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.errors import ProwlError
from pipeline.query import check_crop, embedder_for, run_query
from storage.gallery import Gallery, SearchFilters

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 << 20
IMAGE_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/webp")


@dataclass
class ServerState:
    gallery: Gallery
    token: str | None
    embedder: Any = None  # (embedder id, embedder), loaded on first search
    lock: threading.Lock = field(default_factory=threading.Lock)  # one query at a time


def create_app(gallery: Gallery, token: str | None = None) -> FastAPI:
    """The ASGI app over an open gallery. ``token``: required on every request when set."""
    state = ServerState(gallery, token)
    app = FastAPI(title="prowl", version="1", docs_url=None, redoc_url=None)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(422, f"{where}: {first.get('msg', 'invalid request')}".strip(": "))

    @app.exception_handler(Exception)
    async def crash(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if state.token is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            given = given or request.cookies.get("prowl_token", "")
            given = given or request.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), state.token.encode()):
                return error(401, "an access token is required (printed when the server started)")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            host = request.headers.get("host", "")
            if origin is not None and origin.split("://", 1)[-1] != host:
                return error(403, "cross-site request refused")
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        if state.token is not None and request.query_params.get("token"):
            response.set_cookie("prowl_token", state.token, httponly=True, samesite="strict")
        return response

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        cameras = sorted({v.camera_id for v in gallery.videos()})
        options = "".join(
            f'<option value="{html.escape(c, quote=True)}">{html.escape(c)}</option>'
            for c in cameras
        )
        return PAGE.replace("{{CAMERAS}}", options)

    @app.get("/api/videos")
    def videos() -> list[dict[str, Any]]:
        return [
            {
                "id": v.id,
                "camera": v.camera_id,
                "name": v.path.rsplit("/", 1)[-1],
                "frames": v.frame_count,
                "fps": v.fps,
                "start_time": v.start_time,
            }
            for v in gallery.videos()
        ]

    @app.get("/api/detections/{detection_id}/thumbnail")
    def thumbnail(detection_id: int) -> Response:
        try:
            row, _video = gallery.detection(detection_id)
        except ProwlError:
            raise HTTPException(404, f"no detection {detection_id}") from None
        return Response(
            row.thumbnail, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"}
        )

    @app.get("/api/detections/{detection_id}/frame")
    def frame(detection_id: int) -> Response:
        """The full frame of a sighting with its box, decoded from the source video (found by
        the gallery's record of it, never by anything in the URL)."""
        from pipeline.query import read_frame

        try:
            row, video = gallery.detection(detection_id)
        except ProwlError:
            raise HTTPException(404, f"no detection {detection_id}") from None
        try:
            image = read_frame(Path(video.path), row.frame_index).copy()
        except ProwlError:
            raise HTTPException(404, "the source video of this sighting is not available") from None
        x1, y1, x2, y2 = (round(v) for v in (row.x1, row.y1, row.x2, row.y2))
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 0, 255), 3)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise HTTPException(500, "the frame could not be encoded")
        return Response(jpeg.tobytes(), media_type="image/jpeg")

    @app.post("/api/search")
    async def search(
        image: UploadFile = File(...),  # noqa: B008 - FastAPI's declaration style
        k: int = Form(20, ge=1, le=1000),
        by: str = Form("detection", pattern="^(detection|track)$"),
        camera: str | None = Form(None),
        min_similarity: float | None = Form(None, ge=-1, le=1),
    ) -> dict[str, Any]:
        if image.content_type not in IMAGE_TYPES:
            raise HTTPException(
                415, f"upload a JPEG, PNG, BMP or WebP image, not {image.content_type}"
            )
        data = await image.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"the image is over {MAX_UPLOAD_BYTES >> 20} MB")
        crop = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if crop is None:
            raise HTTPException(400, "the upload is not a readable image")
        try:
            check_crop(np.asarray(crop, np.uint8), "the uploaded image")
            filters = SearchFilters(
                cameras=(camera,) if camera else (), min_similarity=min_similarity
            )
            with state.lock:
                if state.embedder is None:
                    state.embedder = embedder_for(gallery, None)
                t = time.perf_counter()
                result = run_query(
                    gallery,
                    [np.asarray(crop, np.uint8)],
                    k,
                    filters,
                    by=by,
                    loaded=state.embedder,
                )
        except ProwlError as exc:
            raise HTTPException(400, str(exc)) from None
        return {
            "embedder": result.embedder,
            "seconds": time.perf_counter() - t,
            "hits": [
                {
                    "rank": h.rank,
                    "similarity": round(h.similarity, 4),
                    "detection_id": h.detection_id,
                    "video_id": h.video_id,
                    "video": h.video_path.rsplit("/", 1)[-1],
                    "camera": h.camera_id,
                    "frame": h.frame_index,
                    "time_s": round(h.timestamp_s, 3),
                    "box": [round(v, 1) for v in h.xyxy],
                    "track_id": h.track_id,
                    "thumbnail": f"/api/detections/{h.detection_id}/thumbnail",
                    "frame_image": f"/api/detections/{h.detection_id}/frame",
                }
                for h in result.hits
            ],
            "notes": result.notes,
        }

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>prowl — find a person</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;background:#f6f6f6;color:#222}
form{display:flex;gap:.8em;align-items:end;flex-wrap:wrap;background:#fff;padding:1em;
border-radius:6px}
label{display:flex;flex-direction:column;gap:.2em}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(120px,1fr));gap:.8em;
margin-top:1em}
.hit{background:#fff;border-radius:6px;padding:.4em;text-align:center}
.hit img{height:140px;max-width:100%;object-fit:contain}
.sim{font-weight:600}
#status{margin-top:.8em;color:#555}
</style></head><body>
<h1>prowl — find a person</h1>
<form id="q">
<label>Crop of the person <input type="file" name="image" accept="image/*" required></label>
<label>Camera <select name="camera"><option value="">all</option>{{CAMERAS}}</select></label>
<label>By <select name="by"><option>detection</option><option>track</option></select></label>
<label>Hits <input type="number" name="k" value="20" min="1" max="1000"></label>
<button>Search</button>
</form>
<div id="status"></div>
<div id="grid"></div>
<script>
const form = document.getElementById("q");
const grid = document.getElementById("grid");
const status = document.getElementById("status");
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  status.textContent = "searching…";
  grid.replaceChildren();
  const data = new FormData(form);
  if (!data.get("camera")) data.delete("camera");
  const res = await fetch("/api/search", {method: "POST", body: data});
  const body = await res.json();
  if (!res.ok) { status.textContent = body.error; return; }
  status.textContent = `${body.hits.length} hits · ${body.embedder} · ` +
    `${(body.seconds * 1000).toFixed(0)} ms`;
  for (const h of body.hits) {
    const card = document.createElement("div");
    card.className = "hit";
    const link = document.createElement("a");
    link.href = h.frame_image; link.target = "_blank"; link.title = "the full frame";
    const img = document.createElement("img");
    img.src = h.thumbnail; img.alt = `detection ${h.detection_id}`;
    link.append(img);
    const sim = document.createElement("div");
    sim.className = "sim"; sim.textContent = h.similarity.toFixed(3);
    const where = document.createElement("div");
    where.textContent = `${h.camera} · ${h.video} · ${h.time_s.toFixed(1)} s`;
    card.append(link, sim, where);
    grid.append(card);
  }
});
</script>
</body></html>
"""
