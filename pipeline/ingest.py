"""Ingest: the stages composed in one place.

    read_frames ─ prefetch (reader thread) ─ batched ─ Detector.detect ─ crop + thumbnail
      ─ Embedder.embed (crops accumulated across frames) ─ Gallery.commit_frames (whole frames
      per transaction, with the resume point) ─ FAISS index (after the commit)

Memory is bounded by the prefetch queue, one detector batch, one embedder batch of crops and
one transaction's worth of finished rows (embeddings and JPEG thumbnails, no frames).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from detectors import Detector
from pipeline.assets import sha256_of
from pipeline.config import Config
from pipeline.crops import crop_boxes, encode_jpeg
from pipeline.errors import ProwlError, SourceError
from pipeline.stream import batched, prefetch
from pipeline.tracking import ByteTracker, EmbedCadence, TrackerConfig
from pipeline.types import Detections, Frame
from pipeline.video import (
    DecodeReport,
    camera_id_for,
    content_hash,
    probe,
    read_frames,
    source_size_bytes,
)
from reid import Embedder
from reid.batching import CropBatcher
from storage.gallery import Gallery, NewDetection
from storage.models import RunRow

log = logging.getLogger(__name__)


class IngestInterrupted(ProwlError):
    """Raised after a graceful stop: everything processed so far is committed."""


@dataclass
class IngestSummary:
    video: str
    camera_id: str
    status: str  # complete | skipped | interrupted
    frames_read: int = 0
    frames_processed: int = 0
    detections: int = 0
    embedded: int = 0
    tracks: int = 0
    resumed_from_frame: int = 0
    elapsed_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)
    frames_lost: bool = False
    lost_from_frame: int = 0  # with frames_lost: decoding stopped here ...
    frames_announced: int = 0  # ... of this many frames the file announces
    unreadable: list[str] = field(default_factory=list)  # image files of a folder skipped

    @property
    def frames_per_s(self) -> float:
        return self.frames_processed / self.elapsed_s if self.elapsed_s > 0 else 0.0


def settings_key(cfg: Config, detector_name: str, embedder_name: str) -> str:
    """The settings that shape a video's detections: same key = same rows."""
    d, v = cfg.detector, cfg.video
    return (
        f"det={detector_name};imgsz={d.imgsz_px};conf={d.conf};iou={d.iou};"
        f"reid={embedder_name};stride={v.stride};start={v.start_s};end={v.end_s}"
    )


@dataclass
class _Pending:
    """Finished work of one frame, waiting for its transaction."""

    frame: Frame
    detections: Detections
    thumbnails: list[bytes]
    embed: NDArray[np.bool_]  # which detections get a vector (the tracking cadence)
    embeddings: NDArray[np.float32] | None = None


ProgressFn = Callable[[int, int], None]  # (frames processed now, people found now)


class _Clock:
    def __init__(self) -> None:
        self.stage_s: dict[str, float] = {}

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + now - started
        return now


def ingest_video(
    path: Path,
    cfg: Config,
    gallery: Gallery,
    detector: Detector,
    embedder: Embedder,
    camera_id: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> IngestSummary:
    """Detect, embed and store every kept frame of ``path``; resumes an unfinished run of the
    same settings, skips a finished one (unless ``force``, which replaces its rows)."""
    path = Path(path).resolve()
    info = probe(path)
    duration_s = info.frame_count / info.fps if info.fps > 0 else 0.0
    if cfg.video.start_s is not None and info.frame_count and cfg.video.start_s >= duration_s:
        raise SourceError(
            f"{path}: --start {cfg.video.start_s:g} s is past the end "
            f"({duration_s:.1f} s, {info.frame_count} frames); choose an earlier start"
        )
    camera = camera_id or camera_id_for(path)
    video = gallery.upsert_video(
        path, content_hash(path), camera, info.fps, info.width_px, info.height_px, info.frame_count
    )
    if info.is_image_folder and (
        video.frame_count != info.frame_count or video.size_bytes != source_size_bytes(path)
    ):
        if not force:
            raise SourceError(
                f"{path}: the folder changed since it was ingested ({video.frame_count} images "
                f"then, {info.frame_count} now); pass --force to ingest it again (its rows "
                "are replaced, never doubled)"
            )
        gallery.refresh_video(video, info.frame_count, source_size_bytes(path))
    emb_row = gallery.embedder_row(
        embedder.name,
        embedder.dim,
        embedder.weights,
        sha256_of(Path(embedder.weights)) if embedder.weights else None,
    )
    key = settings_key(cfg, detector.name, embedder.name)
    run = gallery.find_run(video.id, key)
    summary = IngestSummary(video=str(path), camera_id=camera, status="complete")
    if run is not None and run.status == "complete" and not force:
        summary.status = "skipped"
        summary.frames_processed = run.frames_processed
        summary.detections = run.detections_count
        return summary
    if run is not None and force:
        gallery.reset_run(run)
    created = run is None
    if run is None:
        run = gallery.start_run(video, emb_row, detector.name, key, cfg.video.stride)
    summary.resumed_from_frame = run.next_frame
    if run.next_frame > 0:
        log.info("resuming %s from frame %d", path.name, run.next_frame)

    report = DecodeReport()
    frames = read_frames(
        path,
        camera,
        cfg.video.stride,
        cfg.video.start_s,
        cfg.video.end_s,
        first_index=run.next_frame,
        report=report,
    )
    clock = _Clock()
    started = time.perf_counter()
    try:
        _run_stages(
            prefetch(frames, cfg.video.queue_frames),
            cfg,
            gallery,
            run,
            detector,
            embedder,
            clock,
            progress,
            stop,
        )
        if not (stop is not None and stop.is_set()) and run.frames_processed == 0:
            raise SourceError(
                f"{path}: no frame could be decoded in the requested range; "
                "check the file and --start/--end"
            )
    except Exception as exc:
        # A run that failed before committing anything leaves no trace; one that committed
        # frames keeps them (the same command resumes) and records why it stopped.
        gallery.abandon_run(run, _first_line(exc), drop=created and run.frames_processed == 0)
        raise
    finally:
        summary.elapsed_s = time.perf_counter() - started
        summary.stage_s = clock.stage_s
        summary.frames_read = report.frames_read
        summary.frames_processed = run.frames_processed
        summary.detections = run.detections_count
        summary.embedded = run.embedded_count
        summary.frames_lost = report.stopped_early
        summary.lost_from_frame, summary.frames_announced = report.stopped_at, report.announced
        summary.unreadable = list(report.unreadable)
        if sys.exc_info()[0] is None:
            gallery.save_indexes()
    if stop is not None and stop.is_set():
        summary.status = "interrupted"
        summary.tracks = gallery.rebuild_run_tracks(run)  # the committed part, until resumed
        return summary
    gallery.finish_run(run)
    summary.tracks = gallery.track_count(run.id)
    return summary


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]


