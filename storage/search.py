"""The read side of the gallery: filtered search, hits with their rows, and statistics.
``Gallery`` (storage/gallery.py) inherits it; the write side and the index upkeep live there."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pipeline.core.errors import QueryError
from storage.database import safe_url
from storage.index import INDEX_TYPE, VectorIndex
from storage.models import DetectionRow, EmbedderRow, RunRow, TrackRow, VideoRow


@dataclass(frozen=True)
class SearchFilters:
    cameras: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()
    from_s: float | None = None
    to_s: float | None = None
    min_similarity: float | None = None

    @property
    def restricts_rows(self) -> bool:
        return bool(self.cameras or self.videos or self.from_s is not None or self.to_s is not None)


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


def shown_status(status: str, live: bool) -> str:
    """A run's status as people should read it: "running" only while a process works on it."""
    return "interrupted" if status == "running" and not live else status


class GalleryReads:
    """Queries over a gallery's rows and index. Needs ``session``, ``index_for`` and
    ``index_path`` from the class that opens the gallery."""

    url: str

    def session(self) -> Session:
        raise NotImplementedError

    def index_for(self, embedder_id: int) -> VectorIndex:
        raise NotImplementedError

    def index_path(self, embedder_name: str) -> Path:
        raise NotImplementedError

    # ---------------------------------------------------------------- search
    def _allowed_ids(self, embedder_id: int, filters: SearchFilters) -> NDArray[np.int64]:
        with self.session() as s:
            q = (
                select(DetectionRow.id)
                .join(VideoRow, VideoRow.id == DetectionRow.video_id)
                .where(DetectionRow.embedder_id == embedder_id, DetectionRow.embedding.is_not(None))
            )
            if filters.cameras:
                known = set(s.scalars(select(VideoRow.camera_id).distinct()))
                unknown = [c for c in filters.cameras if c not in known]
                if unknown:
                    raise QueryError(
                        f"no camera {', '.join(unknown)} in the gallery; "
                        f"cameras: {', '.join(sorted(known))}"
                    )
                q = q.where(VideoRow.camera_id.in_(filters.cameras))
            if filters.videos:
                video_ids = resolve_videos(s, filters.videos)
                q = q.where(DetectionRow.video_id.in_(video_ids))
            if filters.from_s is not None:
                q = q.where(DetectionRow.timestamp_s >= filters.from_s)
            if filters.to_s is not None:
                q = q.where(DetectionRow.timestamp_s <= filters.to_s)
            return np.fromiter(s.scalars(q), dtype=np.int64)

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

    def video(self, video_id: int) -> VideoRow | None:
        with self.session() as s:
            return s.get(VideoRow, video_id)

    def video_spans(self) -> dict[int, tuple[int, float | None, float | None, list[str]]]:
        """Per video id: (detections, first and last sighting time in s, its runs' status)."""
        with self.session() as s:
            out: dict[int, tuple[int, float | None, float | None, list[str]]] = {
                int(vid): (int(n), lo, hi, [])
                for vid, n, lo, hi in s.execute(
                    select(
                        DetectionRow.video_id,
                        func.count(DetectionRow.id),
                        func.min(DetectionRow.timestamp_s),
                        func.max(DetectionRow.timestamp_s),
                    ).group_by(DetectionRow.video_id)
                )
            }
            runs = s.execute(select(RunRow.id, RunRow.video_id, RunRow.status)).all()
        live = self.live_runs()
        for rid, vid, status in runs:
            shown = shown_status(str(status), int(rid) in live)
            out.setdefault(int(vid), (0, None, None, []))[3].append(shown)
        return out

    def live_runs(self) -> set[int]:
        """Ids of the runs a working process is ingesting right now (storage/leases.py)."""
        from storage.leases import live_runs

        try:
            return live_runs(self)
        except SQLAlchemyError:  # a gallery from before leases, opened read-only
            return set()

    def runs(self) -> list[tuple[RunRow, VideoRow]]:
        """Every ingest run with its video, oldest first; a run whose process is gone shows
        status ``interrupted`` (resumable), one being worked on ``running``."""
        with self.session() as s:
            rows = [
                (r, v)
                for r, v in s.execute(
                    select(RunRow, VideoRow)
                    .join(VideoRow, VideoRow.id == RunRow.video_id)
                    .order_by(RunRow.id)
                ).tuples()
            ]
            for r, _v in rows:
                s.expunge(r)
        live = self.live_runs()
        for r, _v in rows:
            r.status = shown_status(r.status, r.id in live)
        return rows

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

    def videos(self) -> list[VideoRow]:
        """Every video of the gallery, oldest first (detached rows, for display)."""
        with self.session() as s:
            return list(s.scalars(select(VideoRow).order_by(VideoRow.id)))

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

    # ---------------------------------------------------------------- reporting
    def stats(self) -> dict[str, Any]:
        with self.session() as s:
            videos = []
            for v in s.scalars(select(VideoRow).order_by(VideoRow.id)):
                frames = (
                    s.scalar(
                        select(func.coalesce(func.sum(RunRow.frames_processed), 0)).where(
                            RunRow.video_id == v.id
                        )
                    )
                    or 0
                )
                dets = (
                    s.scalar(
                        select(func.count(DetectionRow.id)).where(DetectionRow.video_id == v.id)
                    )
                    or 0
                )
                runs = [
                    r.status if r.status == "complete" else f"incomplete({r.frames_processed})"
                    for r in s.scalars(select(RunRow).where(RunRow.video_id == v.id))
                ]
                videos.append(
                    {
                        "path": v.path,
                        "camera": v.camera_id,
                        "start_time": v.start_time,
                        "fps": v.fps,
                        "duration_s": v.frame_count / v.fps if v.fps else 0.0,
                        "frames": v.frame_count,
                        "frames_processed": int(frames),
                        "detections": int(dets),
                        "runs": runs,
                    }
                )
            total = s.scalar(select(func.count(DetectionRow.id))) or 0
            embedders = []
            for e in s.scalars(select(EmbedderRow).order_by(EmbedderRow.id)):
                n = (
                    s.scalar(
                        select(func.count(DetectionRow.id)).where(DetectionRow.embedder_id == e.id)
                    )
                    or 0
                )
                embedded = (
                    s.scalar(
                        select(func.count(DetectionRow.id)).where(
                            DetectionRow.embedder_id == e.id, DetectionRow.embedding.is_not(None)
                        )
                    )
                    or 0
                )
                tracks = (
                    s.scalar(select(func.count(TrackRow.id)).where(TrackRow.embedder_id == e.id))
                    or 0
                )
                path = self.index_path(e.name)
                embedders.append(
                    {
                        "name": e.name,
                        "dim": e.dim,
                        "weights": e.weights,
                        "weights_sha256": e.weights_sha256,
                        "detections": int(n),
                        "embedded": int(embedded),
                        "tracks": int(tracks),
                        "index_type": INDEX_TYPE,
                        "index_path": str(path),
                        "index_size": len(self.index_for(e.id)) if n else 0,
                    }
                )
        return {
            "database": safe_url(self.url),
            "videos": videos,
            "detections": int(total),
            "embedders": embedders,
        }

    def incomplete_runs(self, video_ids: Sequence[int] | None = None) -> list[str]:
        """One sentence per ingest run that has not finished (interrupted, killed, failed, or
        still running elsewhere), saying how far it got and how to finish it."""
        with self.session() as s:
            q = select(RunRow, VideoRow).join(VideoRow, VideoRow.id == RunRow.video_id)
            q = q.where(RunRow.status != "complete")
            if video_ids is not None:
                q = q.where(RunRow.video_id.in_(list(video_ids)))
            rows = s.execute(q.order_by(RunRow.id)).all()
        out = []
        live = self.live_runs()
        for run, video in rows:
            if run.id in live:
                out.append(
                    f"the ingest of {Path(video.path).name} [camera {video.camera_id}] is "
                    f"running now: {run.frames_processed} frames stored so far"
                )
                continue
            why = f" (stopped: {run.error})" if run.error else ""
            out.append(
                f"the ingest of {Path(video.path).name} [camera {video.camera_id}] is incomplete: "
                f"{run.frames_processed} frames stored, up to frame {run.next_frame} of "
                f"{video.frame_count}{why}; its tracks cover that part. Run the same "
                "`prowl ingest` command to finish it"
            )
        return out

    def track_count(self, run_id: int) -> int:
        with self.session() as s:
            return int(
                s.scalar(select(func.count(TrackRow.id)).where(TrackRow.run_id == run_id)) or 0
            )

    def detections_per_frame(self, video_id: int) -> dict[int, int]:
        with self.session() as s:
            return {
                int(f): int(n)
                for f, n in s.execute(
                    select(DetectionRow.frame_index, func.count(DetectionRow.id))
                    .where(DetectionRow.video_id == video_id)
                    .group_by(DetectionRow.frame_index)
                )
            }


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


def track_ids_of(s: Session, detection_ids: Sequence[int]) -> dict[int, int | None]:
    """Detection id -> its track (None: none), in chunks within every database's bind limit;
    ids no longer stored are absent."""
    out: dict[int, int | None] = {}
    ids = [int(d) for d in detection_ids]
    for start in range(0, len(ids), 10_000):
        rows = s.execute(
            select(DetectionRow.id, DetectionRow.track_id).where(
                DetectionRow.id.in_(ids[start : start + 10_000])
            )
        ).all()
        out.update((int(i), None if t is None else int(t)) for i, t in rows)
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
