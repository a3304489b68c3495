"""A search as the web app receives it: the form's fields, the uploaded crop (refused by its
header when too large) and the one ``QuerySpec`` it becomes, run under the server's lock."""

from __future__ import annotations

import io
import time
from typing import Any

import cv2
import numpy as np
from fastapi import HTTPException, UploadFile
from pydantic import BaseModel, Field

from cli.web_state import INT4_MAX, MAX_ID, ServerState, ids_of, video_row
from pipeline.core.errors import ProwlError, QueryError
from pipeline.query import QueryResult, embedder_for
from pipeline.query_input import check_crop
from pipeline.query_spec import QuerySpec
from storage.gallery import SearchFilters

IMAGE_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/webp")


class QueryForm(BaseModel):
    """The fields of a search (and of an evidence export: the same search, zipped)."""

    detection_id: int | None = Field(None, ge=1, le=MAX_ID)
    confirmed: str | None = Field(None, max_length=20000)  # detection ids, comma-separated
    rejected: str | None = Field(None, max_length=20000)
    subject_id: int | None = Field(None, ge=1, le=INT4_MAX)
    k: int | None = Field(None, ge=1, le=1000)  # None: the config's query.k
    by: str = Field("track", pattern="^(detection|track)$")  # appearances, as the CLI
    camera: str | None = Field(None, max_length=200)
    video_id: int | None = Field(None, ge=1, le=INT4_MAX)
    # a date-time, a time of day or +seconds from each video's start (as the CLI's --from)
    from_: str | None = Field(None, alias="from", max_length=64)
    to: str | None = Field(None, max_length=64)
    from_s: float | None = Field(None, ge=0, le=1e9)  # seconds from each video's start
    to_s: float | None = Field(None, ge=0, le=1e9)
    min_similarity: float | None = Field(None, ge=-1, le=1)
    strays: bool = False  # by track: also single boxes that fit no appearance
    per_camera: int = Field(0, ge=0, le=1000)  # at most this many answers per camera
    upper: str | None = Field(None, max_length=100)  # clothing colours, comma-separated
    lower: str | None = Field(None, max_length=100)
    other_cameras: bool = False  # leave out the query's own camera(s) and video(s)

    model_config = {"populate_by_name": True}


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
    case = None
    if q.subject_id is not None:
        from storage.subjects import subject

        try:
            saved = subject(gallery, q.subject_id)
        except ProwlError:
            raise HTTPException(404, f"no subject {q.subject_id}") from None
        marked += list(saved.detection_ids)
        case = saved.case()
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
                upper=_names(q.upper),
                lower=_names(q.lower),
            ),
            detection_id=q.detection_id,
            confirmed=tuple(marked),
            rejected=tuple(refused),
            strays=q.strays,
            rerank=defaults.rerank if defaults else False,
            expand=defaults.expand if defaults else 0,
            images=len(crops),
            window=(q.from_, q.to),
            per_camera=q.per_camera,
            other_cameras=q.other_cameras,
        ).check()
    except QueryError as exc:
        raise HTTPException(422, str(exc)) from None
    asked = {**q.model_dump(), "confirmed": marked, "rejected": refused, "image": bool(crops)}
    if case:
        asked["case"] = case
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


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(c.strip().lower() for c in (text or "").split(",") if c.strip())
