"""Search and evidence export. Both go through the CLI's ``run_query``; the work (image
decoding, embedding, the index) runs in a worker thread with a worker slot, and an export is
a background job with progress, so the event loop stays free."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from cli.web_state import INT4_MAX, MAX_ID, RowId, ServerState, State, hit_json, ids_of, video_row
from pipeline.core.errors import ProwlError, QueryError
from pipeline.query import QueryResult, embedder_for
from pipeline.query_input import check_crop
from pipeline.query_spec import QuerySpec
from storage.gallery import SearchFilters

router = APIRouter()
IMAGE_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/webp")


class QueryForm(BaseModel):
    """The fields of a search (and of an evidence export: the same search, zipped)."""

    detection_id: int | None = Field(None, ge=1, le=MAX_ID)
    confirmed: str | None = Field(None, max_length=20000)  # detection ids, comma-separated
    rejected: str | None = Field(None, max_length=20000)
    subject_id: int | None = Field(None, ge=1, le=INT4_MAX)
    k: int | None = Field(None, ge=1, le=1000)  # None: the config's query.k
    by: str = Field("detection", pattern="^(detection|track)$")
    camera: str | None = Field(None, max_length=200)
    video_id: int | None = Field(None, ge=1, le=INT4_MAX)
    from_s: float | None = Field(None, ge=0, le=1e9)
    to_s: float | None = Field(None, ge=0, le=1e9)
    min_similarity: float | None = Field(None, ge=-1, le=1)
    strays: bool = False  # by track: also single boxes that fit no appearance


def decode_upload(state: ServerState, image: UploadFile) -> np.ndarray[Any, Any]:
    """The uploaded query image, refused by its header before any pixel is decoded when it
    declares more than ``serve.max_image_megapixels`` (a small file can declare a huge
    picture and take gigabytes to decode)."""
    from PIL import Image

    settings = state.settings
    if image.content_type not in IMAGE_TYPES:
        raise HTTPException(415, f"upload a JPEG, PNG, BMP or WebP image, not {image.content_type}")
    limit = int(settings.max_image_mb * (1 << 20))
    data = image.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"the image is over {settings.max_image_mb:g} MB")
    most = f"at most {settings.max_image_megapixels:g} megapixels are accepted (crop or scale it)"
    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours
        raise HTTPException(413, f"the image declares a huge picture; {most}") from None
    except Exception:
        raise HTTPException(400, "the upload is not a readable image") from None
    if width * height > settings.max_image_megapixels * 1e6:
        raise HTTPException(413, f"the image is {width}x{height} pixels; {most}")
    crop = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if crop is None:
        raise HTTPException(400, "the upload is not a readable image")
    return np.asarray(crop, np.uint8)


def answer(
    state: ServerState, image: UploadFile | None, q: QueryForm
) -> tuple[QueryResult, dict[str, Any], float]:
    """The search the form asks for (run in a worker thread)."""
    gallery = state.gallery
    crops = [decode_upload(state, image)] if image is not None and image.filename else []
    marked = ids_of(q.confirmed, "confirmed")
    refused = ids_of(q.rejected, "rejected")
    if q.subject_id is not None:
        from storage.subjects import subject

        try:
            marked += list(subject(gallery, q.subject_id).detection_ids)
        except ProwlError:
            raise HTTPException(404, f"no subject {q.subject_id}") from None
    named = [*marked, *refused] + ([q.detection_id] if q.detection_id is not None else [])
    known = gallery.track_ids(named)  # one query for every id the request names
    missing = next((d for d in named if d not in known), None)
    if missing is not None:
        raise HTTPException(404, f"no detection {missing}")
    videos: tuple[str, ...] = ()
    if q.video_id is not None:
        videos = (video_row(state, q.video_id).path,)
    defaults = state.query
    try:
        spec = QuerySpec(
            k=q.k or (defaults.k if defaults else 20),
            by=q.by,
            filters=SearchFilters(
                cameras=(q.camera,) if q.camera else (),
                videos=videos,
                from_s=q.from_s,
                to_s=q.to_s,
                min_similarity=q.min_similarity,
            ),
            detection_id=q.detection_id,
            confirmed=tuple(marked),
            rejected=tuple(refused),
            strays=q.strays,
            rerank=defaults.rerank if defaults else False,
            expand=defaults.expand if defaults else 0,
            images=len(crops),
        ).check()
    except QueryError as exc:
        raise HTTPException(422, str(exc)) from None
    asked = {**q.model_dump(), "confirmed": marked, "rejected": refused, "image": bool(crops)}
    try:
        if crops:
            check_crop(crops[0], "the uploaded image")
        with state.lock:
            state.fresh()  # another process or a job may have added sightings
            if state.embedder is None and crops:
                state.embedder = embedder_for(gallery, None)
            t = time.perf_counter()
            result = spec.run(gallery, crops, loaded=state.embedder if crops else None)
            took = time.perf_counter() - t
    except ProwlError as exc:
        raise HTTPException(400, str(exc)) from None
    return result, asked, took


@router.post("/api/search")
def search(
    q: Annotated[QueryForm, Form()],
    state: State,
    image: UploadFile | None = File(None),  # noqa: B008 - FastAPI's declaration style
) -> dict[str, Any]:
    """Search with an uploaded crop, a stored sighting (``detection_id``), a named subject,
    or confirmed sightings; ``rejected`` sightings are left out and look-alikes pushed
    down. Every combination goes through the CLI's ``run_query``."""
    with state.worker():
        result, _asked, took = answer(state, image, q)
    return {
        "embedder": result.embedder,
        "seconds": took,
        "hits": [hit_json(h) for h in result.hits],
        "notes": result.notes,
    }


@router.post("/api/export", status_code=202)
def export(
    q: Annotated[QueryForm, Form()],
    state: State,
    image: UploadFile | None = File(None),  # noqa: B008 - FastAPI's declaration style
) -> dict[str, Any]:
    """The same search as /api/search, answered with a job that writes the evidence zip
    (pipeline/evidence.py: hits CSV/JSON, crops, frames, clips, HTML summary, hashes); poll
    ``/api/exports/ID`` for its progress, then fetch ``/api/exports/ID/zip``. At most 200
    hits (each brings its frame and, for the first 20, a clip)."""
    from pipeline.evidence import write_evidence

    if q.k is not None and q.k > 200:
        raise HTTPException(422, "k: an evidence export holds at most 200 hits")
    assert state.exports is not None
    with state.worker():
        result, asked, _took = answer(state, image, q)
    name = f"prowl-evidence-{time.strftime('%Y%m%d-%H%M%S')}.zip"

    def work(target: Path, progress: Any) -> Path:
        with state.worker(clip=True):
            return write_evidence(
                state.gallery,
                result,
                target,
                asked,
                progress=progress,
                clips_cache_bytes=state.clips_cache_bytes,
            )

    return state.exports.submit(name, work)


@router.get("/api/exports/{job_id}")
def export_status(job_id: RowId, state: State) -> dict[str, Any]:
    job = state.exports.get(job_id) if state.exports is not None else None
    if job is None:
        raise HTTPException(404, f"no export {job_id}")
    return job


@router.get("/api/exports/{job_id}/zip")
def export_zip(job_id: RowId, state: State) -> FileResponse:
    path = state.exports.path(job_id) if state.exports is not None else None
    if path is None:
        raise HTTPException(404, f"export {job_id} is not ready (see /api/exports/{job_id})")
    return FileResponse(path, media_type="application/zip", filename=path.name)
