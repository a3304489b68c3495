"""Footage with idle time, made from a real clip: the test and benchmark input of motion
gating (``prowl bench-motion``). Never used to choose a default.

Real surveillance footage is mostly an empty scene. ``make_idle_clip`` cuts a clip into
``busy`` stretches and puts empty stretches between them, each frame of which is the
scene's *background plate* (the per-pixel median of frames spread over the clip: people
move, the floor does not), with what a real empty camera still shows:

- sensor noise: Gaussian, σ = ``noise`` grey levels, new in every frame;
- lighting drift: a global gain that wanders slowly (±``drift`` over a minute), and
- compression: the clip is written as Motion-JPEG, so every frame carries its own artefacts.

A frozen frame would make gating look better than it is; this does not. The layout
(which output frame is which source frame) is returned, so results on the busy parts can
be compared frame by frame with the source."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray


@dataclass
class IdleClip:
    path: Path
    fps: float
    frames: int
    idle_frames: int
    source_of: list[int] = field(default_factory=list)  # output frame -> source frame, -1 idle

    @property
    def idle_fraction(self) -> float:
        return self.idle_frames / max(1, self.frames)


def background_plate(video: Path, samples: int = 41) -> NDArray[np.uint8]:
    """The per-pixel median of ``samples`` frames spread over ``video``."""
    cap = cv2.VideoCapture(str(video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or samples
    picks = np.linspace(0, max(0, n - 1), samples).astype(int)
    stack = []
    for i in picks:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, img = cap.read()
        if ok:
            stack.append(img)
    cap.release()
    if not stack:
        raise ValueError(f"{video}: no frame could be read")
    return np.median(np.stack(stack), axis=0).astype(np.uint8)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def make_idle_clip(
    video: Path,
    out: Path,
    busy_frames: int,
    idle_fraction: float,
    chunks: int = 3,
    noise: float = 2.5,
    drift: float = 0.04,
    seed: int = 0,
) -> IdleClip:
    """``busy_frames`` frames of ``video`` (from its start) in ``chunks`` stretches, with
    idle stretches before each so that ``idle_fraction`` of the output is empty scene."""
    if not 0 <= idle_fraction < 1:
        raise ValueError("idle_fraction must be within [0, 1)")
    rng = np.random.default_rng(seed)
    plate = background_plate(video).astype(np.float32)
    cap = cv2.VideoCapture(str(video))
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    h, w = plate.shape[:2]
    idle_total = round(busy_frames * idle_fraction / (1 - idle_fraction))
    per_busy = _split(busy_frames, chunks)
    per_idle = _split(idle_total, chunks)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise ValueError(f"cannot write {out}")
    source_of: list[int] = []
    src = 0
    phase = rng.uniform(0, 2 * math.pi)
    try:
        for idle_n, busy_n in zip(per_idle, per_busy, strict=True):
            for _ in range(idle_n):
                t = len(source_of) / fps
                gain = 1 + drift * math.sin(2 * math.pi * t / 60 + phase)
                frame = plate * gain + rng.normal(0, noise, plate.shape).astype(np.float32)
                writer.write(np.clip(frame, 0, 255).astype(np.uint8))
                source_of.append(-1)
            for _ in range(busy_n):
                ok, img = cap.read()
                if not ok:
                    break
                writer.write(img)
                source_of.append(src)
                src += 1
    finally:
        writer.release()
        cap.release()
    idle = sum(1 for s in source_of if s < 0)
    return IdleClip(out, fps, len(source_of), idle, source_of)
