"""A stored frame with its boxes and their detection ids drawn, so that a terminal user can
pick an id for `prowl query --detection ID` (`prowl frame`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select

from pipeline.core.errors import QueryError
from pipeline.core.timeline import as_labelled, parse_when, shown
from pipeline.query_input import read_frame
from pipeline.query_spec import covered_days
from storage.gallery import Gallery
from storage.models import DetectionRow, VideoRow
from storage.search import resolve_videos

NEAR_S = 1.0  # how far from the asked moment a frame with stored boxes may be


@dataclass(frozen=True)
class FrameView:
    image: NDArray[np.uint8]  # the frame with boxes and ids drawn
    video: str
    frame_index: int
    time: str  # the frame's time (of day when known)
    boxes: list[
        tuple[int, int | None, tuple[float, float, float, float], float]
    ]  # id, track, box, score


def frame_view(gallery: Gallery, video: str, when: str | None, frame: int | None) -> FrameView:
    """The frame of ``video`` at ``when`` (a date-time, a time of day or seconds from its
    start; see parse_when) or at index ``frame``: the nearest frame with stored boxes within
    NEAR_S seconds of it."""
    with gallery.session() as s:
        (vid,) = resolve_videos(s, [video])[:1]
        row = s.get(VideoRow, vid)
        assert row is not None
        fps = row.fps or 25.0
        if frame is None:
            if when is None:
                raise QueryError("say which frame: a time (WHEN) or --frame N")
            moment = parse_when(when)
            if moment.offset_s is not None:
                offset = moment.offset_s
            else:
                if not row.start_time:
                    raise QueryError(
                        f"{Path(row.path).name} has no known start time; give seconds from "
                        "its start (e.g. 12.5 or +0:12)"
                    )
                days = covered_days([(row.start_time, row.frame_count / fps)])
                at = moment.on_day(days)
                assert at is not None
                offset = as_labelled(at, datetime.fromisoformat(row.start_time))
            frame = round(offset * fps)
        near = s.execute(
            select(DetectionRow.frame_index)
            .where(DetectionRow.video_id == vid)
            .order_by(func.abs(DetectionRow.frame_index - frame))
            .limit(1)
        ).scalar()
        if near is None or abs(near - frame) > NEAR_S * fps:
            raise QueryError(
                f"no stored boxes within {NEAR_S:g} s of frame {frame} of {Path(row.path).name}"
                " (nobody there, or that part is not ingested)"
            )
        dets = list(
            s.scalars(
                select(DetectionRow)
                .where(DetectionRow.video_id == vid, DetectionRow.frame_index == near)
                .order_by(DetectionRow.x1)
            )
        )
        path, start = row.path, row.start_time
        boxes = [(d.id, d.track_id, (d.x1, d.y1, d.x2, d.y2), d.score) for d in dets]
    image = read_frame(Path(path), near).copy()
    thick = max(2, image.shape[1] // 400)
    for det_id, track, (x1, y1, x2, y2), _score in boxes:
        colour = _colour(track)
        p1, p2 = (round(x1), round(y1)), (round(x2), round(y2))
        cv2.rectangle(image, p1, p2, colour, thick)
        label = f"#{det_id}"
        scale = max(0.5, image.shape[1] / 1600)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(th + 4, p1[1])
        cv2.rectangle(image, (p1[0], top - th - 4), (p1[0] + tw + 4, top), colour, -1)
        cv2.putText(
            image, label, (p1[0] + 2, top - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1
        )
    return FrameView(image, Path(path).name, near, shown(start, near / fps), boxes)


def _colour(track: int | None) -> tuple[int, int, int]:
    """A bright colour per track (grey for boxes on no track)."""
    if track is None:
        return (200, 200, 200)
    hue = (track * 47) % 180
    hsv = np.asarray([[[hue, 200, 255]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)
