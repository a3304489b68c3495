"""Tracks: people followed through a video, one row per appearance. The rows of ``tracks``
and each detection's appearance are derived from the detections (and the tracker's own ids
kept beside them) when a run finishes, so they always agree with them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from pipeline.core.stitching import (
    Path,
    StitchSettings,
    Stray,
    Tracklet,
    fold,
    mean_direction,
    stitch,
)
from storage.models import DetectionRow, RunRow, TrackRow, VideoRow
from storage.search import cameras_of, hits, per_camera_cap, track_ids_of

# depth -> the (similarity, detection id) ranking of that many candidates, best first
Ranker = Callable[[int], Sequence[tuple[float, int]]]


def fill_raw_track_ids(s: Session, run_id: int) -> None:
    """Rows stored before stitching existed: their track id is the tracker's own."""
    s.execute(
        update(DetectionRow)
        .where(DetectionRow.run_id == run_id, DetectionRow.raw_track_id.is_(None))
        .values(raw_track_id=func.coalesce(DetectionRow.track_id, 0))
    )


def appearances(
    rows: Sequence[Any], settings: StitchSettings, fold_strays: bool = True
) -> dict[int, int]:
    """Detection id -> the appearance (stored track id) it belongs to, from the run's rows
    (id, raw_track_id, frame_index, timestamp_s, box, embedding): the tracker's fragments
    stitched, then stray boxes (no track, or a lone one-box track) folded into the
    appearance they fit; a stray that fits none is left out. A pure function of the rows,
    so a resumed, windowed or distributed run gets the same appearances as one straight run.
    ``fold_strays=False`` stops after stitching (every tracked box keeps its chain), which
    is how evaluation scores the two steps apart.
    """
    fragments: dict[int, list[Any]] = {}
    for r in rows:
        if r.raw_track_id:
            fragments.setdefault(int(r.raw_track_id), []).append(r)

    def box(r: Any) -> NDArray[np.float32]:
        return np.asarray((r.x1, r.y1, r.x2, r.y2), np.float32)

    def vec(r: Any) -> NDArray[np.float32]:
        return np.frombuffer(r.embedding, np.float32)

    tracklets = []
    for tid, members in fragments.items():
        members.sort(key=lambda r: r.frame_index)
        feature = mean_direction([vec(r) for r in members if r.embedding is not None])
        first, last = members[0], members[-1]
        tracklets.append(
            Tracklet(tid, first.timestamp_s, last.timestamp_s, box(first), box(last), feature)
        )
    chain = stitch(tracklets, settings)
    if not fold_strays:
        return {int(r.id): chain[int(r.raw_track_id)] for r in rows if r.raw_track_id}
    by_chain: dict[int, list[Any]] = {}
    for tid, members in fragments.items():
        by_chain.setdefault(chain[tid], []).extend(members)
    out: dict[int, int] = {}
    strays, paths = [], []
    for cid, members in by_chain.items():
        if len(members) == 1:
            continue
        members.sort(key=lambda r: r.frame_index)
        out.update((int(r.id), cid) for r in members)
        paths.append(
            Path(
                cid,
                np.asarray([r.timestamp_s for r in members], np.float64),
                np.stack([box(r) for r in members]),
                mean_direction([vec(r) for r in members if r.embedding is not None]),
            )
        )
    lone = {int(m[0].id): cid for cid, m in by_chain.items() if len(m) == 1}
    for r in rows:
        if not r.raw_track_id or int(r.id) in lone:
            feature = None if r.embedding is None else vec(r)
            strays.append(Stray(int(r.id), r.timestamp_s, box(r), feature))
    folded = fold(strays, paths, settings)
    for stray in strays:
        home = folded.get(stray.key, lone.get(stray.key))
        if home is not None:
            out[stray.key] = home
    return out


