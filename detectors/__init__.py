"""Person detectors. ``build_detector(cfg)`` picks one by name; heavy imports stay inside
each branch so that importing this package costs nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipeline.config import DetectorConfig
from pipeline.types import Detections, Frame
from pipeline.zoo import names

DETECTOR_NAMES = names("detector")


class Detector(Protocol):
    name: str

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """One ``Detections`` per frame, same order; boxes in original-frame pixels."""
        ...


def build_detector(cfg: DetectorConfig) -> Detector:
    name = cfg.name
    match name:
        case "yolov8n" | "yolov8s-person":
            from detectors.ultralytics_yolo import UltralyticsDetector
            from pipeline.assets import resolve

            return UltralyticsDetector(resolve(f"{name}.pt"), cfg, name=name)
        case "ssd-mobilenetv2":
            from detectors.opencv_ssd import SSDMobileNetV2Detector

            return SSDMobileNetV2Detector(cfg)
        case "hog":
            from detectors.opencv_classic import HOGDetector

            return HOGDetector(cfg)
        case "haar-fullbody":
            from detectors.opencv_classic import HaarFullBodyDetector

            return HaarFullBodyDetector(cfg)
        case (
            "fasterrcnn_resnet50_fpn_v2"
            | "retinanet_resnet50_fpn_v2"
            | "fcos_resnet50_fpn"
            | "ssdlite320_mobilenet_v3_large"
        ):
            from detectors.torchvision_det import TorchvisionDetector

            return TorchvisionDetector(name, cfg)
        case "gt" | "gt-jitter":
            raise ValueError(f"detector '{name}' exists only in `prowl eval`/`prowl bench`")
        case _ if name.endswith(".pt") or "/" in name:
            from pathlib import Path

            from detectors.ultralytics_yolo import UltralyticsDetector

            return UltralyticsDetector(Path(name), cfg, name=name)
        case _:
            valid = ", ".join(DETECTOR_NAMES)
            raise ValueError(
                f"unknown detector '{name}'; valid names: {valid}, or a path to an Ultralytics .pt"
            )
