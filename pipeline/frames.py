"""The frame-level machinery of ingest: what one frame goes through (detect, track, crop,
embed) and the work waiting for its transaction; shared by file, segment and live ingest."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detectors import Detector
from pipeline.core.colours import colour_columns_batch
from pipeline.core.config import Config
from pipeline.core.crops import crop_boxes, encode_jpeg
from pipeline.core.motion import MotionGate
from pipeline.core.tracking import ByteTracker, EmbedCadence
from pipeline.core.types import Detections, Frame
from reid import Embedder
from reid.batching import CropBatcher
from storage.gallery import NewDetection

log = logging.getLogger(__name__)


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
    colours: list[tuple[str | None, str | None]] | None = None  # per detection: upper, lower
    predicted: bool = False  # the tracker's boxes: the detector skipped this frame

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
                    colours=self.colours[j] if self.colours else (None, None),
                    predicted=self.predicted,
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
        fps: float = 25.0,
    ) -> None:
        self.cfg, self.detector, self.embedder = cfg, detector, embedder
        self.tracker, self.cadence, self.clock = tracker, cadence, clock
        self.pending: list[Pending] = []
        self.batcher = CropBatcher[int](embedder, cfg.reid.batch_crops)
        d = cfg.detector
        self.gate = (
            MotionGate(fps / max(1, cfg.video.stride), d.min_person_px, d.motion_refresh_s)
            if d.motion == "auto"
            else None
        )

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
        results, predicted = self._detect(batch)
        t = self.clock.add("detect", t)
        crops_of = [crop_boxes(f.image, r.xyxy) for f, r in zip(batch, results, strict=True)]
        if self.appearance:
            t = self.clock.add("track+crop", t)
            looked = [
                self.looks_at(f.index) and not p for f, p in zip(batch, predicted, strict=True)
            ]
            results = self._embed_all(results, crops_of, looked)
            t = self.clock.add("embed", t)
        for frame, raw, crops, pred in zip(batch, results, crops_of, predicted, strict=True):
            if pred and self.tracker is not None:  # the detector skipped it: predicted boxes
                h, w = frame.image.shape[:2]
                dets = self.tracker.coast(frame.index).clipped(w, h)
                crops = crop_boxes(frame.image, dets.xyxy)
            else:
                dets = self.tracker.update(raw, frame.index) if self.tracker is not None else raw
            if skip is not None and skip(frame, dets):
                continue
            thumbs = [encode_jpeg(c, self.cfg.storage.thumbnail_px) for c in crops]
            colours = colour_columns_batch(crops)
            if pred or self.appearance:
                embedded = np.full(len(dets), not pred and raw.embeddings is not None)
                item = Pending(frame.index, frame.timestamp_s, dets, thumbs, embedded)
                item.embeddings = None if pred else raw.embeddings
                item.colours, item.predicted = colours, pred
                self.pending.append(item)
                continue
            embed = self.cadence.choose(dets, frame.index)
            self.pending.append(
                Pending(frame.index, frame.timestamp_s, dets, thumbs, embed, colours=colours)
            )
            rows = np.flatnonzero(embed)
            self.batcher.add(len(self.pending) - 1, rows, [crops[j] for j in rows])
        self.clock.add("track+crop", t)
        if self.batcher.full:
            self.embed_waiting()

    def _detect(self, batch: list[Frame]) -> tuple[list[Detections], list[bool]]:
        """The detector's people in each frame, and which frames the tracker predicts instead.
        With motion gating only the frames the gate chooses are looked at, the others are
        empty (checked: nothing moved, nobody was there); with ``detector.every_frames`` N,
        of the frames looked at only every Nth kept frame (counted from the video's start,
        so a resumed or distributed run chooses the same) is detected, the rest predicted."""
        stride, every = max(1, self.cfg.video.stride), self.cfg.detector.every_frames
        looks = self.gate.choose([f.image for f in batch]) if self.gate else [True] * len(batch)
        detect = [
            on and (f.index // stride) % every == 0 for f, on in zip(batch, looks, strict=True)
        ]
        seen = [f for f, on in zip(batch, detect, strict=True) if on]
        found = iter(self.detector.detect(seen) if seen else [])
        results = [next(found) if on else Detections.empty() for on in detect]
        if self.gate is not None:
            self.clock.gated += len(batch) - sum(looks)
            counts = [len(r) for r, on in zip(results, detect, strict=True) if on]
            self.gate.found(counts, last_detected=detect[-1])
        predicted = [on and not d for on, d in zip(looks, detect, strict=True)]
        return results, predicted

    def looks_at(self, frame_index: int) -> bool:
        """Whether this frame's crops are embedded (appearance tracking): every
        ``tracking.appearance_every_frames``-th kept frame, counted from the video's start so
        that a resumed or distributed run chooses the same frames. With a detector interval
        (``detector.every_frames`` > 1) every detected frame is: detections are sparse."""
        if self.cfg.detector.every_frames > 1:
            return True
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


class StageClock:
    """Seconds per stage, and the frames motion gating kept from the detector."""

    def __init__(self) -> None:
        self.stage_s: dict[str, float] = {}
        self.gated = 0

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + now - started
        return now
