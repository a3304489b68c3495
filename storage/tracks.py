"""Tracks: people followed through a video. The rows of ``tracks`` are derived from the
detections when a run finishes, so they always agree with them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from storage.models import DetectionRow, RunRow, TrackRow, VideoRow
from storage.search import Hit, hits

# depth -> the (similarity, detection id) ranking of that many candidates, best first
Ranker = Callable[[int], Sequence[tuple[float, int]]]


def rebuild_tracks(s: Session, run: RunRow) -> int:
    """Recompute the run's track rows from its detections (inside the caller's transaction);
    returns how many."""
    s.execute(delete(TrackRow).where(TrackRow.run_id == run.id))
    rows = s.execute(
        select(
            DetectionRow.id,
            DetectionRow.track_id,
            DetectionRow.frame_index,
            DetectionRow.timestamp_s,
            DetectionRow.x1,
            DetectionRow.y1,
            DetectionRow.x2,
            DetectionRow.y2,
            DetectionRow.score,
            DetectionRow.embedding,
        )
        .where(DetectionRow.run_id == run.id, DetectionRow.track_id.is_not(None))
        .order_by(DetectionRow.track_id, DetectionRow.frame_index)
    ).all()
    groups: dict[int, list[Any]] = {}
    for r in rows:
        groups.setdefault(int(r.track_id), []).append(r)
    best_ids = {}
    new = []
    for tid, dets in groups.items():
        vecs = [np.frombuffer(d.embedding, np.float32) for d in dets if d.embedding is not None]
        pooled = None
        if vecs:
            mean = np.mean(vecs, axis=0)
            pooled = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32).tobytes()
        best = max(dets, key=lambda d: (d.x2 - d.x1) * (d.y2 - d.y1) * d.score)
        best_ids[tid] = best.id
        new.append(
            dict(
                id=tid,
                run_id=run.id,
                video_id=run.video_id,
                embedder_id=run.embedder_id,
                first_frame=dets[0].frame_index,
                last_frame=dets[-1].frame_index,
                first_s=dets[0].timestamp_s,
                last_s=dets[-1].timestamp_s,
                detections=len(dets),
                embedded=len(vecs),
                pooled=pooled,
                best_detection_id=best.id,
                thumbnail=b"",
            )
        )
    thumbs = dict(
        s.execute(
            select(DetectionRow.id, DetectionRow.thumbnail).where(
                DetectionRow.id.in_(list(best_ids.values()) or [-1])
            )
        ).all()
    )
    for t in new:
        t["thumbnail"] = thumbs[t["best_detection_id"]]
    if new:
        s.execute(insert(TrackRow), new)
    return len(new)


@dataclass(frozen=True)
class TrackHit:
    rank: int
    similarity: float  # best similarity of any of the track's embedded sightings
    track_id: int | None  # None: a detection the tracker did not keep
    camera_id: str
    video_path: str
    first_s: float
    last_s: float
    first_frame: int
    last_frame: int
    sightings: int
    best_detection_id: int  # the sighting that matched best
    best_xyxy: tuple[float, float, float, float]
    best_frame: int
    thumbnail: bytes = field(repr=False)
    video_start: str | None = None  # ISO 8601 wall-clock time of the video's frame 0


def search_tracks(s: Session, ranker: Ranker, k: int) -> list[TrackHit]:
    """The ``k`` tracks whose best-ranked sighting comes first in ``rank``'s order (the plain
    similarity ranking, or a re-ranked one): the detection ranking is asked deeper until
    ``k`` distinct tracks are found or it is exhausted."""
    depth = max(4 * k, 50)
    while True:
        ranked = ranker(depth)
        best: dict[object, Hit] = {}
        for h in hits(s, ranked):
            key = h.track_id if h.track_id is not None else ("det", h.detection_id)
            if key not in best:
                best[key] = h
        exhausted = len(ranked) < depth
        if len(best) >= k or exhausted:
            break
        depth *= 4
    chosen = list(best.values())[:k]
    track_ids = [h.track_id for h in chosen if h.track_id is not None]
    tracks = {
        t.id: t for t in s.scalars(select(TrackRow).where(TrackRow.id.in_(track_ids or [-1])))
    }
    out = []
    for rank, h in enumerate(chosen, start=1):
        t = tracks.get(h.track_id) if h.track_id is not None else None
        out.append(
            TrackHit(
                rank=rank,
                similarity=h.similarity,
                track_id=h.track_id,
                camera_id=h.camera_id,
                video_path=h.video_path,
                first_s=t.first_s if t else h.timestamp_s,
                last_s=t.last_s if t else h.timestamp_s,
                first_frame=t.first_frame if t else h.frame_index,
                last_frame=t.last_frame if t else h.frame_index,
                sightings=t.detections if t else 1,
                best_detection_id=h.detection_id,
                best_xyxy=h.xyxy,
                best_frame=h.frame_index,
                thumbnail=t.thumbnail if t else h.thumbnail,
                video_start=h.video_start,
            )
        )
    return out


def tracks_of_video(s: Session, video_ids: Sequence[int]) -> list[tuple[TrackRow, VideoRow]]:
    return [
        (t, v)
        for t, v in s.execute(
            select(TrackRow, VideoRow)
            .join(VideoRow, VideoRow.id == TrackRow.video_id)
            .where(TrackRow.video_id.in_(list(video_ids)))
            .order_by(TrackRow.first_s, TrackRow.id)
        ).all()
    ]


def track_boxes(s: Session, track_id: int) -> list[tuple[int, float, float, float, float, float]]:
    rows = s.execute(
        select(
            DetectionRow.frame_index,
            DetectionRow.x1,
            DetectionRow.y1,
            DetectionRow.x2,
            DetectionRow.y2,
            DetectionRow.score,
        )
        .where(DetectionRow.track_id == track_id)
        .order_by(DetectionRow.frame_index)
    ).all()
    return [(int(f), float(a), float(b), float(c), float(d), float(e)) for f, a, b, c, d, e in rows]


def tracked_boxes(
    s: Session, video_id: int
) -> list[tuple[int, int, float, float, float, float, float]]:
    """(frame index, track id, x1, y1, x2, y2, score) of a video's tracked detections, in
    frame then track order."""
    rows = s.execute(
        select(
            DetectionRow.frame_index,
            DetectionRow.track_id,
            DetectionRow.x1,
            DetectionRow.y1,
            DetectionRow.x2,
            DetectionRow.y2,
            DetectionRow.score,
        )
        .where(DetectionRow.video_id == video_id, DetectionRow.track_id.is_not(None))
        .order_by(DetectionRow.frame_index, DetectionRow.track_id)
    ).all()
    return [
        (int(f), int(t or 0), float(a), float(b), float(c), float(d), float(e))
        for f, t, a, b, c, d, e in rows
    ]


def video_paths(s: Session) -> dict[int, str]:
    """Every stored video's id and path."""
    return {int(i): str(p) for i, p in s.execute(select(VideoRow.id, VideoRow.path)).all()}


def track_crops(s: Session, min_sightings: int) -> list[list[tuple[int, bytes]]]:
    """(frame index, JPEG thumbnail) of every box of each track with at least
    ``min_sightings`` boxes, in frame order; tracks in id order."""
    ids = list(
        s.scalars(
            select(TrackRow.id).where(TrackRow.detections >= min_sightings).order_by(TrackRow.id)
        )
    )
    out = []
    for tid in ids:
        rows = s.execute(
            select(DetectionRow.frame_index, DetectionRow.thumbnail)
            .where(DetectionRow.track_id == tid)
            .order_by(DetectionRow.frame_index)
        ).all()
        out.append([(int(f), bytes(t)) for f, t in rows])
    return out


def track_spans(s: Session, min_sightings: int) -> list[tuple[int, int, int]]:
    """(video id, first frame, last frame) of the same tracks as ``track_crops``, same order."""
    return [
        (int(v), int(a), int(b))
        for v, a, b in s.execute(
            select(TrackRow.video_id, TrackRow.first_frame, TrackRow.last_frame)
            .where(TrackRow.detections >= min_sightings)
            .order_by(TrackRow.id)
        ).all()
    ]
