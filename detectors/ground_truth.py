"""Ground-truth 'detectors' for evaluation: the annotated boxes (score 1), optionally with a
seeded localisation error, to measure how box quality alone moves re-ID results."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from pipeline.core.types import Detections, Frame


class GroundTruthDetector:
    """``boxes[i]`` are the annotated boxes of frame index i. With ``jitter`` = s, each box's
    centre moves by N(0, s·w), N(0, s·h) and its width/height scale by exp(N(0, s)), from a
    generator seeded by (seed, frame index), so results do not depend on batching."""

    def __init__(
        self, boxes: Sequence[NDArray[np.float32]], jitter: float = 0.0, seed: int = 0
    ) -> None:
        self._boxes = [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes]
        self._jitter = float(jitter)
        self._seed = seed
        self.name = "gt" if jitter == 0 else f"gt-jitter:{jitter:g}"

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        out = []
        for frame in frames:
            boxes = self._boxes[frame.index].copy()
            if self._jitter > 0 and len(boxes):
                rng = np.random.default_rng((self._seed, frame.index))
                w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
                cx = (boxes[:, 0] + boxes[:, 2]) / 2 + rng.normal(0, self._jitter, len(w)) * w
                cy = (boxes[:, 1] + boxes[:, 3]) / 2 + rng.normal(0, self._jitter, len(h)) * h
                w = w * np.exp(rng.normal(0, self._jitter, len(w)))
                h = h * np.exp(rng.normal(0, self._jitter, len(h)))
                boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(
                    np.float32
                )
            dets = Detections(boxes, np.ones(len(boxes), np.float32))
            out.append(dets.clipped(frame.width_px, frame.height_px))
        return out
