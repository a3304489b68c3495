"""What every detector is: the ``Detector`` protocol (importable without the package's
builder, so wrappers such as the tiler can name it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.core.types import Detections, Frame


def nms(xyxy: NDArray[np.float32], scores: NDArray[np.float32], iou: float) -> NDArray[np.int64]:
    """Indices kept by greedy NMS (a box goes when its IoU with a better one exceeds ``iou``),
    best score first; boxes scored 0 are dropped. OpenCV's, so no torch import is needed."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, iou)
    return np.asarray(kept, np.int64).reshape(-1)


class Detector(Protocol):
    name: str

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """One ``Detections`` per frame, same order; boxes in original-frame pixels."""
        ...


@runtime_checkable
class Resizable(Protocol):
    """A detector whose input size (long side, px) can change. ``input_px`` is the size it
    runs at: the one truth the run's settings and key are read from (``settings_of``)."""

    name: str

    @property
    def input_px(self) -> int: ...

    def detect(self, frames: Sequence[Frame]) -> list[Detections]: ...

    def with_input_size(self, imgsz_px: int) -> Resizable:
        """The same model at another input size."""
        ...