def gallery_fps(gallery: Gallery, run: RunRow) -> float:
    from storage.models import VideoRow

    with gallery.session() as s:
        video = s.get(VideoRow, run.video_id)
    return float(video.fps) if video is not None else 25.0


def _run_stages(
    frames: Iterator[Frame],
    cfg: Config,
    gallery: Gallery,
    run: RunRow,
    detector: Detector,
    embedder: Embedder,
    clock: _Clock,
    progress: ProgressFn | None,
    stop: threading.Event | None,
) -> None:
    from storage.models import TRACK_ID_STRIDE

    tc = cfg.tracking
    tracker_cfg = TrackerConfig.from_settings(tc, gallery_fps(gallery, run))
    cadence = EmbedCadence(tc.embed_every_frames * cfg.video.stride, tc.embed_on_resize)
    # A resumed run continues from the tracker and cadence state committed with its resume
    # point, so its tracks and embedded crops are those of an uninterrupted run.
    saved = json.loads(run.tracker_state) if run.tracker_state and run.next_frame > 0 else None
    tracker: ByteTracker | None = None
    if tc.enabled and saved is not None:
        tracker = ByteTracker.from_state(tracker_cfg, saved["tracker"])
        cadence.restore(saved["cadence"])
    elif tc.enabled:
        tracker = ByteTracker(tracker_cfg, next_id=run.next_track_id)
    pending: list[_Pending] = []
    batcher = CropBatcher[int](embedder, cfg.reid.batch_crops)  # crops of pending frames
    processed = run.frames_processed

    def embed_waiting() -> None:
        if not len(batcher):
            return
        t = time.perf_counter()
        for pos, rows, vectors in batcher.flush():
            item = pending[pos]
            item.embeddings = np.full((len(item.detections), embedder.dim), np.nan, np.float32)
            item.embeddings[rows] = vectors
        clock.add("embed", t)

    def commit() -> None:
        nonlocal processed
        embed_waiting()
        if not pending:
            return
        t = time.perf_counter()
        rows = []
        for item in pending:
            dets = item.detections
            for j in range(len(dets)):
                x1, y1, x2, y2 = (float(v) for v in dets.xyxy[j])
                tid = (
                    None
                    if dets.track_ids is None or dets.track_ids[j] < 0
                    else (run.id * TRACK_ID_STRIDE + int(dets.track_ids[j]))
                )
                vec = item.embeddings[j] if item.embed[j] and item.embeddings is not None else None
                rows.append(
                    NewDetection(
                        frame_index=item.frame.index,
                        timestamp_s=item.frame.timestamp_s,
                        xyxy=(x1, y1, x2, y2),
                        score=float(dets.scores[j]),
                        embedding=vec,
                        thumbnail=item.thumbnails[j],
                        track_id=tid,
                    )
                )
        processed += len(pending)
        state = None
        if tracker is not None:
            alive = {t.track_id for t in tracker.tracks}
            state = json.dumps({"tracker": tracker.state(), "cadence": cadence.state(alive)})
        gallery.commit_frames(
            run,
            rows,
            next_frame=pending[-1].frame.index + 1,
            frames_processed=processed,
            next_track_id=tracker.next_id if tracker is not None else None,
            tracker_state=state,
        )
        clock.add("store", t)
        if progress is not None:
            progress(len(pending), len(rows))
        pending.clear()

    t = time.perf_counter()
    for batch in batched(frames, cfg.detector.batch_frames):
        t = clock.add("decode", t)
        results = detector.detect(batch)
        t = clock.add("detect", t)
        for frame, raw in zip(batch, results, strict=True):
            dets = tracker.update(raw, frame.index) if tracker is not None else raw
            embed = cadence.choose(dets, frame.index)
            frame_crops = crop_boxes(frame.image, dets.xyxy)
            thumbs = [encode_jpeg(c, cfg.storage.thumbnail_px) for c in frame_crops]
            pending.append(_Pending(frame, dets, thumbs, embed))
            rows = np.flatnonzero(embed)
            batcher.add(len(pending) - 1, rows, [frame_crops[j] for j in rows])
        t = clock.add("track+crop", t)
        if batcher.full:
            embed_waiting()
        if len(pending) >= cfg.storage.commit_frames:
            commit()
        t = time.perf_counter()
        if stop is not None and stop.is_set():
            break
    commit()
