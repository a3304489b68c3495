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
from pathlib import Path

from detectors import Detector
from pipeline.context import RunContext
from pipeline.core.config import Config
from pipeline.core.errors import SourceError, one_line
from pipeline.core.frameranges import load_ranges, merge_ranges
from pipeline.core.stream import batched, prefetch
from pipeline.core.tracking import ByteTracker, EmbedCadence, TrackerConfig
from pipeline.core.types import Frame
from pipeline.core.video import (
    DecodeReport,
    read_frames,
)
from pipeline.frames import FrameStages, StageClock
from pipeline.runs import (
    IngestSummary,
    PreparedRun,
    ProgressFn,
    prepare_run,
)
from reid import Embedder
from storage.gallery import Gallery
from storage.models import RunRow
from storage.subjects import reattach

log = logging.getLogger(__name__)


def ingest_video(
    ctx: RunContext,
    path: Path,
    camera_id: str | None = None,
    force: bool = False,
    reattach_subjects: bool = False,
) -> IngestSummary:
    """Detect, embed and store every kept frame of ``path`` in the configured time window that
    the run of these settings has not stored yet: a new window adds to it, an interrupted one
    resumes, a finished one is skipped (``force`` replaces the run's rows instead).
    ``ctx.planned`` is told how many frames will be processed, before the work starts."""
    gallery = ctx.gallery
    prep = prepare_run(ctx, path, camera_id, force, reattach_subjects)
    summary: IngestSummary | None = None
    try:
        summary = _ingest_prepared(
            prep, gallery, ctx.embedder, ctx.progress, ctx.stop_event, ctx.planned
        )
        return summary
    finally:
        if prep.subject_sightings:  # onto whatever the run holds now, even if it stopped
            found, lost = reattach(gallery, prep.run.id, prep.subject_sightings)
            if summary is not None:
                summary.subjects_reattached, summary.subjects_lost = found, lost
        prep.release()


def _ingest_prepared(
    prep: PreparedRun,
    gallery: Gallery,
    embedder: Embedder,
    progress: ProgressFn | None,
    stop_event: threading.Event | None,
    planned: Callable[[int], None] | None,
) -> IngestSummary:
    if prep.skipped:
        if prep.run.status != "complete":
            # every frame was committed but the process died before finishing the run
            gallery.finish_run(prep.run)
            prep.summary.tracks = gallery.track_count(prep.run.id)
        return prep.summary
    path, cfg, detector, run, gaps = prep.path, prep.cfg, prep.detector, prep.run, prep.gaps
    summary, created, camera = prep.summary, prep.created, prep.summary.camera_id
    if planned is not None:
        planned(prep.planned_frames)

    report = DecodeReport()
    clock = StageClock()
    started = time.perf_counter()
    yielded, before = 0, run.frames_processed
    try:
        for a, b in gaps:
            gap_report = DecodeReport()
            frames = read_frames(
                path,
                camera,
                cfg.video.stride,
                first_index=a,
                stop_index=b,
                report=gap_report,
                image_fps=cfg.video.fps,
            )
            run_stages(
                prefetch(frames, cfg.video.queue_frames),
                cfg,
                gallery,
                run,
                detector,
                embedder,
                clock,
                progress,
                stop_event,
                gap_start=a,
            )
            _add_report(report, gap_report)
            yielded += gap_report.frames_yielded
            if stop_event is not None and stop_event.is_set():
                break
            # The whole gap is done, also past its last kept frame (or the source's end).
            reached = b if not gap_report.stopped_early else gap_report.end_index
            done = merge_ranges([*load_ranges(run.done_ranges), (a, reached)])
            gallery.set_done_ranges(run, json.dumps(done))
        if not (stop_event is not None and stop_event.is_set()) and yielded == 0:
            raise SourceError(
                f"{path}: no frame could be decoded in the requested range; "
                "check the file and --start/--end"
            )
    except Exception as exc:
        # A run that failed before committing anything leaves no trace; one that committed
        # frames keeps them (the same command resumes) and records why it stopped.
        gallery.abandon_run(run, one_line(exc), drop=created and run.frames_processed == 0)
        raise
    finally:
        summary.elapsed_s = time.perf_counter() - started
        summary.stage_s, summary.frames_gated = clock.stage_s, clock.gated
        summary.frames_read = report.frames_read
        summary.frames_processed = run.frames_processed
        summary.frames_new = run.frames_processed - before
        summary.detections = run.detections_count
        summary.embedded = run.embedded_count
        summary.frames_lost = report.stopped_early
        summary.lost_from_frame, summary.frames_announced = report.stopped_at, report.announced
        summary.unreadable = list(report.unreadable)
        if sys.exc_info()[0] is None:
            gallery.save_indexes()
    if stop_event is not None and stop_event.is_set():
        summary.status = "interrupted"
        summary.tracks = gallery.rebuild_run_tracks(run)  # the committed part, until resumed
        return summary
    gallery.finish_run(run)
    summary.tracks = gallery.track_count(run.id)
    return summary


