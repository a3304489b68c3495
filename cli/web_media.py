"""Pictures and clips: stored thumbnails, frames decoded from the source video (with the
stored boxes), and short clips around a sighting. Decoding and cutting take a worker slot;
clips also one of ``serve.clip_jobs`` slots, and their cache is capped."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import cv2
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response

from cli.web_state import DetectionId, FrameNumber, RowId, State, video_row
from pipeline.core.errors import ProwlError
from storage.models import DetectionRow, VideoRow

router = APIRouter()


def jpeg_response(image: Any) -> Response:
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise HTTPException(500, "the frame could not be encoded")
    return Response(jpeg.tobytes(), media_type="image/jpeg")


@router.get("/api/videos/{video_id}/frames/{frame_index}")
def video_frame(video_id: RowId, frame_index: FrameNumber, state: State) -> Response:
    """A stored video's frame, to pick a person from (boxes: the next endpoint)."""
    from pipeline.query_input import read_frame

    v = video_row(state, video_id)
    if not 0 <= frame_index < max(1, v.frame_count):
        raise HTTPException(404, f"video {video_id} has frames 0..{v.frame_count - 1}")
    with state.worker():
        try:
            image = read_frame(Path(v.path), frame_index)
        except ProwlError:
            raise HTTPException(404, "this frame of the source video is not available") from None
        return jpeg_response(image)


@router.get("/api/videos/{video_id}/frames/{frame_index}/detections")
def frame_detections(
    video_id: RowId, frame_index: FrameNumber, state: State
) -> list[dict[str, Any]]:
    video_row(state, video_id)
    return [
        {
            "detection_id": r.id,
            "box": [round(v, 1) for v in (r.x1, r.y1, r.x2, r.y2)],
            "score": round(r.score, 3),
            "track_id": r.track_id,
        }
        for r in state.gallery.frame_detections(video_id, frame_index)
    ]


def detection_of(state: State, detection_id: int) -> tuple[DetectionRow, VideoRow]:
    try:
        return state.gallery.detection(detection_id)
    except ProwlError:
        raise HTTPException(404, f"no detection {detection_id}") from None


@router.get("/api/detections/{detection_id}/thumbnail")
def thumbnail(detection_id: DetectionId, state: State) -> Response:
    row, _video = detection_of(state, detection_id)
    return Response(
        row.thumbnail, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"}
    )


@router.get("/api/detections/{detection_id}/frame")
def frame(detection_id: DetectionId, state: State) -> Response:
    """The full frame of a sighting with its box, decoded from the source video (found by
    the gallery's record of it, never by anything in the URL)."""
    from pipeline.query_input import read_frame

    row, video = detection_of(state, detection_id)
    with state.worker():
        try:
            image = read_frame(Path(video.path), row.frame_index).copy()
        except ProwlError:
            raise HTTPException(404, "the source video of this sighting is not available") from None
        x1, y1, x2, y2 = (round(v) for v in (row.x1, row.y1, row.x2, row.y2))
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 0, 255), 3)
        return jpeg_response(image)


@router.get("/api/detections/{detection_id}/clip")
def clip(
    detection_id: DetectionId,
    state: State,
    seconds: Annotated[float, Query(ge=0.5, le=30)] = 2.0,
    source: bool = False,
) -> FileResponse:
    """``seconds`` before and after the sighting, its track boxed (WebM), cut on first request
    and cached (only when it decodes completely); ``source``: at the video's own resolution
    (else at most 640 px wide). Byte ranges are served (seeking in the page's player)."""
    from pipeline.clips import MAX_WIDTH_PX, ClipError, clip_path

    detection_of(state, detection_id)
    with state.worker(clip=True):
        try:
            path = clip_path(
                state.gallery,
                detection_id,
                seconds=seconds,
                cache_bytes=state.clips_cache_bytes,
                max_width_px=None if source else MAX_WIDTH_PX,
            )
        except ClipError as exc:
            raise HTTPException(507, str(exc)) from None
        except ProwlError as exc:
            raise HTTPException(404, str(exc)) from None
    return FileResponse(path, media_type="video/webm", headers={"Cache-Control": "max-age=3600"})
