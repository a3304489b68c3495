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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors import Detector
from pipeline.core.config import Config
from pipeline.core.crops import crop_boxes, encode_jpeg
from pipeline.core.errors import ProwlError, SourceError
from pipeline.core.files import content_hash, sha256_of, source_size_bytes
from pipeline.core.frameranges import Ranges, kept_frames, load_ranges, merge_ranges, missing_ranges
from pipeline.core.stream import batched, prefetch
from pipeline.core.tracking import ByteTracker, EmbedCadence, TrackerConfig
from pipeline.core.types import Detections, Frame
from pipeline.core.video import (
    NO_END,
    DecodeReport,
    camera_id_for,
    frame_window,
    probe,
    read_frames,
)
from reid import Embedder
from reid.batching import CropBatcher
from storage.gallery import Gallery, NewDetection
from storage.leases import Lease, take
from storage.models import RunRow
from storage.subjects import SubjectSighting, reattach, subject_sightings_of_run

log = logging.getLogger(__name__)


class IngestInterrupted(ProwlError):
    """Raised after a graceful stop: everything processed so far is committed."""


@dataclass
class IngestSummary:
    video: str
    camera_id: str
    status: str  # complete | skipped | interrupted
    frames_read: int = 0
    frames_processed: int = 0  # by the run so far, all windows and earlier attempts included
    frames_new: int = 0  # by this call
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
    segments: int = 0  # distributed ingest: segments run, by this many workers
    workers: int = 0
    nodes: int = 0
    live: Any = None  # live sources: pipeline.live.LiveStats (received, dropped, reconnects)
    subjects_reattached: int = 0  # --force --reattach-subjects: sightings found again ...
    subjects_lost: int = 0  # ... and not (no box of the new run on their frame, IoU >= 0.5)

    @property
    def frames_per_s(self) -> float:
        return self.frames_new / self.elapsed_s if self.elapsed_s > 0 else 0.0


def settings_key(cfg: Config, detector_name: str, embedder_name: str) -> str:
    """The settings that shape a video's detections: same key = same rows. The time window
    is not part of it: windows of one run add up, and a frame is never stored twice."""
    d, v = cfg.detector, cfg.video
    key = (
        f"det={detector_name};imgsz={d.imgsz_px};conf={d.conf};iou={d.iou};"
        f"reid={embedder_name};stride={v.stride}"
    )
    # Settings added later join the key only when not at their default, so that galleries
    # made before them keep their runs.
    if d.precision != "fp32":  # int8 is calibrated on the run's own video (build_for_footage)
        key += f";precision={d.precision};calib=footage/{d.calibration_frames}"
    if d.tile_px is not None:
        key += f";tile={d.tile_px}/{d.tile_overlap}"
    return key


def _sized(path: Path, cfg: Config, detector: Detector) -> tuple[Config, Detector]:
    """The detector input size for this video (see detectors.adaptive)."""
    from detectors.adaptive import PROBE_FRAMES, sized_for
    from pipeline.core.video import sample_frames

    if cfg.detector.min_person_px == 0 or not hasattr(detector, "with_input_size"):
        return cfg, detector
    sized_cfg, sized = sized_for(cfg, detector, sample_frames(path, PROBE_FRAMES, cfg.video.fps))
    if sized is not detector:
        log.warning(
            "%s: people are small at %d px; detecting at %d px (detector.min_person_px)",
            path.name,
            cfg.detector.imgsz_px,
            sized_cfg.detector.imgsz_px,
        )
    return sized_cfg, sized


