"""The read side of the gallery: filtered search, hits with their rows, and statistics.
``Gallery`` (storage/gallery.py) inherits it; the write side and the index upkeep live there."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, and_, false, func, literal, or_, select
from sqlalchemy.orm import Session

from pipeline.core.errors import QueryError
from storage.models import DetectionRow, TrackRow, VideoRow
from storage.overview import GalleryOverview


@dataclass(frozen=True)
class SearchFilters:
    cameras: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()
    from_s: float | None = None  # seconds from each video's own start
    to_s: float | None = None
    min_similarity: float | None = None
    # a window on the one time axis (ISO 8601); videos with no known start are left out
    from_time: str | None = None
    to_time: str | None = None
    exclude_cameras: tuple[str, ...] = ()  # "other cameras only": the query's own camera(s)
    exclude_videos: tuple[int, ...] = ()
    upper: tuple[str, ...] = ()  # clothing colours (any of), pipeline.core.colours.PALETTE
    lower: tuple[str, ...] = ()

    @property
    def restricts_rows(self) -> bool:
        return bool(
            self.cameras
            or self.videos
            or self.from_s is not None
            or self.to_s is not None
            or self.from_time is not None
            or self.to_time is not None
            or self.exclude_cameras
            or self.exclude_videos
            or self.upper
            or self.lower
        )

    @property
    def by_colour(self) -> bool:
        return bool(self.upper or self.lower)

    @property
    def dated(self) -> bool:
        """Whether the window is on the time axis (date-times), not per-video offsets."""
        return self.from_time is not None or self.to_time is not None


@dataclass(frozen=True)
class Hit:
    rank: int
    similarity: float
    detection_id: int
    video_id: int
    video_path: str
    camera_id: str
    frame_index: int
    timestamp_s: float
    xyxy: tuple[float, float, float, float]
    score: float
    track_id: int | None
    thumbnail: bytes = field(repr=False)
    video_start: str | None = None  # ISO 8601 wall-clock time of the video's frame 0
    upper_colours: str | None = None  # "blue,black": clothing colours, most-voted first
    lower_colours: str | None = None


class GalleryReads(GalleryOverview):
    """Queries over a gallery's rows and index (search, hits, tracks, single detections)."""

    # ---------------------------------------------------------------- search
    def _allowed_ids(self, embedder_id: int, filters: SearchFilters) -> NDArray[np.int64]:
        with self.session() as s:
            q = (
                select(DetectionRow.id)
                .join(VideoRow, VideoRow.id == DetectionRow.video_id)
                .where(DetectionRow.embedder_id == embedder_id, DetectionRow.embedding.is_not(None))
                .where(*filter_conditions(s, filters))
            )
            return np.fromiter(s.scalars(q), dtype=np.int64)

    def attribute_matches(
        self, filters: SearchFilters
    ) -> list[tuple[int, int | None, float, int | None]]:
        """(detection id, track id, detector score, the track's sightings) of every sighting
        passing ``filters`` (the colour filters above all), stored vector or not."""
        with self.session() as s:
            q = (
                select(
                    DetectionRow.id, DetectionRow.track_id, DetectionRow.score, TrackRow.detections
                )
                .join(VideoRow, VideoRow.id == DetectionRow.video_id)
                .outerjoin(TrackRow, TrackRow.id == DetectionRow.track_id)
                .where(*filter_conditions(s, filters))
            )
            return [
                (int(i), None if t is None else int(t), float(sc), None if n is None else int(n))
                for i, t, sc, n in s.execute(q)
            ]

    def resolve_videos(self, names: Sequence[str]) -> list[int]:
        with self.session() as s:
            return resolve_videos(s, names)

    def rank(
        self,
        embedder_id: int,
        query: NDArray[np.float32],
        k: int,
        filters: SearchFilters | None = None,
    ) -> list[tuple[float, int]]:
        """(similarity, detection id) of the ``k`` most similar detections passing ``filters``:
        exactly ``k`` whenever the gallery holds that many above the similarity floor."""
        filters = filters or SearchFilters()
        allowed = self._allowed_ids(embedder_id, filters) if filters.restricts_rows else None
        if allowed is not None and len(allowed) == 0:
            return []
        sims, ids = self.index_for(embedder_id).search(query.reshape(1, -1), k, allowed)
        pairs = [(float(sv), int(i)) for sv, i in zip(sims[0], ids[0], strict=True) if i >= 0]
        if filters.min_similarity is not None:
            pairs = [(sv, i) for sv, i in pairs if sv >= filters.min_similarity]
        return pairs

    def search(
        self,
        embedder_id: int,
        query: NDArray[np.float32],
        k: int,
        filters: SearchFilters | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[Hit]:
        """``rank`` then ``hits``; ``timings`` receives search_s and fetch_s."""
        t0 = time.perf_counter()
        ranked = self.rank(embedder_id, query, k, filters)
        t1 = time.perf_counter()
        hits = self.hits(ranked)
        if timings is not None:
            timings["search_s"] = t1 - t0
            timings["fetch_s"] = time.perf_counter() - t1
        return hits

    def hits(self, ranked: Sequence[tuple[float, int]]) -> list[Hit]:
        with self.session() as s:
            return hits(s, ranked)

    def frame_detections(self, video_id: int, frame_index: int) -> list[DetectionRow]:
        with self.session() as s:
            return list(
                s.scalars(
                    select(DetectionRow)
                    .where(
                        DetectionRow.video_id == video_id, DetectionRow.frame_index == frame_index
                    )
                    .order_by(DetectionRow.id)
                )
            )

    def video_tracks(self, video_id: int) -> list[TrackRow]:
        """A video's tracks by the time they begin."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(TrackRow)
                    .where(TrackRow.video_id == video_id)
                    .order_by(TrackRow.first_s, TrackRow.id)
                )
            )

    def track_ids(self, detection_ids: Sequence[int]) -> dict[int, int | None]:
        """The track of each of these detections (None: not on a confirmed track)."""
        if not detection_ids:
            return {}
        with self.session() as s:
            return track_ids_of(s, detection_ids)

    def detection(self, detection_id: int) -> tuple[DetectionRow, VideoRow]:
        with self.session() as s:
            return detection(s, detection_id)

    def sample_person(
        self, camera_id: str, min_people: int = 3
    ) -> tuple[str, int, tuple[float, float, float, float]] | None:
        """(video path, frame index, box) of the most confident person in the middle one of
        the camera's frames that hold at least ``min_people``; None if there is none."""
        with self.session() as s:
            video = s.scalar(
                select(VideoRow).where(VideoRow.camera_id == camera_id).order_by(VideoRow.id)
            )
            if video is None:
                return None
            frames = list(
                s.scalars(
                    select(DetectionRow.frame_index)
                    .where(DetectionRow.video_id == video.id)
                    .group_by(DetectionRow.frame_index)
                    .having(func.count() >= min_people)
                    .order_by(DetectionRow.frame_index)
                )
            )
            if not frames:
                return None
            frame_index = frames[len(frames) // 2]
            det = s.scalars(
                select(DetectionRow)
                .where(DetectionRow.video_id == video.id, DetectionRow.frame_index == frame_index)
                .order_by(DetectionRow.score.desc())
            ).first()
            assert det is not None
            return video.path, frame_index, (det.x1, det.y1, det.x2, det.y2)


def filter_conditions(s: Session, filters: SearchFilters) -> list[ColumnElement[bool]]:
    """The SQL conditions of ``filters`` on detections joined with their videos; an unknown
    camera is a QueryError naming the known ones."""
    out: list[ColumnElement[bool]] = []
    if filters.cameras:
        known = set(s.scalars(select(VideoRow.camera_id).distinct()))
        unknown = [c for c in filters.cameras if c not in known]
        if unknown:
            raise QueryError(
                f"no camera {', '.join(unknown)} in the gallery; "
                f"cameras: {', '.join(sorted(known))}"
            )
        out.append(VideoRow.camera_id.in_(filters.cameras))
    if filters.videos:
        out.append(DetectionRow.video_id.in_(resolve_videos(s, filters.videos)))
    if filters.from_s is not None:
        out.append(DetectionRow.timestamp_s >= filters.from_s)
    if filters.to_s is not None:
        out.append(DetectionRow.timestamp_s <= filters.to_s)
    if filters.exclude_cameras:
        out.append(VideoRow.camera_id.not_in(filters.exclude_cameras))
    if filters.exclude_videos:
        out.append(DetectionRow.video_id.not_in(filters.exclude_videos))
    if filters.dated:
        out.append(dated_window(s, filters.from_time, filters.to_time))
    for column, names in (
        (DetectionRow.upper_colours, filters.upper),
        (DetectionRow.lower_colours, filters.lower),
    ):
        if names:  # any of the names among the sighting's colours ("blue,black")
            padded = literal(",") + column + literal(",")
            out.append(or_(*[padded.like(f"%,{n},%") for n in names]))
    return out


def dated_window(s: Session, from_time: str | None, to_time: str | None) -> ColumnElement[bool]:
    """The SQL condition for detections inside [from_time, to_time] on the time axis: for each
    video with a known start, its own window of offsets; videos without one never match."""
    from pipeline.core.timeline import as_labelled

    lo_at = datetime.fromisoformat(from_time) if from_time else None
    hi_at = datetime.fromisoformat(to_time) if to_time else None
    conditions = []
    for vid, start_iso in s.execute(select(VideoRow.id, VideoRow.start_time)).all():
        if not start_iso:
            continue
        start = datetime.fromisoformat(start_iso)
        cond = DetectionRow.video_id == vid
        if lo_at is not None:
            cond = and_(cond, DetectionRow.timestamp_s >= as_labelled(lo_at, start))
        if hi_at is not None:
            cond = and_(cond, DetectionRow.timestamp_s <= as_labelled(hi_at, start))
        conditions.append(cond)
    return or_(*conditions) if conditions else false()


def resolve_videos(s: Session, names: Sequence[str]) -> list[int]:
    """Video ids for paths or file names; QueryError naming any that is not stored."""
    videos = list(s.execute(select(VideoRow.id, VideoRow.path)).all())
    out = []
    for name in names:
        absolute = str(Path(name).resolve())
        match = [vid for vid, path in videos if path in (name, absolute)]
        if not match:  # a file name, or the same file reached by another path
            match = [vid for vid, path in videos if Path(path).name == Path(name).name]
        if not match:
            have = ", ".join(sorted({Path(p).name for _, p in videos})) or "none"
            raise QueryError(f"no video '{name}' in the gallery; videos: {have}")
        out.extend(match)
    return out


def _per_detection(s: Session, detection_ids: Sequence[int], q: Any) -> list[Any]:
    """Rows (detection id, value) of ``q`` (a select of DetectionRow.id and one column) for
    these ids, in chunks within every database's bind limit."""
    ids = [int(d) for d in detection_ids]
    rows: list[Any] = []
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        rows.extend(s.execute(q.where(DetectionRow.id.in_(chunk))).all())
    return rows


def track_ids_of(s: Session, detection_ids: Sequence[int]) -> dict[int, int | None]:
    """Detection id -> its track (None: none); ids no longer stored are absent."""
    q = select(DetectionRow.id, DetectionRow.track_id)
    return {int(i): None if t is None else int(t) for i, t in _per_detection(s, detection_ids, q)}


def cameras_of(s: Session, detection_ids: Sequence[int]) -> dict[int, str]:
    """Detection id -> the camera that saw it (ids no longer stored are absent)."""
    q = select(DetectionRow.id, VideoRow.camera_id).join(
        VideoRow, VideoRow.id == DetectionRow.video_id
    )
    return {int(i): str(c) for i, c in _per_detection(s, detection_ids, q)}


def per_camera_cap(
    ranked: Sequence[tuple[float, int]], camera: dict[int, str], n: int
) -> list[tuple[float, int]]:
    """``ranked`` with at most ``n`` entries per camera, in order (``n`` 0: all)."""
    if n <= 0:
        return list(ranked)
    seen: dict[str, int] = {}
    out = []
    for sim, i in ranked:
        cam = camera.get(i, "")
        if seen.get(cam, 0) < n:
            seen[cam] = seen.get(cam, 0) + 1
            out.append((sim, i))
    return out


def hits(s: Session, ranked: Sequence[tuple[float, int]]) -> list[Hit]:
    """Rows for (similarity, detection id) pairs, in the given order."""
    if not ranked:
        return []
    rows = {
        r.DetectionRow.id: r
        for r in s.execute(
            select(DetectionRow, VideoRow.path, VideoRow.camera_id, VideoRow.start_time)
            .join(VideoRow, VideoRow.id == DetectionRow.video_id)
            .where(DetectionRow.id.in_([i for _, i in ranked]))
        )
    }
    out = []
    for rank, (sim, ident) in enumerate(ranked, start=1):
        r = rows.get(ident)
        if r is None:  # deleted between the index search and this read
            continue
        d = r.DetectionRow
        out.append(
            Hit(
                rank=rank,
                similarity=sim,
                detection_id=d.id,
                video_id=d.video_id,
                video_path=r.path,
                camera_id=r.camera_id,
                frame_index=d.frame_index,
                timestamp_s=d.timestamp_s,
                xyxy=(d.x1, d.y1, d.x2, d.y2),
                score=d.score,
                track_id=d.track_id,
                thumbnail=d.thumbnail,
                video_start=r.start_time,
                upper_colours=d.upper_colours,
                lower_colours=d.lower_colours,
            )
        )
    return out


def detection(s: Session, detection_id: int) -> tuple[DetectionRow, VideoRow]:
    row = s.execute(
        select(DetectionRow, VideoRow)
        .join(VideoRow, VideoRow.id == DetectionRow.video_id)
        .where(DetectionRow.id == detection_id)
    ).first()
    if row is None:
        raise QueryError(
            f"no detection #{detection_id} in the gallery; take an id from a previous query's table"
        )
    return row[0], row[1]
