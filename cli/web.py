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
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from cli.web_jobs import VIDEO_SUFFIXES, IngestJobs, files_under, under_roots
from cli.web_pages import page as static_page
from cli.web_pages import static_file
from pipeline.config import Config
from pipeline.errors import ProwlError
from pipeline.query import QueryResult, check_crop, embedder_for, run_query
from storage.gallery import Gallery, Hit, SearchFilters
from storage.models import DetectionRow, VideoRow

log = logging.getLogger(__name__)

MAX_ID = 2**62  # ids and frame numbers beyond this are refused (422), not passed to the database
Id = Annotated[int, PathParam(ge=0, le=MAX_ID)]
MAX_UPLOAD_BYTES = 10 << 20
MAX_VIDEO_UPLOAD_BYTES = 4 << 30
IMAGE_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/webp")


class QueryForm(BaseModel):
    """The fields of a search (and of an evidence export: the same search, zipped)."""

    detection_id: int | None = Field(None, ge=1, le=MAX_ID)
    confirmed: str | None = Field(None, max_length=20000)  # detection ids, comma-separated
    rejected: str | None = Field(None, max_length=20000)
    subject_id: int | None = Field(None, ge=1, le=MAX_ID)
    k: int = Field(20, ge=1, le=1000)
    by: str = Field("detection", pattern="^(detection|track)$")
    camera: str | None = Field(None, max_length=200)
    video_id: int | None = Field(None, ge=1, le=MAX_ID)
    from_s: float | None = Field(None, ge=0, le=1e9)
    to_s: float | None = Field(None, ge=0, le=1e9)
    min_similarity: float | None = Field(None, ge=-1, le=1)


@dataclass
class ServerState:
    gallery: Gallery
    token: str | None
    embedder: Any = None  # (embedder id, embedder), loaded on first search
    lock: threading.Lock = field(default_factory=threading.Lock)  # one query at a time
    jobs: IngestJobs | None = None


def _ids(text: str | None, what: str) -> list[int]:
    """ "1,2, 3" -> [1, 2, 3] (the page sends marked hits this way)."""
    out = []
    for part in (text or "").replace(" ", "").split(","):
        if part:
            if not part.isdigit() or len(part) > 18:
                raise HTTPException(422, f"{what}: detection ids separated by commas")
            out.append(int(part))
    if len(out) > 1000:
        raise HTTPException(422, f"{what}: at most 1000 ids")
    return out


def hit_json(h: Hit) -> dict[str, Any]:
    from pipeline.timeline import wall_time

    return {
        "rank": h.rank,
        "similarity": round(h.similarity, 4),
        "detection_id": h.detection_id,
        "video_id": h.video_id,
        "video": h.video_path.rsplit("/", 1)[-1],
        "camera": h.camera_id,
        "frame": h.frame_index,
        "time_s": round(h.timestamp_s, 3),
        "wall_time": wall_time(h.video_start, h.timestamp_s),
        "box": [round(v, 1) for v in h.xyxy],
        "track_id": h.track_id,
        "thumbnail": f"/api/detections/{h.detection_id}/thumbnail",
        "frame_image": f"/api/detections/{h.detection_id}/frame",
        "clip": f"/api/detections/{h.detection_id}/clip",
    }


