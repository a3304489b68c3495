"""OpenCV's classical people detectors (opencv-python 4.x): HOG + linear SVM (Dalal &
Triggs 2005) and the Haar full-body cascade. Their raw scores (SVM margin, cascade level
weight) are mapped to 0..1 with a logistic so one threshold can be swept for all detectors."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from detectors.base import nms
from pipeline.core.config import DetectorConfig
from pipeline.core.types import Detections, Frame


def _logistic(x: np.ndarray, scale: float) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-scale * np.asarray(x, np.float64)))).astype(np.float32)


def _kept(xyxy: np.ndarray, scores: np.ndarray, conf: float, iou: float) -> Detections:
    """Boxes scoring above ``conf``, then ``detectors.base.nms``."""
    above = np.flatnonzero(scores > conf)
    if len(above) == 0:
        return Detections.empty()
    keep = above[nms(xyxy[above].astype(np.float32), scores[above].astype(np.float32), iou)]
    return Detections(xyxy[keep], scores[keep])


def _scaled(frame: Frame, imgsz_px: int) -> tuple[np.ndarray, float]:
    """Work at most ``imgsz_px`` on the long side (the classical detectors' cost grows with
    pixels); boxes are scaled back to the original frame."""
    h, w = frame.image.shape[:2]
    scale = min(1.0, imgsz_px / max(h, w))
    if scale == 1.0:
        return frame.image, 1.0
    return cv2.resize(
        frame.image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
    ), scale


HOG_UPSCALE = 2.0
HOG_MAX_SIDE_PX = 1600
HOG_BODY_WH = (0.55, 0.8)  # body size as a fraction of the detection window


class HOGDetector:
    name = "hog"

    def __init__(self, cfg: DetectorConfig) -> None:
        self._cfg = cfg
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        out = []
        for frame in frames:
            # The window is 64×128 px with the person filling its middle, so people under
            # ~100 px tall (most surveillance footage) are found only on an upscaled frame.
            h, w = frame.image.shape[:2]
            scale = min(HOG_UPSCALE, HOG_MAX_SIDE_PX / max(h, w))
            size = (round(w * scale), round(h * scale))
            img = cv2.resize(frame.image, size, interpolation=cv2.INTER_LINEAR)
            rects, weights = self._hog.detectMultiScale(
                img, winStride=(8, 8), padding=(8, 8), scale=1.05
            )
            boxes = np.asarray(rects, np.float32).reshape(-1, 4) / scale
            # from the detection window to the body inside it (the training crops' margins)
            cx, cy = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
            bw, bh = boxes[:, 2] * HOG_BODY_WH[0], boxes[:, 3] * HOG_BODY_WH[1]
            xyxy = np.c_[cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
            scores = _logistic(np.asarray(weights).reshape(-1), 2.0)
            dets = _kept(xyxy, scores, self._cfg.conf, self._cfg.iou)
            out.append(dets.clipped(frame.width_px, frame.height_px))
        return out


class HaarFullBodyDetector:
    name = "haar-fullbody"

    def __init__(self, cfg: DetectorConfig) -> None:
        self._cfg = cfg
        path = cv2.data.haarcascades + "haarcascade_fullbody.xml"  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():  # pragma: no cover - ships with opencv-python 4.x
            raise RuntimeError(f"cannot load {path}")

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        out = []
        for frame in frames:
            img, scale = _scaled(frame, self._cfg.imgsz_px)
            grey = cv2.equalizeHist(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
            rects, _levels, weights = self._cascade.detectMultiScale3(
                grey, scaleFactor=1.05, minNeighbors=2, minSize=(24, 48), outputRejectLevels=True
            )
            boxes = np.asarray(rects, np.float32).reshape(-1, 4) / scale
            xyxy = np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:]]
            scores = _logistic(np.asarray(weights, np.float64).reshape(-1), 1.0)
            dets = _kept(xyxy, scores, self._cfg.conf, self._cfg.iou)
            out.append(dets.clipped(frame.width_px, frame.height_px))
        return out