@dataclass
class Pending:
    """Finished work of one frame, waiting for its transaction (the image is not kept: the
    thumbnails and the vectors are all that is stored)."""

    index: int
    timestamp_s: float
    detections: Detections
    thumbnails: list[bytes]
    embed: NDArray[np.bool_]  # which detections get a vector (the tracking cadence)
    embeddings: NDArray[np.float32] | None = None

    def rows(self, track_id: Callable[[int], int]) -> list[NewDetection]:
        """The frame's detections as rows; ``track_id`` maps the tracker's id to the stored one."""
        dets, out = self.detections, []
        for j in range(len(dets)):
            x1, y1, x2, y2 = (float(v) for v in dets.xyxy[j])
            ids = dets.track_ids
            tid = None if ids is None or ids[j] < 0 else int(ids[j])
            vec = self.embeddings[j] if self.embed[j] and self.embeddings is not None else None
            out.append(
                NewDetection(
                    frame_index=self.index,
                    timestamp_s=self.timestamp_s,
                    xyxy=(x1, y1, x2, y2),
                    score=float(dets.scores[j]),
                    embedding=vec,
                    thumbnail=self.thumbnails[j],
                    track_id=None if tid is None else track_id(tid),
                )
            )
        return out


class FrameStages:
    """detect (a batch of frames) → track → the tracking cadence's choice of crops to embed →
    crops and thumbnails → batched embedding. Both executors feed it: the in-process ingest
    commits ``take()`` every few frames, a distributed segment once at its end."""

    def __init__(
        self,
        cfg: Config,
        detector: Detector,
        embedder: Embedder,
        tracker: ByteTracker | None,
        cadence: EmbedCadence,
        clock: StageClock,
    ) -> None:
        self.cfg, self.detector, self.embedder = cfg, detector, embedder
        self.tracker, self.cadence, self.clock = tracker, cadence, clock
        self.pending: list[Pending] = []
        self.batcher = CropBatcher[int](embedder, cfg.reid.batch_crops)

    @property
    def appearance(self) -> bool:
        """The tracker associates by look too: every crop is embedded before tracking."""
        return self.tracker is not None and self.tracker.cfg.appearance_weight > 0

    def feed(
        self, batch: list[Frame], skip: Callable[[Frame, Detections], bool] | None = None
    ) -> None:
        """One batch of frames through the stages. ``skip(frame, tracked detections)``: True
        for a frame that only feeds the tracker (a segment's lead-in)."""
        t = time.perf_counter()
        results = self.detector.detect(batch)
        t = self.clock.add("detect", t)
        crops_of = [crop_boxes(f.image, r.xyxy) for f, r in zip(batch, results, strict=True)]
        if self.appearance:
            t = self.clock.add("track+crop", t)
            looked = [self.looks_at(f.index) for f in batch]
            results = self._embed_all(results, crops_of, looked)
            t = self.clock.add("embed", t)
        for frame, raw, crops in zip(batch, results, crops_of, strict=True):
            dets = self.tracker.update(raw, frame.index) if self.tracker is not None else raw
            if skip is not None and skip(frame, dets):
                continue
            thumbs = [encode_jpeg(c, self.cfg.storage.thumbnail_px) for c in crops]
            if self.appearance:
                embedded = np.full(len(dets), raw.embeddings is not None)
                item = Pending(frame.index, frame.timestamp_s, dets, thumbs, embedded)
                item.embeddings = raw.embeddings
                self.pending.append(item)
                continue
            embed = self.cadence.choose(dets, frame.index)
            self.pending.append(Pending(frame.index, frame.timestamp_s, dets, thumbs, embed))
            rows = np.flatnonzero(embed)
            self.batcher.add(len(self.pending) - 1, rows, [crops[j] for j in rows])
        self.clock.add("track+crop", t)
        if self.batcher.full:
            self.embed_waiting()

    def looks_at(self, frame_index: int) -> bool:
        """Whether this frame's crops are embedded (appearance tracking): every
        ``tracking.appearance_every_frames``-th kept frame, counted from the video's start so
        that a resumed or distributed run chooses the same frames."""
        every = self.cfg.tracking.appearance_every_frames
        return (frame_index // max(1, self.cfg.video.stride)) % max(1, every) == 0

    def _embed_all(
        self,
        results: list[Detections],
        crops_of: list[list[NDArray[np.uint8]]],
        looked: list[bool],
    ) -> list[Detections]:
        """The detections of the ``looked`` frames with every crop's vector (embedder calls
        of at most ``reid.batch_crops`` crops); the other frames' as they were."""
        flat = [c for crops, on in zip(crops_of, looked, strict=True) if on for c in crops]
        size = max(1, self.cfg.reid.batch_crops)
        parts = [self.embedder.embed(flat[i : i + size]) for i in range(0, len(flat), size)]
        vectors = np.concatenate(parts) if parts else np.zeros((0, self.embedder.dim), np.float32)
        out, at = [], 0
        for r, on in zip(results, looked, strict=True):
            if not on:
                out.append(r)
                continue
            out.append(r.with_embeddings(vectors[at : at + len(r)]))
            at += len(r)
        return out

    def embed_waiting(self) -> None:
        if not len(self.batcher):
            return
        t = time.perf_counter()
        for pos, rows, vectors in self.batcher.flush():
            item = self.pending[pos]
            item.embeddings = np.full((len(item.detections), self.embedder.dim), np.nan, np.float32)
            item.embeddings[rows] = vectors
        self.clock.add("embed", t)

    def take(self) -> list[Pending]:
        """Every frame fed so far, embedded; the stages start empty again."""
        self.embed_waiting()
        out, self.pending = self.pending, []
        return out


ProgressFn = Callable[[int, int], None]  # (frames processed now, people found now)


class StageClock:
    def __init__(self) -> None:
        self.stage_s: dict[str, float] = {}

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + now - started
        return now


def embedder_row_of(gallery: Gallery, embedder: Embedder) -> Any:
    """The gallery's row of this embedder (made on first use), tied to its weights' sha256."""
    weights = embedder.weights
    return gallery.embedder_row(
        embedder.name, embedder.dim, weights, sha256_of(Path(weights)) if weights else None
    )


@dataclass
class PreparedRun:
    """A video's run, found or started, and what of its window is still to do."""

    path: Path
    info: Any  # pipeline.core.video.VideoInfo
    cfg: Config  # with the detector input size chosen for this video
    detector: Detector
    run: RunRow
    gaps: Ranges
    created: bool
    summary: IngestSummary
    skipped: bool
    planned_frames: int
    frames_before: int
    lease: Lease | None = None  # this process's claim on the run; close() when done
    subject_sightings: list[SubjectSighting] = field(default_factory=list)  # to re-attach

    def release(self) -> None:
        if self.lease is not None:
            self.lease.close()


def prepare_run(
    path: Path,
    cfg: Config,
    gallery: Gallery,
    detector: Detector,
    embedder: Embedder,
    camera_id: str | None = None,
    force: bool = False,
    reattach_subjects: bool = False,
) -> PreparedRun:
    """Everything an ingest does before its first frame, for every executor: the video and
    embedder rows, the detector's input size, the run of these settings (found, reset with
    ``force``, or started) and the ranges of the window it has not stored yet. The run is
    claimed for this process (RunBusy while another live process ingests it); the caller
    calls ``release()`` when done. ``force`` refuses to drop sightings of saved subjects
    unless ``reattach_subjects``."""
    path = Path(path).resolve()
    info = probe(path, cfg.video.fps)
    duration_s = info.duration_s
    if cfg.video.start_s is not None and info.frame_count and cfg.video.start_s >= duration_s:
        raise SourceError(
            f"{path}: --start {cfg.video.start_s:g} s is past the end "
            f"({duration_s:.1f} s, {info.frame_count} frames); choose an earlier start"
        )
    tile = cfg.detector.tile_px
    if tile is not None and info.width_px and tile >= max(info.width_px, info.height_px):
        raise SourceError(
            f"{path.name}: detector.tile_px {tile} is not smaller than the frames "
            f"({info.width_px}x{info.height_px}); tiles only help footage larger than them: "
            "use a smaller tile_px or null"
        )
    camera = camera_id or camera_id_for(path)
    video = gallery.upsert_video(
        path,
        content_hash(path),
        camera,
        info.fps,
        info.width_px,
        info.height_px,
        info.frame_count,
        cfg.video.start_time or info.start_time,
        given=cfg.video.start_time is not None,
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
    emb_row = embedder_row_of(gallery, embedder)
    cfg, detector = _sized(path, cfg, detector)
    key = settings_key(cfg, detector.name, embedder.name)
    run = gallery.find_run(video.id, key)
    summary = IngestSummary(video=str(path), camera_id=camera, status="complete")
    first, stop = frame_window(info, cfg.video.start_s, cfg.video.end_s)
    if info.frame_count and stop == NO_END:
        stop = info.frame_count
    if (
        run is not None
        and not force
        and run.status == "complete"
        and not missing_ranges((first, stop), load_ranges(run.done_ranges))
    ):
        return _skipped(path, info, cfg, detector, run, summary, None)
    created = run is None
    if run is None:
        mine = gallery.start_run(video, emb_row, detector.name, key, cfg.video.stride)
        run = gallery.find_run(video.id, key)  # another process may have made one first
        assert run is not None
        if run.id != mine.id:
            gallery.abandon_run(mine, "made twice", drop=True)
            created = False
    # The run is ours from here: claimed in the transaction that reads its resume point.
    run, lease = take(gallery, run.id)
    try:
        sightings: list[SubjectSighting] = []
        if force and not created:
            sightings = subject_sightings_of_run(gallery, run.id)
            if sightings and not reattach_subjects:
                raise SourceError(
                    f"{path.name}: --force would remove {len(sightings)} sightings of saved "
                    f"subjects ({', '.join(sorted({x.subject for x in sightings})[:5])}); add "
                    "--reattach-subjects to re-ingest and attach them to the new boxes (same "
                    "frame, IoU >= 0.5), or leave out --force"
                )
            gallery.reset_run(run)
        done = load_ranges(run.done_ranges)
        gaps = missing_ranges((first, stop), done)
        if not gaps:
            return _skipped(path, info, cfg, detector, run, summary, lease)
        if gaps[0][0] == run.next_frame > 0:
            summary.resumed_from_frame = run.next_frame
            log.info("resuming %s from frame %d", path.name, run.next_frame)
    except BaseException:
        lease.close()
        raise
    todo = sum(kept_frames(a, min(b, info.frame_count or b), cfg.video.stride) for a, b in gaps)
    return PreparedRun(
        path,
        info,
        cfg,
        detector,
        run,
        gaps,
        created,
        summary,
        False,
        todo,
        run.frames_processed,
        lease,
        sightings,
    )


def _skipped(
    path: Path,
    info: Any,
    cfg: Config,
    detector: Detector,
    run: RunRow,
    summary: IngestSummary,
    lease: Lease | None,
) -> PreparedRun:
    summary.status = "skipped"
    summary.frames_processed = run.frames_processed
    summary.detections = run.detections_count
    return PreparedRun(path, info, cfg, detector, run, [], False, summary, True, 0, 0, lease)


def ingest_video(
    path: Path,
    cfg: Config,
    gallery: Gallery,
    detector: Detector,
    embedder: Embedder,
    camera_id: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    stop_event: threading.Event | None = None,
    planned: Callable[[int], None] | None = None,
    reattach_subjects: bool = False,
) -> IngestSummary:
    """Detect, embed and store every kept frame of ``path`` in the configured time window that
    the run of these settings has not stored yet: a new window adds to it, an interrupted one
    resumes, a finished one is skipped (``force`` replaces the run's rows instead).
    ``planned`` is told how many frames will be processed, before the work starts."""
    prep = prepare_run(path, cfg, gallery, detector, embedder, camera_id, force, reattach_subjects)
    summary: IngestSummary | None = None
    try:
        summary = _ingest_prepared(prep, gallery, embedder, progress, stop_event, planned)
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
        gallery.abandon_run(run, _first_line(exc), drop=created and run.frames_processed == 0)
        raise
    finally:
        summary.elapsed_s = time.perf_counter() - started
        summary.stage_s = clock.stage_s
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]


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
    tracker_cfg = TrackerConfig.from_settings(tc, gallery_fps(gallery, run))
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
    stages = FrameStages(cfg, detector, embedder, tracker, cadence, clock)
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
