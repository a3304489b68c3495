"""Person detectors. ``build_detector(cfg)`` picks one by name; heavy imports stay inside
each branch so that importing this package costs nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectors.base import Detector
from pipeline.core.config import DetectorConfig
from pipeline.core.types import Frame
from pipeline.core.zoo import names

__all__ = ["DETECTOR_NAMES", "Detector", "build_detector", "build_for_footage"]

DETECTOR_NAMES = names("detector")


def build_detector(cfg: DetectorConfig, calibration: Sequence[Frame] = ()) -> Detector:
    """The configured detector on the configured backend, tiled when ``tile_px`` is set.
    ``calibration``: frames of the user's footage for int8 quantisation (the sample video's
    when empty)."""
    if cfg.tile_px is None:
        return _build(cfg, calibration)
    from dataclasses import replace

    from detectors.tiled import TiledDetector

    full = _build(replace(cfg, tile_px=None), calibration)
    tiler = _build(replace(cfg, tile_px=None, imgsz_px=cfg.tile_px), calibration)
    # Across passes a small person's full-frame box is looser than its tile box: merged at
    # IoU 0.5 (0.7 left a duplicate of a fifth of the people on a 4×4 mosaic of vtest.avi).
    return TiledDetector(full, tiler, cfg.tile_px, cfg.tile_overlap, min(cfg.iou, 0.5))


def _build(cfg: DetectorConfig, calibration: Sequence[Frame]) -> Detector:
    name = cfg.name
    match name:
        case "yolov8n" | "yolov8s-person":
            from pipeline.core.assets import resolve

            return _yolo(resolve(f"{name}.pt"), cfg, name, calibration)
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

            return _yolo(Path(name), cfg, name, calibration)
        case _:
            valid = ", ".join(DETECTOR_NAMES)
            raise ValueError(
                f"unknown detector '{name}'; valid names: {valid}, or a path to an Ultralytics .pt"
            )


def _yolo(weights: Path, cfg: DetectorConfig, name: str, calibration: Sequence[Frame]) -> Detector:
    from pipeline.core.backends import resolve_backend

    backend = resolve_backend(cfg.backend, cfg.device)
    if backend != "torch":
        from pipeline.core.errors import AssetError

        if not Path(weights).is_file():
            raise AssetError(f"detector weights {weights} not found; pass an existing .pt file")
        from detectors.yolo_export import ExportedYoloDetector, model_facts

        facts, model = model_facts(Path(weights), name)
        if facts.end_to_end:
            if cfg.backend != "auto":
                raise ValueError(f"{name} has an end-to-end head; only backend torch runs it")
            backend = "torch"
        else:
            if cfg.precision == "int8" and backend != "openvino":
                raise ValueError(
                    "detector precision int8 needs backend openvino (or auto on a CPU)"
                )
            images = [f.image for f in calibration] or (
                _sample_frames(cfg.calibration_frames) if cfg.precision == "int8" else []
            )
            return ExportedYoloDetector(weights, facts, cfg, name, backend, images, model)
    from detectors.ultralytics_yolo import UltralyticsDetector, load_yolo

    if cfg.precision != "fp32":
        raise ValueError("detector precision int8 needs backend openvino")
    model, classes = load_yolo(weights, name)
    return UltralyticsDetector(model, classes, cfg, name)


def build_for_footage(cfg: DetectorConfig, footage: Any) -> Detector:
    """The detector for one video file: with precision int8 it is calibrated on that video's
    own frames (``detector.calibration_frames`` spread over it), whichever entry point asks
    (CLI, web job, Ray worker, benchmark), so the run key's ``calib=footage`` is true."""
    if cfg.precision != "int8":
        return build_detector(cfg)
    from pathlib import Path

    from pipeline.core.video import sample_frames

    return build_detector(cfg, sample_frames(Path(footage), cfg.calibration_frames))


def _sample_frames(n: int) -> list[np.ndarray]:
    """``n`` frames spread over the sample video: int8 calibration when no footage is given."""
    from pipeline.core.assets import resolve
    from pipeline.core.video import sample_frames

    return [f.image for f in sample_frames(resolve("vtest.avi"), n)]