def rebuild_tracks(s: Session, run: RunRow) -> int:
    """Recompute the run's appearances from its detections (inside the caller's
    transaction): each detection's ``track_id`` from the tracker's ids, then one track row
    per appearance; returns how many."""
    fill_raw_track_ids(s, run.id)
    s.execute(delete(TrackRow).where(TrackRow.run_id == run.id))
    rows = s.execute(
        select(
            DetectionRow.id,
            DetectionRow.track_id,
            DetectionRow.raw_track_id,
            DetectionRow.frame_index,
            DetectionRow.timestamp_s,
            DetectionRow.x1,
            DetectionRow.y1,
            DetectionRow.x2,
            DetectionRow.y2,
            DetectionRow.score,
            DetectionRow.embedding,
            DetectionRow.predicted,
        )
        .where(DetectionRow.run_id == run.id)
        .order_by(DetectionRow.frame_index, DetectionRow.id)
    ).all()
    assigned = appearances(rows, StitchSettings())
    changes = [
        {"id": int(r.id), "track_id": assigned.get(int(r.id))}
        for r in rows
        if assigned.get(int(r.id)) != r.track_id
    ]
    if changes:
        s.execute(update(DetectionRow), changes)
    groups: dict[int, list[Any]] = {}
    for r in rows:
        tid = assigned.get(int(r.id))
        if tid is not None:
            groups.setdefault(tid, []).append(r)
    best_ids = {}
    new = []
    for tid, dets in groups.items():
        vecs = [np.frombuffer(d.embedding, np.float32) for d in dets if d.embedding is not None]
        pooled = mean_direction(vecs)
        # the track's picture is a detected box, never one the tracker predicted
        best = max(dets, key=lambda d: (not d.predicted, (d.x2 - d.x1) * (d.y2 - d.y1) * d.score))
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
                fragments=len({int(d.raw_track_id) for d in dets if d.raw_track_id}),
                pooled=None if pooled is None else pooled.tobytes(),
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
    upper_colours: str | None = None  # of the best sighting ("blue,black")
    lower_colours: str | None = None


def search_tracks(
    s: Session, ranker: Ranker, k: int, strays: bool = False, depth: int = 0, per_camera: int = 0
) -> tuple[list[TrackHit], int]:
    """The ``k`` appearances whose best-ranked sighting comes first in ``rank``'s order (the
    plain similarity ranking, or a re-ranked one): the detection ranking is asked deeper
    until ``k`` distinct appearances are found or it is exhausted. A single box that fits
    no appearance (no track, or a track of one box) is left out unless ``strays``; the
    second value counts those left out above the last row returned. ``depth``: how many
    sightings to read first (the query stage's one over-fetch rule; default 4k).
    ``per_camera``: at most that many appearances per camera (0: no cap)."""
    depth = depth or 4 * k
    while True:
        ranked = ranker(depth)
        track_of = track_ids_of(s, [i for _sim, i in ranked])  # ids only: thumbnails come later
        sizes = _track_sizes(s, {t for t in track_of.values() if t is not None})
        best: dict[object, tuple[float, int]] = {}
        skipped: list[int] = []  # positions in ``best`` order at which a stray was skipped
        for sim, ident in ranked:
            if ident not in track_of:  # deleted between the index search and this read
                continue
            tid = track_of[ident]
            # a track without a row yet (its run is still being ingested) counts as a track
            single = tid is None or sizes.get(tid, 2) <= 1
            key = tid if tid is not None else ("det", ident)
            if key in best:
                continue
            if single and not strays:
                skipped.append(len(best))
                continue
            best[key] = (sim, ident)
        if per_camera:
            chosen_ids = list(best.values())
            capped = set(
                per_camera_cap(chosen_ids, cameras_of(s, [i for _, i in chosen_ids]), per_camera)
            )
            best = {key: v for key, v in best.items() if v in capped}
        exhausted = len(ranked) < depth
        if len(best) >= k or exhausted:
            break
        depth *= 4
    hidden = sum(1 for position in skipped if position < k)
    chosen = hits(s, list(best.values())[:k])
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
                upper_colours=h.upper_colours,
                lower_colours=h.lower_colours,
            )
        )
    return out, hidden


def _track_sizes(s: Session, track_ids: set[int]) -> dict[int, int]:
    if not track_ids:
        return {}
    rows = s.execute(
        select(TrackRow.id, TrackRow.detections).where(TrackRow.id.in_(sorted(track_ids)))
    ).all()
    return {int(i): int(n) for i, n in rows}


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
