"""The detector's input size chosen for the footage, by what a larger input would find.

A 640-px detector sees the people of 768×576 campus footage at 80-120 px and finds them; on
crowded street footage or a wide view most people are 20-30 px at its input and are missed.
Measuring the people the cheap pass finds cannot tell: it only sees the large ones (on wide
footage their median height looks fine and the input never grew; survivorship). So each video
is probed with the expensive setting first: on a few frames spread over the whole source, the
detector at the largest input (``max_imgsz_px``, never beyond the footage's own resolution)
gives the reference people; then the cheapest input, from ``imgsz_px`` up, that still finds
``adapt_recall`` (90 %) of them (IoU >= 0.5) is chosen. The probe covers the whole source
whatever the time window, so every window of a video gets the same size (and the same run:
the size is part of the run's settings key). ``min_person_px: 0`` turns adaptation off."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from detectors.base import Detector, Resizable
from pipeline.core.boxes import iou_matrix
from pipeline.core.config import Config
from pipeline.core.types import Detections, Frame

PROBE_FRAMES = 8
REFERENCE_CONF = 0.4  # the expensive pass's people: confident ones only
STEP_PX = 320  # candidate inputs: imgsz_px, +320, +640, ... up to the largest


def candidate_sizes(cfg: Config, frames: Sequence[Frame]) -> list[int]:
    """The input sizes worth probing, cheapest first; the last one is the reference."""
    d = cfg.detector
    native = max(max(f.height_px, f.width_px) for f in frames)
    cap = max(d.imgsz_px, min(d.max_imgsz_px, math.ceil(native / 32) * 32))
    sizes = list(range(d.imgsz_px, cap, STEP_PX))
    return [*sizes, cap] if not sizes or sizes[-1] != cap else sizes


def found_fraction(reference: list[Detections], found: list[Detections], conf: float) -> float:
    """The share of the reference people that ``found`` also has (IoU >= 0.5, score >= conf)."""
    total = hits = 0
    for ref, got in zip(reference, found, strict=True):
        keep = got.xyxy[got.scores >= conf]
        total += len(ref)
        if len(ref) and len(keep):
            iou = iou_matrix(ref.xyxy, keep)
            hits += int((iou.max(axis=1) >= 0.5).sum())
    return hits / total if total else 1.0


def adapts(cfg: Config, detector: Detector) -> bool:
    """Whether the input size is chosen per footage: adaptation on (``min_person_px`` > 0),
    no tiling, and a detector whose input size can change. The one guard: callers ask it
    before they spend time sampling frames."""
    d = cfg.detector
    return d.min_person_px > 0 and d.tile_px is None and isinstance(detector, Resizable)


def input_size_for(detector: Detector, frames: Sequence[Frame], cfg: Config) -> int:
    """The input size (long side, px) for footage like ``frames``."""
    d = cfg.detector
    if not frames or not adapts(cfg, detector):
        return d.imgsz_px
    assert isinstance(detector, Resizable)
    resize = detector.with_input_size
    sizes = candidate_sizes(cfg, frames)
    if len(sizes) == 1:
        return d.imgsz_px
    reference = [
        det[det.scores >= max(d.conf, REFERENCE_CONF)] for det in resize(sizes[-1]).detect(frames)
    ]
    if sum(len(r) for r in reference) < 3:  # nobody to judge by
        return d.imgsz_px
    for px in sizes[:-1]:
        found = detector.detect(frames) if px == d.imgsz_px else resize(px).detect(frames)
        if found_fraction(reference, found, d.conf) >= d.adapt_recall:
            return px
    return sizes[-1]


def sized_for(cfg: Config, detector: Detector, frames: Sequence[Frame]) -> Detector:
    """The detector at the input size for footage like ``frames``; itself when adaptation
    is off, tiles are on, or it has no input size to change. ``settings_of`` gives the
    settings that describe the result."""
    if not adapts(cfg, detector):
        return detector
    assert isinstance(detector, Resizable)
    px = input_size_for(detector, frames, cfg)
    return detector if px == detector.input_px else detector.with_input_size(px)


def settings_of(cfg: Config, detector: Detector) -> Config:
    """``cfg`` describing ``detector`` as it is: the input size is read from the detector
    (when it has one), so the settings a run is keyed and logged by cannot disagree with it."""
    if not isinstance(detector, Resizable) or detector.input_px == cfg.detector.imgsz_px:
        return cfg
    return replace(cfg, detector=replace(cfg.detector, imgsz_px=detector.input_px))
