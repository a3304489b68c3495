"""Ingest from the page: a video under an ``--ingest-root``, or an upload. An upload is
identified by its content, as `prowl ingest` identifies footage: the same file uploaded again
is the same video (kept once under DATA_DIR/uploads/HASH/NAME), its camera is the form's or
the original file name's, and a file that decodes to no frame is refused before anything is
stored."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from cli.web_jobs import VIDEO_SUFFIXES, IngestJobs, files_under, under_roots
from cli.web_state import RowId, ServerState, State
from pipeline.core.errors import ProwlError

router = APIRouter()


def jobs(state: ServerState) -> IngestJobs:
    if state.jobs is None:
        raise HTTPException(403, "ingest from the page is off for this server")
    return state.jobs


@router.get("/api/ingest/files")
def ingest_files(state: State) -> dict[str, Any]:
    return {"roots": len(state.roots), "files": files_under(state.roots)}


@router.post("/api/ingest")
def ingest(
    state: State,
    file: str = Form(..., min_length=1, max_length=4096),
    camera: str | None = Form(None, max_length=200),
) -> dict[str, Any]:
    """Ingest a video file under a configured root (``--ingest-root``) in the background."""
    runner = jobs(state)
    try:
        path = under_roots(file, state.roots)
    except ProwlError as exc:
        raise HTTPException(403, str(exc)) from None
    return runner.submit(path, camera).public()


def camera_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:200] or "upload"


@router.post("/api/ingest/upload")
def ingest_upload(
    state: State,
    video: UploadFile = File(...),  # noqa: B008 - FastAPI's declaration style
    camera: str | None = Form(None, max_length=200),
) -> dict[str, Any]:
    """Upload a video and ingest it in the background (kept under DATA_DIR/uploads)."""
    from pipeline.core.files import content_hash
    from pipeline.core.video import probe

    runner = jobs(state)
    name = Path(video.filename or "").name
    if Path(name).suffix.lower() not in VIDEO_SUFFIXES:
        raise HTTPException(415, f"upload a video file ({', '.join(VIDEO_SUFFIXES)})")
    state.uploads.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-120:]
    part = state.uploads / f".part-{secrets.token_hex(8)}{Path(safe).suffix}"
    try:
        with open(part, "wb") as fh:  # the body limit is enforced while it streams (Guard)
            shutil.copyfileobj(video.file, fh, 1 << 20)
        try:
            probe(part)
        except ProwlError:
            raise HTTPException(
                400, f"{name}: no frame of it can be decoded; not a usable video"
            ) from None
        digest = content_hash(part).split(":")[-1][:24]
        # kept under its own name (a recorder's file name may carry the recording's start)
        folder = state.uploads / digest
        kept = next(iter(sorted(folder.glob("*"))), None) if folder.is_dir() else None
        if kept is None:
            folder.mkdir(exist_ok=True)
            kept = folder / safe
            os.replace(part, kept)
    finally:
        part.unlink(missing_ok=True)
    known = [v for v in state.gallery.videos() if v.content_hash.split(":")[-1].startswith(digest)]
    chosen = camera or (known[0].camera_id if known else camera_name(Path(name).stem))
    return runner.submit(kept, chosen).public()


@router.get("/api/jobs")
def list_jobs(state: State) -> list[dict[str, Any]]:
    return state.jobs.list() if state.jobs is not None else []


@router.get("/api/jobs/{job_id}")
def get_job(job_id: RowId, state: State) -> dict[str, Any]:
    job = state.jobs.get(job_id) if state.jobs is not None else None
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job
