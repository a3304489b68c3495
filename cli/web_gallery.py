"""Pages, static files, and what the gallery holds: videos, runs, tracks, subjects."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Form, HTTPException
from fastapi.responses import HTMLResponse, Response

from cli.web_pages import page as static_page
from cli.web_pages import static_file
from cli.web_state import RowId, State, hit_json, ids_of, video_row
from pipeline.core.errors import ProwlError

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def search_page(state: State) -> str:
    cameras = sorted({v.camera_id for v in state.gallery.videos()})
    options = "".join(
        f'<option value="{html.escape(c, quote=True)}">{html.escape(c)}</option>' for c in cameras
    )
    k = state.query.k if state.query else 20
    return static_page("search").replace("{{CAMERAS}}", options).replace("{{K}}", str(int(k)))


FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" '
    'rx="6" fill="#1f2a36"/><circle cx="14" cy="14" r="7" fill="none" stroke="#cfe3ff" '
    'stroke-width="3"/><path d="M19 19l7 7" stroke="#cfe3ff" stroke-width="3"/></svg>'
)


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


@router.get("/gallery", response_class=HTMLResponse)
def gallery_page() -> str:
    return static_page("gallery")


@router.get("/static/{name}")
def static(name: str) -> Response:
    found = static_file(name)
    if found is None:
        raise HTTPException(404, f"no file {name}")
    return Response(found[0], media_type=found[1], headers={"Cache-Control": "max-age=300"})


@router.get("/api/videos")
def videos(state: State) -> list[dict[str, Any]]:
    gallery = state.gallery
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


@router.get("/api/runs")
def runs(state: State) -> list[dict[str, Any]]:
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
        for r, v in state.gallery.runs()
    ]


@router.get("/api/videos/{video_id}/tracks")
def tracks(video_id: RowId, state: State) -> list[dict[str, Any]]:
    video_row(state, video_id)
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
        for t in state.gallery.video_tracks(video_id)
    ]


# ---------------------------------------------------------------------- subjects
@router.get("/api/subjects")
def list_subjects(state: State) -> list[dict[str, Any]]:
    from storage.subjects import subjects_with_cases

    return [
        {"id": i, "name": n, "sightings": c, "case": case}
        for i, n, c, case in subjects_with_cases(state.gallery)
    ]


@router.post("/api/subjects")
def save_subject(
    state: State,
    name: str = Form(..., min_length=1, max_length=200),
    detection_ids: str = Form(..., max_length=20000),
    notes: str | None = Form(None, max_length=5000),
    case: str | None = Form(None, max_length=200),
    analyst: str | None = Form(None, max_length=200),
) -> dict[str, Any]:
    """Create the named subject from confirmed sightings, or add them to it; ``case`` and
    ``analyst`` go with it into every evidence export of the subject."""
    from storage.subjects import save_subject

    ids = ids_of(detection_ids, "detection_ids")
    try:
        subj = save_subject(state.gallery, name, ids, notes, case, analyst)
    except ProwlError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"id": subj.id, "name": subj.name, "detection_ids": list(subj.detection_ids)}


@router.get("/api/subjects/{subject_id}")
def get_subject(subject_id: RowId, state: State) -> dict[str, Any]:
    from storage.subjects import subject

    try:
        subj = subject(state.gallery, subject_id)
    except ProwlError:
        raise HTTPException(404, f"no subject {subject_id}") from None
    return {
        "id": subj.id,
        "name": subj.name,
        "notes": subj.notes,
        "case": subj.case_name,
        "analyst": subj.analyst,
        "detection_ids": list(subj.detection_ids),
        "sightings": [
            hit_json(h) for h in state.gallery.hits([(1.0, d) for d in subj.detection_ids])
        ],
    }


@router.patch("/api/subjects/{subject_id}")
def edit_subject(
    subject_id: RowId,
    state: State,
    name: str | None = Form(None, max_length=200),
    notes: str | None = Form(None, max_length=5000),
    case: str | None = Form(None, max_length=200),
    analyst: str | None = Form(None, max_length=200),
) -> dict[str, Any]:
    """Rename a subject or change its notes, case or analyst (a field left out: unchanged)."""
    from storage.subjects import update_subject

    try:
        subj = update_subject(state.gallery, subject_id, name, notes, case, analyst)
    except ProwlError as exc:
        status = 404 if "no subject" in str(exc) else 400
        raise HTTPException(status, str(exc)) from None
    return {"id": subj.id, "name": subj.name, "case": subj.case_name, "analyst": subj.analyst}


@router.delete("/api/subjects/{subject_id}")
def delete_subject(subject_id: RowId, state: State) -> dict[str, Any]:
    from storage.subjects import delete_subject

    try:
        delete_subject(state.gallery, subject_id)
    except ProwlError:
        raise HTTPException(404, f"no subject {subject_id}") from None
    return {"deleted": subject_id}
