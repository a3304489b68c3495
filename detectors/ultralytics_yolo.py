"""Ultralytics YOLO restricted to people, batched over frames, with no network use."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.assets import cache_dir
from pipeline.core.config import DetectorConfig
from pipeline.core.errors import AssetError
from pipeline.core.types import Detections, Frame

log = logging.getLogger(__name__)


def _quiet_offline_ultralytics() -> None:
    """Must run before ``import ultralytics``: its settings, online check and auto-installer
    are read at import time. No settings sync, no pip installs, no font or asset downloads."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    config_dir = cache_dir() / "ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))


def load_yolo(weights: Path, name: str) -> tuple[Any, list[int] | None]:
    """(Ultralytics YOLO model, the class ids that are people, or None = every class)."""
    if not Path(weights).is_file():
        raise AssetError(f"detector weights {weights} not found; pass an existing .pt file")
    _quiet_offline_ultralytics()
    from ultralytics import YOLO
    from ultralytics.utils import SETTINGS

    SETTINGS.update({"sync": False})
    try:
        model = YOLO(str(weights), task="detect")
        names = {int(k): str(v).lower() for k, v in model.names.items()}
    except Exception as exc:  # Ultralytics/torch raise anything for a foreign file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise AssetError(
            f"{weights} is not an Ultralytics detection model ({reason}); pass a .pt "
            "trained with Ultralytics (e.g. yolov8n.pt) or a name from `prowl models`"
        ) from None
    if getattr(model, "task", "detect") != "detect":
        raise AssetError(
            f"{weights} is an Ultralytics {model.task} model, not a detector; "
            "pass a detection model (e.g. yolov8n.pt)"
        )
    person = [k for k, v in names.items() if v == "person"]
    log.info("detector %s: classes kept %s", name, person or "all")
    return model, (person if person else None)


def is_end_to_end(model: Any) -> bool:
    """YOLOv10/YOLO26-style heads output final boxes (no NMS): the exported path does not
    decode them, so they stay on torch."""
    head = model.model.model[-1]
    return bool(getattr(head, "end2end", False))


class UltralyticsDetector:
    """Any Ultralytics detection model on PyTorch; keeps the classes that are people.

    COCO models: class 0 ``person``. Models whose class names are all kinds of person
    (e.g. a ``Normal``/``Fall`` people model) keep every class.
    """

    backend = "torch"

    def __init__(self, model: Any, classes: list[int] | None, cfg: DetectorConfig, name: str):
        self.name = name
        self._cfg = cfg
        self._model = model
        self._classes = classes

    @property
    def input_px(self) -> int:
        return self._cfg.imgsz_px

    def with_input_size(self, imgsz_px: int) -> UltralyticsDetector:
        """The same model at another input size."""
        from dataclasses import replace

        return UltralyticsDetector(
            self._model, self._classes, replace(self._cfg, imgsz_px=imgsz_px), self.name
        )

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        if not frames:
            return []
        results = self._model.predict(
            [f.image for f in frames],
            imgsz=self._cfg.imgsz_px,
            conf=self._cfg.conf,
            iou=self._cfg.iou,
            classes=self._classes,
            device=self._cfg.device,
            verbose=False,
            batch=len(frames),
        )
        out = []
        for frame, res in zip(frames, results, strict=True):
            boxes: Any = res.boxes
            xyxy = np.asarray(boxes.xyxy.cpu().numpy(), dtype=np.float32)
            scores = np.asarray(boxes.conf.cpu().numpy(), dtype=np.float32)
            out.append(Detections(xyxy, scores).clipped(frame.width_px, frame.height_px))
        return out
