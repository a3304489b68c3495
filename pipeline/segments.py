"""Ingest split into time segments: the unit of work of the distributed executor.

A segment stores the frames [``first``, ``stop``) of one video. Its worker decodes the video
itself from ``lead_in`` (a little before ``first``, seeking there) so the tracker is already
following the people who walk in from the previous segment; the lead-in frames are not stored,
but their track boxes are kept, and after the run those boxes are matched with the rows the
previous segment stored for the same frames, which joins each track across the boundary
(`storage.segments.stitch_run`). The worker returns nothing heavy: it commits its own rows in
one transaction (`storage.segments.commit_segment`), so frames and crops never travel."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from detectors import Detector
from pipeline.core.config import Config
from pipeline.core.frameranges import Ranges
from pipeline.core.stream import batched, prefetch
from pipeline.core.tracking import ByteTracker, EmbedCadence, TrackerConfig
from pipeline.core.types import Detections, Frame
from reid import Embedder
from storage.gallery import NewDetection


@dataclass(frozen=True)
class Segment:
    video: str  # the source's path, as the gallery records it
    run_id: int
    first: int  # first frame stored
    stop: int  # frames before this are stored
    lead_in: int  # first frame decoded (tracker warm-up), <= first


@dataclass
class SegmentRows:
    segment: Segment
    detections: list[NewDetection]  # track_id: the segment's own track number, or None
    local_tracks: int  # track numbers run 1..local_tracks
    lead_in_boxes: dict[int, list[tuple[int, float, float, float, float]]]
    frames: int  # kept frames stored
    reached: int  # frames before this are done (``stop``, or the source's end)
    seconds: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)
    gated: int = 0  # frames (lead-in included) motion gating kept from the detector


def plan_segments(
    video: str,
    run_id: int,
    gaps: Ranges,
    fps: float,
    segment_s: float,
    overlap_s: float,
) -> list[Segment]:
    """The not-yet-done ranges of a run cut into segments of ``segment_s`` seconds, each with
    ``overlap_s`` seconds of lead-in (none at a range's start that is the video's start)."""
    length = max(1, round(segment_s * fps))
    lead = max(0, math.ceil(overlap_s * fps))
    out = []
    for a, b in gaps:
        for first in range(a, b, length):
            out.append(Segment(video, run_id, first, min(b, first + length), max(0, first - lead)))
    return out


def process_segment(
    segment: Segment,
    cfg: Config,
    fps: float,
    detector: Detector,
    embedder: Embedder,
    stop_event: threading.Event | None = None,
) -> SegmentRows:
    """Detect, track and embed one segment (the same stages and settings as an in-process
    ingest) and return its rows."""
    from pipeline.core.video import DecodeReport, read_frames
    from pipeline.frames import FrameStages, StageClock

    started = time.perf_counter()
    tc = cfg.tracking
    tracker = ByteTracker(TrackerConfig.from_settings(tc, fps), next_id=1) if tc.enabled else None
    cadence = EmbedCadence(tc.embed_every_frames * cfg.video.stride, tc.embed_on_resize)
    clock = StageClock()
    stages = FrameStages(cfg, detector, embedder, tracker, cadence, clock, fps)
    report = DecodeReport()
    frames = read_frames(
        Path(segment.video),
        None,
        cfg.video.stride,
        first_index=segment.lead_in,
        stop_index=segment.stop,
        report=report,
        image_fps=cfg.video.fps,
    )
    lead_in: dict[int, list[tuple[int, float, float, float, float]]] = {}

    def lead_in_only(frame: Frame, dets: Detections) -> bool:
        """Lead-in frames feed the tracker; only their tracks' boxes are kept."""
        if frame.index >= segment.first:
            return False
        if dets.track_ids is not None:
            for j, tid in enumerate(dets.track_ids):
                if tid >= 0:
                    x1, y1, x2, y2 = (float(v) for v in dets.xyxy[j])
                    lead_in.setdefault(int(tid), []).append((frame.index, x1, y1, x2, y2))
        return True

    t = time.perf_counter()
    for batch in batched(prefetch(frames, cfg.video.queue_frames), cfg.detector.batch_frames):
        clock.add("decode", t)
        stages.feed(batch, skip=lead_in_only)
        if stop_event is not None and stop_event.is_set():
            raise InterruptedError("stopped")
        t = time.perf_counter()
    kept = stages.take()  # the segment's rows are held until its one commit
    detections = [row for item in kept for row in item.rows(lambda tid: tid)]
    reached = segment.stop if not report.stopped_early else max(segment.first, report.end_index)
    return SegmentRows(
        segment=segment,
        detections=detections,
        local_tracks=(tracker.next_id - 1) if tracker is not None else 0,
        lead_in_boxes=lead_in,
        frames=len(kept),
        reached=reached,
        seconds=time.perf_counter() - started,
        stage_s=clock.stage_s,
        gated=clock.gated,
    )
