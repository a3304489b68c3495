"""The detector's input size chosen for the footage: small people get a larger input.

A 640-px detector sees the people of 768×576 campus footage at 80-120 px and finds them; on
crowded street footage or a wide view the same people are 20-30 px at its input and most are
missed (on the 4×4 mosaic of `prowl make-crowd`, recall 0.23 at 640 px against 0.56 at
1280). So each video is probed first: the detector runs on a few frames spread over the whole
source, and when the people it finds there are mostly shorter than ``min_person_px`` at its
input, the input grows (a multiple of 32) until the median person would be that tall, up to
``max_imgsz_px`` and never beyond the footage's own resolution. The probe covers the whole
source whatever the time window, so every window of a video gets the same size (and the same
run: the size is part of the run's settings key)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from detectors.base import Detector
from pipeline.config import Config
from pipeline.types import Frame

PROBE_FRAMES = 8


def input_size_for(detector: Detector, frames: Sequence[Frame], cfg: Config) -> int:
    """The input size (long side, px) for footage like ``frames``."""
    d = cfg.detector
    if d.min_person_px == 0 or not frames:
        return d.imgsz_px
    heights: list[float] = []
    for frame, det in zip(frames, detector.detect(frames), strict=True):
        gain = d.imgsz_px / max(frame.height_px, frame.width_px)
        heights.extend(((det.xyxy[:, 3] - det.xyxy[:, 1]) * gain).tolist())
    if len(heights) < 3:  # nobody to judge by
        return d.imgsz_px
    median = float(np.median(heights))
    if median >= d.min_person_px:
        return d.imgsz_px
    native = max(max(f.height_px, f.width_px) for f in frames)
    cap = min(d.max_imgsz_px, math.ceil(native / 32) * 32)
    want = math.ceil(d.imgsz_px * d.min_person_px / median / 32) * 32
    return max(d.imgsz_px, min(cap, want))


def sized_for(cfg: Config, detector: Detector, frames: Sequence[Frame]) -> tuple[Config, Detector]:
    """(config, detector) with the input size for footage like ``frames``; unchanged when
    adaptation is off, tiles are on, or the detector has no input size to change."""
    resize = getattr(detector, "with_input_size", None)
    if resize is None or cfg.detector.tile_px is not None or cfg.detector.min_person_px == 0:
        return cfg, detector
    px = input_size_for(detector, frames, cfg)
    if px == cfg.detector.imgsz_px:
        return cfg, detector
    return replace(cfg, detector=replace(cfg.detector, imgsz_px=px)), resize(px)
