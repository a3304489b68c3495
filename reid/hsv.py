"""The classical pre-deep baseline: colour histograms over horizontal stripes."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.core.vectors import l2_normalise
from reid.base import validate_crops

_STRIPES = 6
_H_BINS, _S_BINS, _V_BINS = 16, 8, 8
_SIZE_WH = (64, 128)


class HSVHistogramEmbedder:
    """Per stripe (6 horizontal bands of a 128×64 resize): 16 hue, 8 saturation and 8 value
    bins, each band's histogram normalised to sum 1; square-rooted (Hellinger) so the dot
    product of two L2-normalised vectors is the Bhattacharyya coefficient. 192-d."""

    name = "hsv"
    dim = _STRIPES * (_H_BINS + _S_BINS + _V_BINS)
    weights: str | None = None
    input_desc = "128×64 resize, HSV, 6 stripes × (16 H + 8 S + 8 V) bins"

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        crops = validate_crops(crops)
        out = np.zeros((len(crops), self.dim), np.float32)
        band = _SIZE_WH[1] // _STRIPES
        for i, crop in enumerate(crops):
            hsv = cv2.cvtColor(
                cv2.resize(crop, _SIZE_WH, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV
            )
            parts = []
            for s in range(_STRIPES):
                stripe = hsv[s * band : (s + 1) * band].reshape(-1, 3)
                h = np.bincount(stripe[:, 0].astype(np.int64) * _H_BINS // 180, minlength=_H_BINS)
                sat = np.bincount(stripe[:, 1].astype(np.int64) * _S_BINS // 256, minlength=_S_BINS)
                val = np.bincount(stripe[:, 2].astype(np.int64) * _V_BINS // 256, minlength=_V_BINS)
                hist = np.concatenate([h, sat, val]).astype(np.float32)
                parts.append(hist / max(float(hist.sum()), 1.0))
            out[i] = np.sqrt(np.concatenate(parts))
        return l2_normalise(out)
