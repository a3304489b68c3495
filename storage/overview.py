"""The gallery's contents at a glance: its videos, their runs (with whether a process is working
on them now), counts and statistics. ``GalleryReads`` (storage/search.py) builds on it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from storage.database import safe_url
from storage.index import INDEX_TYPE, VectorIndex
from storage.models import DetectionRow, EmbedderRow, RunRow, TrackRow, VideoRow


def shown_status(status: str, live: bool) -> str:
    """A run's status as a user should read it: ``running`` only while a process holds it."""
    return "interrupted" if status == "running" and not live else status


class GalleryOverview:
    """Needs ``session``, ``index_for`` and ``index_path`` from the class that opens the
    gallery."""

    url: str

    def session(self) -> Session:
        raise NotImplementedError

    def index_for(self, embedder_id: int) -> VectorIndex:
        raise NotImplementedError

    def index_path(self, embedder_name: str) -> Path:
        raise NotImplementedError

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

    def videos(self) -> list[VideoRow]:
        """Every video of the gallery, oldest first (detached rows, for display)."""
        with self.session() as s:
            return list(s.scalars(select(VideoRow).order_by(VideoRow.id)))

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
