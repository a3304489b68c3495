"""The gallery: SQL rows (the truth) plus one FAISS index per embedder (a cache).

Write order is always: database transaction commits, then the vectors go into the index,
and the index file is saved atomically at the end of a run (and on a graceful stop). When a
gallery is opened for search, each index is compared with the rows and repaired: vectors
missing from the index are added from the rows, vectors without a row are dropped.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pipeline.core.files import source_size_bytes
from storage.database import bump_version, wipe
from storage.embedders import GalleryEmbedders
from storage.models import DetectionRow, EmbedderRow, RunRow, TrackRow, VideoRow
from storage.search import Hit, SearchFilters
from storage.tracks import rebuild_tracks

__all__ = ["Gallery", "Hit", "NewDetection", "SearchFilters", "wipe"]  # wipe: re-exported

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewDetection:
    frame_index: int
    timestamp_s: float
    xyxy: tuple[float, float, float, float]
    score: float
    embedding: NDArray[np.float32] | None  # None: the tracking cadence skipped this crop
    thumbnail: bytes
    track_id: int | None = None
    colours: tuple[str | None, str | None] = (None, None)  # upper, lower ("blue,black")
    predicted: bool = False  # the tracker's box on a frame the detector skipped


def detection_rows(run: RunRow, detections: Sequence[NewDetection]) -> list[dict[str, Any]]:
    """Insert parameters of a run's new detections."""
    return [
        {
            "run_id": run.id,
            "video_id": run.video_id,
            "embedder_id": run.embedder_id,
            "frame_index": d.frame_index,
            "timestamp_s": d.timestamp_s,
            "x1": d.xyxy[0],
            "y1": d.xyxy[1],
            "x2": d.xyxy[2],
            "y2": d.xyxy[3],
            "score": d.score,
            "track_id": d.track_id,
            "raw_track_id": d.track_id or 0,
            "embedding": None
            if d.embedding is None
            else np.ascontiguousarray(d.embedding, np.float32).tobytes(),
            "thumbnail": d.thumbnail,
            "upper_colours": d.colours[0],
            "lower_colours": d.colours[1],
            "predicted": True if d.predicted else None,
        }
        for d in detections
    ]