def _add_report(total: DecodeReport, part: DecodeReport) -> None:
    total.frames_read += part.frames_read
    total.frames_yielded += part.frames_yielded
    total.unreadable.extend(part.unreadable)
    if part.stopped_early and not total.stopped_early:
        total.stopped_early = True
        total.stopped_at, total.announced = part.stopped_at, part.announced


def gallery_fps(gallery: Gallery, run: RunRow) -> float:
    from storage.models import VideoRow

    with gallery.session() as s:
        video = s.get(VideoRow, run.video_id)
    return float(video.fps) if video is not None else 25.0


def run_stages(
    frames: Iterator[Frame],
    cfg: Config,
    gallery: Gallery,
    run: RunRow,
    detector: Detector,
    embedder: Embedder,
    clock: StageClock,
    progress: ProgressFn | None,
    stop: threading.Event | None,
    gap_start: int = 0,
) -> None:
    """Detect, track, embed and commit ``frames``, the frames of one gap of the run's window
    that starts at frame ``gap_start``."""
    from storage.models import TRACK_ID_STRIDE

    tc = cfg.tracking
    fps = gallery_fps(gallery, run)
    tracker_cfg = TrackerConfig.from_settings(tc, fps)
    cadence = EmbedCadence(tc.embed_every_frames * cfg.video.stride, tc.embed_on_resize)
    # A resumed run continues from the tracker and cadence state committed with its resume
    # point, so its tracks and embedded crops are those of an uninterrupted run.
    continues = run.tracker_state and run.next_frame > 0 and gap_start == run.next_frame
    saved = json.loads(run.tracker_state) if continues and run.tracker_state else None
    tracker: ByteTracker | None = None
    if tc.enabled and saved is not None:
        tracker = ByteTracker.from_state(tracker_cfg, saved["tracker"])
        cadence.restore(saved["cadence"])
    elif tc.enabled:
        tracker = ByteTracker(tracker_cfg, next_id=run.next_track_id)
    stages = FrameStages(cfg, detector, embedder, tracker, cadence, clock, fps)
    processed = run.frames_processed

    def commit() -> None:
        nonlocal processed
        pending = stages.take()
        if not pending:
            return
        t = time.perf_counter()
        rows = [
            row for item in pending for row in item.rows(lambda tid: run.id * TRACK_ID_STRIDE + tid)
        ]
        processed += len(pending)
        state = None
        if tracker is not None:
            alive = {t.track_id for t in tracker.tracks}
            state = json.dumps({"tracker": tracker.state(), "cadence": cadence.state(alive)})
        next_frame = pending[-1].index + 1
        done = merge_ranges([*load_ranges(run.done_ranges), (gap_start, next_frame)])
        gallery.commit_frames(
            run,
            rows,
            next_frame=next_frame,
            frames_processed=processed,
            next_track_id=tracker.next_id if tracker is not None else None,
            tracker_state=state,
            done_ranges=json.dumps(done),
        )
        clock.add("store", t)
        if progress is not None:
            progress(len(pending), len(rows))

    t = time.perf_counter()
    for batch in batched(frames, cfg.detector.batch_frames):
        clock.add("decode", t)
        stages.feed(batch)
        if len(stages.pending) >= cfg.storage.commit_frames:
            commit()
        t = time.perf_counter()
        if stop is not None and stop.is_set():
            break
    commit()
