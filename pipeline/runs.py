"""A video's run in the gallery: found or started (with its detector size for this footage and
its settings key), what of its window is left, and the summary a run reports."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors import Detector
from pipeline.context import RunContext
from pipeline.core.config import Config
from pipeline.core.errors import ProwlError, SourceError
from pipeline.core.files import content_hash, sha256_of, source_size_bytes
from pipeline.core.frameranges import Ranges, kept_frames, load_ranges, missing_ranges
from pipeline.core.video import (
    NO_END,
    camera_id_for,
    frame_window,
    probe,
)
from reid import Embedder
from storage.gallery import Gallery
from storage.leases import Lease, take
from storage.models import RunRow
from storage.subjects import SubjectSighting, subject_sightings_of_run

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
    frames_gated: int = 0  # by this call: frames motion gating kept from the detector
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


def settings_key(cfg: Config, detector: Detector, embedder_name: str) -> str:
    """The settings that shape a video's detections: same key = same rows. The time window
    is not part of it: windows of one run add up, and a frame is never stored twice. The
    input size is the detector's own (``settings_of``)."""
    from detectors.adaptive import settings_of

    d, v = settings_of(cfg, detector).detector, cfg.video
    key = (
        f"det={detector.name};imgsz={d.imgsz_px};conf={d.conf};iou={d.iou};"
        f"reid={embedder_name};stride={v.stride}"
    )
    # Settings added later join the key only when not at their default, so that galleries
    # made before them keep their runs.
    if d.precision != "fp32":  # int8 is calibrated on the run's own video (build_for_footage)
        key += f";precision={d.precision};calib=footage/{d.calibration_frames}"
    if d.tile_px is not None:
        key += f";tile={d.tile_px}/{d.tile_overlap}"
    if d.every_frames != 1:
        key += f";every={d.every_frames}"
    return key


def _sized(path: Path, cfg: Config, detector: Detector) -> Detector:
    """The detector at the input size for this video (see detectors.adaptive)."""
    from detectors.adaptive import PROBE_FRAMES, adapts, sized_for
    from pipeline.core.video import sample_frames

    if not adapts(cfg, detector):
        return detector
    sized = sized_for(cfg, detector, sample_frames(path, PROBE_FRAMES, cfg.video.fps))
    if sized is not detector:
        log.warning(
            "%s: people are small at %d px; detecting at %d px (detector.min_person_px)",
            path.name,
            cfg.detector.imgsz_px,
            getattr(sized, "input_px", cfg.detector.imgsz_px),
        )
    return sized


ProgressFn = Callable[[int, int], None]  # (frames processed now, people found now)


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
    ctx: RunContext,
    path: Path,
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
    from detectors.adaptive import settings_of

    cfg, gallery, embedder = ctx.cfg, ctx.gallery, ctx.embedder
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
    detector = _sized(path, cfg, ctx.detector_for(path))
    cfg = settings_of(cfg, detector)
    key = settings_key(cfg, detector, embedder.name)
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