class Gallery(GalleryEmbedders):
    """The gallery at ``url`` (created unless ``must_exist``), write side: embedders, videos,
    ingest runs and their committed frames. Reads and the index upkeep come from the bases."""

    def upsert_video(
        self,
        path: Path | str,
        content_hash: str,
        camera_id: str,
        fps: float,
        width_px: int,
        height_px: int,
        frame_count: int,
        start_time: str | None = None,
        given: bool = False,
    ) -> VideoRow:
        """The video's row, created on first sight. ``start_time`` (ISO 8601 wall-clock time
        of frame 0) is recorded when none is; ``given`` (the user said so) replaces one."""
        for attempt in range(2):
            try:
                return self._upsert_video_once(
                    path,
                    content_hash,
                    camera_id,
                    fps,
                    width_px,
                    height_px,
                    frame_count,
                    start_time,
                    given,
                )
            except IntegrityError:  # the same footage registered by a concurrent ingest
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _upsert_video_once(
        self, path: Path | str, content_hash: str, camera_id: str, *meta: Any
    ) -> VideoRow:
        fps, width_px, height_px, frame_count, start_time, given = meta
        with self.session() as s, s.begin():
            row = s.scalar(
                select(VideoRow).where(
                    VideoRow.content_hash == content_hash, VideoRow.camera_id == camera_id
                )
            )
            if row is None:
                row = VideoRow(
                    path=str(path),
                    content_hash=content_hash,
                    camera_id=camera_id,
                    fps=fps,
                    width_px=width_px,
                    height_px=height_px,
                    frame_count=frame_count,
                    size_bytes=source_size_bytes(Path(path)),  # 0 for a stream's URL
                    start_time=start_time,
                )
                s.add(row)
                s.flush()
                return row
            if row.path != str(path):
                row.path = str(path)  # the same footage moved: keep its rows, follow the file
            if start_time is not None and (given or row.start_time is None):
                row.start_time = start_time
            return row

    def refresh_video(self, video: VideoRow, frame_count: int, size_bytes: int) -> None:
        """Record that a source (an image folder) now holds other frames."""
        with self.session() as s, s.begin():
            s.execute(
                update(VideoRow)
                .where(VideoRow.id == video.id)
                .values(frame_count=frame_count, size_bytes=size_bytes)
            )
        video.frame_count, video.size_bytes = frame_count, size_bytes

    # ---------------------------------------------------------------- ingest runs
    def find_run(self, video_id: int, settings_key: str) -> RunRow | None:
        """The video's run with these settings. A run of an older prowl, whose key also held
        its time window (``...;start=S;end=E``), is adopted under the new key."""
        with self.session() as s, s.begin():
            run = s.scalar(  # the oldest, should two processes have started one at once
                select(RunRow)
                .where(RunRow.video_id == video_id, RunRow.settings_key == settings_key)
                .order_by(RunRow.id)
            )
            if run is not None:
                return run
            legacy = s.scalar(
                select(RunRow)
                .where(
                    RunRow.video_id == video_id,
                    RunRow.settings_key.startswith(settings_key + ";start=", autoescape=True),
                )
                .order_by(RunRow.id)
            )
            if legacy is not None:
                start = legacy.settings_key.rsplit(";start=", 1)[1].split(";", 1)[0]
                video = s.get(VideoRow, video_id)
                fps = video.fps if video is not None else 25.0
                first = 0 if start == "None" else math.ceil(float(start) * fps - 1e-9)
                done = [[first, legacy.next_frame]] if legacy.next_frame > first else []
                legacy.settings_key = settings_key
                legacy.done_ranges = json.dumps(done)
            return legacy

    def start_run(
        self, video: VideoRow, embedder: EmbedderRow, detector: str, settings_key: str, stride: int
    ) -> RunRow:
        with self.session() as s, s.begin():
            run = RunRow(
                video_id=video.id,
                embedder_id=embedder.id,
                detector=detector,
                settings_key=settings_key,
                stride=stride,
                status="running",
                next_frame=0,
                frames_processed=0,
                detections_count=0,
            )
            s.add(run)
            s.flush()
            return run

    def reset_run(self, run: RunRow) -> None:
        """Drop a run's detections (rows, then vectors) so it can be ingested again cleanly."""
        # Load (and reconcile) the index while it still agrees with the rows; loaded after the
        # delete, it would report a false "repair" of the vectors removed here on purpose.
        index = self.index_for(run.embedder_id)
        with self.session() as s, s.begin():
            ids = np.fromiter(
                s.scalars(select(DetectionRow.id).where(DetectionRow.run_id == run.id)),
                dtype=np.int64,
            )
            s.execute(delete(TrackRow).where(TrackRow.run_id == run.id))
            s.execute(delete(DetectionRow).where(DetectionRow.run_id == run.id))
            bump_version(s)
            s.execute(
                update(RunRow)
                .where(RunRow.id == run.id)
                .values(
                    status="running",
                    next_frame=0,
                    frames_processed=0,
                    detections_count=0,
                    embedded_count=0,
                    next_track_id=1,
                    tracker_state=None,
                    error=None,
                    done_ranges=None,
                    started_at=datetime.now(UTC),
                    finished_at=None,
                )
            )
        if len(ids):
            index.remove(ids)
            self._dirty.add(run.embedder_id)
        run.status, run.next_frame, run.frames_processed, run.detections_count = "running", 0, 0, 0
        run.embedded_count, run.next_track_id, run.tracker_state = 0, 1, None
        run.done_ranges = None

    def commit_frames(
        self,
        run: RunRow,
        detections: Sequence[NewDetection],
        next_frame: int,
        frames_processed: int,
        next_track_id: int | None = None,
        tracker_state: str | None = None,
        done_ranges: str | None = None,
    ) -> NDArray[np.int64]:
        """One transaction: the detections of whole frames plus the run's resume point. The
        vectors enter the index only after the commit. Returns the new primary keys."""
        rows = detection_rows(run, detections)
        # Load (and reconcile) the index before the rows exist, or they would be added twice.
        index = self.index_for(run.embedder_id)
        with self.session() as s, s.begin():
            ids: list[int] = []
            if rows:
                stmt = insert(DetectionRow).returning(DetectionRow.id, sort_by_parameter_order=True)
                ids = [r[0] for r in s.execute(stmt, rows)]
            n_embedded = sum(d.embedding is not None for d in detections)
            values: dict[str, Any] = {
                "next_frame": next_frame,
                "frames_processed": frames_processed,
                "detections_count": RunRow.detections_count + len(rows),
                "embedded_count": RunRow.embedded_count + n_embedded,
            }
            if next_track_id is not None:
                values["next_track_id"] = next_track_id
            if tracker_state is not None:
                values["tracker_state"] = tracker_state
            if done_ranges is not None:
                values["done_ranges"] = done_ranges
            s.execute(update(RunRow).where(RunRow.id == run.id).values(**values))
            bump_version(s)
        id_arr = np.asarray(ids, dtype=np.int64)
        embedded = [k for k, d in enumerate(detections) if d.embedding is not None]
        if embedded:
            vecs = np.stack([detections[k].embedding for k in embedded]).astype(np.float32)  # type: ignore[misc]
            index.add(id_arr[embedded], vecs)
            self._dirty.add(run.embedder_id)
        run.next_frame = next_frame
        run.frames_processed = frames_processed
        run.detections_count += len(rows)
        run.embedded_count += len(embedded)
        if next_track_id is not None:
            run.next_track_id = next_track_id
        if tracker_state is not None:
            run.tracker_state = tracker_state
        if done_ranges is not None:
            run.done_ranges = done_ranges
        return id_arr

    def set_done_ranges(self, run: RunRow, done_ranges: str) -> None:
        """Record frames as done that produced no rows (a window's tail past its last kept
        frame, or past the source's end)."""
        with self.session() as s, s.begin():
            s.execute(update(RunRow).where(RunRow.id == run.id).values(done_ranges=done_ranges))
        run.done_ranges = done_ranges

    def abandon_run(self, run: RunRow, why: str, drop: bool) -> None:
        """After a failed ingest: ``drop`` removes a run that committed nothing (and its video
        row when no other run uses it); otherwise the run keeps its rows and resume point and
        records ``why``. Never raises: the caller is already reporting the first error."""
        try:
            with self.session() as s, s.begin():
                if drop:
                    s.execute(delete(TrackRow).where(TrackRow.run_id == run.id))
                    s.execute(delete(DetectionRow).where(DetectionRow.run_id == run.id))
                    s.execute(delete(RunRow).where(RunRow.id == run.id))
                    others = s.scalar(
                        select(func.count(RunRow.id)).where(RunRow.video_id == run.video_id)
                    )
                    if not others:
                        s.execute(delete(VideoRow).where(VideoRow.id == run.video_id))
                    bump_version(s)
                else:
                    s.execute(update(RunRow).where(RunRow.id == run.id).values(error=why))
                    rebuild_tracks(s, run)
        except Exception as exc:  # the database itself may be what failed
            log.debug("could not record the failed run %s: %s", run.id, exc)
        run.error = why

    def rebuild_run_tracks(self, run: RunRow) -> int:
        """Tracks of what a run has committed so far (an interrupted run shows its people)."""
        with self.session() as s, s.begin():
            return rebuild_tracks(s, run)

    def finish_run(self, run: RunRow) -> None:
        with self.session() as s, s.begin():
            s.execute(
                update(RunRow)
                .where(RunRow.id == run.id)
                .values(status="complete", error=None, finished_at=datetime.now(UTC))
            )
        run.status = "complete"
        with self.session() as s, s.begin():
            rebuild_tracks(s, run)
            bump_version(s)
        self.save_indexes()
