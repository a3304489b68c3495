"""Person detectors. ``build_detector(cfg)`` picks one by name; heavy imports stay inside
each branch so that importing this package costs nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipeline.config import DetectorConfig
from pipeline.types import Detections, Frame

DETECTOR_NAMES = ("yolov8n",)


class Detector(Protocol):
    name: str

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """One ``Detections`` per frame, same order; boxes in original-frame pixels."""
        ...


def build_detector(cfg: DetectorConfig) -> Detector:
    name = cfg.name
    match name:
        case "yolov8n":
            from detectors.ultralytics_yolo import UltralyticsDetector
            from pipeline.assets import resolve

            return UltralyticsDetector(resolve("yolov8n.pt"), cfg, name=name)
        case _ if name.endswith(".pt"):
            from pathlib import Path

            from detectors.ultralytics_yolo import UltralyticsDetector

            return UltralyticsDetector(Path(name), cfg, name=name)
        case _:
            valid = ", ".join(DETECTOR_NAMES)
            raise ValueError(
                f"unknown detector '{name}'; valid names: {valid}, or a path to an Ultralytics .pt"
            )
