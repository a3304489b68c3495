"""Search and evidence export. Both go through the CLI's ``run_query``; the work (image
decoding, embedding, the index) runs in a worker thread with a worker slot, and an export is
a background job with progress, so the event loop stays free."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse

from cli.web_query import QueryForm, answer
from cli.web_state import RowId, State, answer_json

router = APIRouter()
IMAGE_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/webp")


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
    return answer_json(result, took)


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
                case=asked.get("case"),
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
