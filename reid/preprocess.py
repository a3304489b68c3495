"""A crop as a network input, the one way every embedder and training run makes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def resize_crops(crops: Sequence[NDArray[np.uint8]], hw: tuple[int, int]) -> NDArray[np.uint8]:
    """BGR crops resized to ``hw``, as one (N, H, W, 3) uint8 batch."""
    h, w = hw
    batch = np.empty((len(crops), h, w, 3), np.uint8)
    for i, crop in enumerate(crops):
        batch[i] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    return batch


def preprocess(
    crops: Sequence[NDArray[np.uint8]],
    hw: tuple[int, int],
    mean: Any = IMAGENET_MEAN,
    std: Any = IMAGENET_STD,
) -> NDArray[np.float32]:
    """BGR crops as a network input: (N, H, W, 3) RGB, resized to ``hw``, normalised."""
    batch = resize_crops(crops, hw)
    mean_ = np.asarray(mean, np.float32)
    std_ = np.asarray(std, np.float32)
    return np.ascontiguousarray((batch[..., ::-1].astype(np.float32) - mean_) / std_)
