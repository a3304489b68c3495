"""SSD-MobileNetV2 (TensorFlow Object Detection API, COCO) run by OpenCV's DNN module.
Person is class 1; scores are the model's own 0..1 confidences."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.core.assets import resolve
from pipeline.core.config import DetectorConfig
from pipeline.core.types import Detections, Frame

INPUT_PX = 300  # the model's fixed input size


class SSDMobileNetV2Detector:
    name = "ssd-mobilenetv2"

    def __init__(self, cfg: DetectorConfig) -> None:
        self._cfg = cfg
        self._net = cv2.dnn.readNetFromTensorflow(
            str(resolve("ssd_mobilenet_v2_coco.pb")), str(resolve("ssd_mobilenet_v2_coco.pbtxt"))
        )

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        if not frames:
            return []
        blob = cv2.dnn.blobFromImages(
            [f.image for f in frames], size=(INPUT_PX, INPUT_PX), swapRB=True
        )
        self._net.setInput(blob)
        raw = np.asarray(self._net.forward()).reshape(
            -1, 7
        )  # [image, class, score, x1, y1, x2, y2]
        out = []
        for i, frame in enumerate(frames):
            rows = raw[(raw[:, 0] == i) & (raw[:, 1] == 1) & (raw[:, 2] >= self._cfg.conf)]
            wh = np.array([frame.width_px, frame.height_px] * 2, np.float32)
            dets = Detections(rows[:, 3:7] * wh, rows[:, 2])
            out.append(dets.clipped(frame.width_px, frame.height_px))
        return out