def create_app(
    gallery: Gallery,
    token: str | None = None,
    cfg: Config | None = None,
    ingest_roots: list[Path] | None = None,
) -> FastAPI:
    """The ASGI app over an open gallery. ``token``: required on every request when set.
    ``cfg`` and ``ingest_roots``: ingest from the page, of files under those folders (and of
    uploads, saved under the gallery's data folder)."""
    state = ServerState(gallery, token)
    roots = [Path(r) for r in ingest_roots or []]
    uploads = gallery.data_dir / "uploads"

    def catch_up() -> None:
        with state.lock:  # searches wait for an index being caught up, never see half of it
            gallery.refresh_indexes()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if cfg is not None:
            state.jobs = IngestJobs(cfg, catch_up)
        yield
        if state.jobs is not None:
            state.jobs.close()

    app = FastAPI(title="prowl", version="1", docs_url=None, redoc_url=None, lifespan=lifespan)

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
            fetch_site = request.headers.get("sec-fetch-site")
            if (origin is not None and origin.split("://", 1)[-1] != host) or fetch_site in (
                "cross-site",
                "same-site",
            ):
                return error(403, "cross-site request refused")
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        if state.token is not None and request.query_params.get("token"):
            response.set_cookie("prowl_token", state.token, httponly=True, samesite="strict")
        return response

    def camera_options() -> str:
        cameras = sorted({v.camera_id for v in gallery.videos()})
        return "".join(
            f'<option value="{html.escape(c, quote=True)}">{html.escape(c)}</option>'
            for c in cameras
        )

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return static_page("search").replace("{{CAMERAS}}", camera_options())

    @app.get("/gallery", response_class=HTMLResponse)
    def gallery_page() -> str:
        return static_page("gallery")

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        found = static_file(name)
        if found is None:
            raise HTTPException(404, f"no file {name}")
        return Response(found[0], media_type=found[1], headers={"Cache-Control": "max-age=300"})

    # ------------------------------------------------------------------ the gallery
    @app.get("/api/videos")
    def videos() -> list[dict[str, Any]]:
        spans = gallery.video_spans()
        out = []
        for v in gallery.videos():
            n, lo, hi, statuses = spans.get(v.id, (0, None, None, []))
            out.append(
                {
                    "id": v.id,
                    "camera": v.camera_id,
                    "name": v.path.rsplit("/", 1)[-1],
                    "frames": v.frame_count,
                    "fps": v.fps,
                    "width": v.width_px,
                    "height": v.height_px,
                    "duration_s": round(v.frame_count / v.fps, 3) if v.fps else None,
                    "start_time": v.start_time,
                    "detections": n,
                    "first_s": lo,
                    "last_s": hi,
                    "runs": statuses,
                }
            )
        return out

    @app.get("/api/runs")
    def runs() -> list[dict[str, Any]]:
        return [
            {
                "id": r.id,
                "video_id": r.video_id,
                "video": v.path.rsplit("/", 1)[-1],
                "camera": v.camera_id,
                "detector": r.detector,
                "status": r.status,
                "frames_processed": r.frames_processed,
                "detections": r.detections_count,
                "error": r.error,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            }
            for r, v in gallery.runs()
        ]

    def video_row(video_id: Id) -> VideoRow:
        v = gallery.video(video_id)
        if v is None:
            raise HTTPException(404, f"no video {video_id}")
        return v

    @app.get("/api/videos/{video_id}/tracks")
    def tracks(video_id: Id) -> list[dict[str, Any]]:
        video_row(video_id)
        return [
            {
                "id": t.id,
                "first_s": round(t.first_s, 3),
                "last_s": round(t.last_s, 3),
                "first_frame": t.first_frame,
                "last_frame": t.last_frame,
                "detections": t.detections,
                "best_detection_id": t.best_detection_id,
                "thumbnail": f"/api/detections/{t.best_detection_id}/thumbnail",
            }
            for t in gallery.video_tracks(video_id)
        ]

    @app.get("/api/videos/{video_id}/frames/{frame_index}")
    def video_frame(video_id: Id, frame_index: Id) -> Response:
        """A stored video's frame, to pick a person from (boxes: the next endpoint)."""
        from pipeline.query import read_frame

        v = video_row(video_id)
        if not 0 <= frame_index < max(1, v.frame_count):
            raise HTTPException(404, f"video {video_id} has frames 0..{v.frame_count - 1}")
        try:
            image = read_frame(Path(v.path), frame_index)
        except ProwlError:
            raise HTTPException(404, "this frame of the source video is not available") from None
        return jpeg_response(image)

    @app.get("/api/videos/{video_id}/frames/{frame_index}/detections")
    def frame_detections(video_id: Id, frame_index: Id) -> list[dict[str, Any]]:
        video_row(video_id)
        return [
            {
                "detection_id": r.id,
                "box": [round(v, 1) for v in (r.x1, r.y1, r.x2, r.y2)],
                "score": round(r.score, 3),
                "track_id": r.track_id,
            }
            for r in gallery.frame_detections(video_id, frame_index)
        ]

    def jpeg_response(image: Any) -> Response:
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise HTTPException(500, "the frame could not be encoded")
        return Response(jpeg.tobytes(), media_type="image/jpeg")

    # ------------------------------------------------------------------ one sighting
    def detection_of(detection_id: Id) -> tuple[DetectionRow, VideoRow]:
        try:
            return gallery.detection(detection_id)
        except ProwlError:
            raise HTTPException(404, f"no detection {detection_id}") from None

    @app.get("/api/detections/{detection_id}/thumbnail")
    def thumbnail(detection_id: Id) -> Response:
        row, _video = detection_of(detection_id)
        return Response(
            row.thumbnail, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"}
        )

    @app.get("/api/detections/{detection_id}/frame")
    def frame(detection_id: Id) -> Response:
        """The full frame of a sighting with its box, decoded from the source video (found by
        the gallery's record of it, never by anything in the URL)."""
        from pipeline.query import read_frame

        row, video = detection_of(detection_id)
        try:
            image = read_frame(Path(video.path), row.frame_index).copy()
        except ProwlError:
            raise HTTPException(404, "the source video of this sighting is not available") from None
        x1, y1, x2, y2 = (round(v) for v in (row.x1, row.y1, row.x2, row.y2))
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 0, 255), 3)
        return jpeg_response(image)

    @app.get("/api/detections/{detection_id}/clip")
    def clip(detection_id: Id) -> FileResponse:
        """A few seconds around the sighting, its track boxed (WebM), cut on first request
        and cached; byte ranges are served (seeking in the page's player)."""
        from pipeline.clips import clip_path

        detection_of(detection_id)
        try:
            path = clip_path(gallery, detection_id)
        except ProwlError as exc:
            raise HTTPException(404, str(exc)) from None
        return FileResponse(
            path, media_type="video/webm", headers={"Cache-Control": "max-age=3600"}
        )

    # ------------------------------------------------------------------ search
    async def read_crop(image: UploadFile) -> Any:
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
        return np.asarray(crop, np.uint8)

    async def answer(
        image: UploadFile | None, q: QueryForm
    ) -> tuple[QueryResult, dict[str, Any], float]:
        detection_id, subject_id, k, by = q.detection_id, q.subject_id, q.k, q.by
        camera, video_id, from_s, to_s = q.camera, q.video_id, q.from_s, q.to_s
        min_similarity = q.min_similarity
        crops = [await read_crop(image)] if image is not None and image.filename else []
        marked = _ids(q.confirmed, "confirmed")
        refused = _ids(q.rejected, "rejected")
        if subject_id is not None:
            from storage.subjects import subject

            try:
                marked += list(subject(gallery, subject_id).detection_ids)
            except ProwlError:
                raise HTTPException(404, f"no subject {subject_id}") from None
        named = [*marked, *refused] + ([detection_id] if detection_id is not None else [])
        known = gallery.track_ids(named)  # one query for every id the request names
        missing = next((d for d in named if d not in known), None)
        if missing is not None:
            raise HTTPException(404, f"no detection {missing}")
        if not crops and detection_id is None and not marked:
            raise HTTPException(
                422, "give an image, a detection_id, a subject or confirmed sightings"
            )
        if from_s is not None and to_s is not None and to_s < from_s:
            raise HTTPException(422, "to_s is before from_s")
        videos: tuple[str, ...] = ()
        if video_id is not None:
            videos = (video_row(video_id).path,)
        asked = {
            "k": k,
            "by": by,
            "camera": camera,
            "video_id": video_id,
            "from_s": from_s,
            "to_s": to_s,
            "min_similarity": min_similarity,
            "detection_id": detection_id,
            "subject_id": subject_id,
            "confirmed": marked,
            "rejected": refused,
            "image": bool(crops),
        }
        try:
            if crops:
                check_crop(crops[0], "the uploaded image")
            filters = SearchFilters(
                cameras=(camera,) if camera else (),
                videos=videos,
                from_s=from_s,
                to_s=to_s,
                min_similarity=min_similarity,
            )
            with state.lock:
                if state.embedder is None and crops:
                    state.embedder = embedder_for(gallery, None)
                t = time.perf_counter()
                result = run_query(
                    gallery,
                    crops,
                    k,
                    filters,
                    by=by,
                    detection_id=detection_id,
                    loaded=state.embedder if crops else None,
                    confirmed=marked,
                    rejected=refused,
                )
                took = time.perf_counter() - t
        except ProwlError as exc:
            raise HTTPException(400, str(exc)) from None
        return result, asked, took

    @app.post("/api/search")
    async def search(
        q: Annotated[QueryForm, Form()],
        image: UploadFile | None = File(None),  # noqa: B008 - FastAPI's declaration style
    ) -> dict[str, Any]:
        """Search with an uploaded crop, a stored sighting (``detection_id``), a named subject,
        or confirmed sightings; ``rejected`` sightings are left out and look-alikes pushed
        down. Every combination goes through the CLI's ``run_query``."""
        result, _asked, took = await answer(image, q)
        return {
            "embedder": result.embedder,
            "seconds": took,
            "hits": [hit_json(h) for h in result.hits],
            "notes": result.notes,
        }

    @app.post("/api/export")
    async def export(
        q: Annotated[QueryForm, Form()],
        image: UploadFile | None = File(None),  # noqa: B008 - FastAPI's declaration style
    ) -> FileResponse:
        """The same search as /api/search, answered with the evidence zip
        (pipeline/evidence.py: hits CSV/JSON, crops, frames, clips, HTML summary, hashes);
        at most 200 hits (each brings its frame and, for the first 20, a clip)."""
        from pipeline.evidence import write_evidence

        if q.k > 200:
            raise HTTPException(422, "k: an evidence export holds at most 200 hits")
        result, asked, _took = await answer(image, q)
        tmp = Path(tempfile.mkdtemp(prefix="prowl-evidence-"))
        name = f"prowl-evidence-{time.strftime('%Y%m%d-%H%M%S')}.zip"
        path = write_evidence(gallery, result, tmp / name, asked)
        return FileResponse(
            path,
            media_type="application/zip",
            filename=name,
            background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
        )

    # ------------------------------------------------------------------ subjects
    @app.get("/api/subjects")
    def list_subjects() -> list[dict[str, Any]]:
        from storage.subjects import subjects

        return [{"id": i, "name": n, "sightings": c} for i, n, c in subjects(gallery)]

    @app.post("/api/subjects")
    def save_subject(
        name: str = Form(..., min_length=1, max_length=200),
        detection_ids: str = Form(..., max_length=20000),
        notes: str | None = Form(None, max_length=5000),
    ) -> dict[str, Any]:
        """Create the named subject from confirmed sightings, or add them to it."""
        from storage.subjects import save_subject

        ids = _ids(detection_ids, "detection_ids")
        try:
            subj = save_subject(gallery, name, ids, notes)
        except ProwlError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"id": subj.id, "name": subj.name, "detection_ids": list(subj.detection_ids)}

    @app.get("/api/subjects/{subject_id}")
    def get_subject(subject_id: Id) -> dict[str, Any]:
        from storage.subjects import subject

        try:
            subj = subject(gallery, subject_id)
        except ProwlError:
            raise HTTPException(404, f"no subject {subject_id}") from None
        return {
            "id": subj.id,
            "name": subj.name,
            "notes": subj.notes,
            "detection_ids": list(subj.detection_ids),
            "sightings": [
                hit_json(h) for h in gallery.hits([(1.0, d) for d in subj.detection_ids])
            ],
        }

    @app.delete("/api/subjects/{subject_id}")
    def delete_subject(subject_id: Id) -> dict[str, Any]:
        from storage.subjects import delete_subject

        try:
            delete_subject(gallery, subject_id)
        except ProwlError:
            raise HTTPException(404, f"no subject {subject_id}") from None
        return {"deleted": subject_id}

    # ------------------------------------------------------------------ ingest
    def jobs() -> IngestJobs:
        if state.jobs is None:
            raise HTTPException(403, "ingest from the page is off for this server")
        return state.jobs

    @app.get("/api/ingest/files")
    def ingest_files() -> dict[str, Any]:
        return {"roots": len(roots), "files": files_under(roots)}

    @app.post("/api/ingest")
    def ingest(
        file: str = Form(..., min_length=1, max_length=4096),
        camera: str | None = Form(None, max_length=200),
    ) -> dict[str, Any]:
        """Ingest a video file under a configured root (``--ingest-root``) in the background."""
        runner = jobs()
        try:
            path = under_roots(file, roots)
        except ProwlError as exc:
            raise HTTPException(403, str(exc)) from None
        return runner.submit(path, camera).public()

    @app.post("/api/ingest/upload")
    async def ingest_upload(
        video: UploadFile = File(...),  # noqa: B008 - FastAPI's declaration style
        camera: str | None = Form(None, max_length=200),
    ) -> dict[str, Any]:
        """Upload a video and ingest it in the background (kept under DATA_DIR/uploads)."""
        runner = jobs()
        name = Path(video.filename or "").name
        if Path(name).suffix.lower() not in VIDEO_SUFFIXES:
            raise HTTPException(415, f"upload a video file ({', '.join(VIDEO_SUFFIXES)})")
        uploads.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-120:]
        # a random prefix, not the upload time: a date in the name would be read as the
        # footage's own start time (pipeline/timeline.py)
        target = uploads / f"upload-{secrets.token_hex(4)}-{safe}"
        written = 0
        with open(target, "wb") as fh:
            while chunk := await video.read(1 << 20):
                written += len(chunk)
                if written > MAX_VIDEO_UPLOAD_BYTES:
                    fh.close()
                    target.unlink(missing_ok=True)
                    raise HTTPException(413, f"the video is over {MAX_VIDEO_UPLOAD_BYTES >> 30} GB")
                fh.write(chunk)
        from pipeline.video import probe

        try:
            probe(target)
        except ProwlError as exc:
            target.unlink(missing_ok=True)
            raise HTTPException(400, f"{name}: {exc}") from None
        return runner.submit(target, camera).public()

    @app.get("/api/jobs")
    def list_jobs() -> list[dict[str, Any]]:
        return state.jobs.list() if state.jobs is not None else []

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: Id) -> dict[str, Any]:
        job = state.jobs.get(job_id) if state.jobs is not None else None
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
