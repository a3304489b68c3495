"""An Ultralytics YOLO detector run by OpenVINO or ONNX Runtime instead of PyTorch.

The weights are the same pinned ``.pt``; the network is exported once per letterboxed input
shape (cached, see ``pipeline.core.backends``) and the pre- and post-processing are Ultralytics'
own steps written out here: letterbox with grey (114) padding to a multiple of 32, person
scores, NMS at the configured IoU, boxes mapped back to the frame. With OpenVINO the colour
conversion and scaling run inside the compiled graph, and a batch of frames is in flight at
once (one inference request per CPU stream).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from detectors.base import nms
from pipeline.core.backends import (
    ExportKey,
    Runner,
    cached_export,
    export_onnx,
    load_runner,
    quantize_int8,
    remember,
    remembered,
    runtime_version,
)
from pipeline.core.config import DetectorConfig
from pipeline.core.files import sha256_of
from pipeline.core.types import Detections, Frame

log = logging.getLogger(__name__)

PAD_VALUE = 114
MAX_DET = 300


def letterbox_shape(height: int, width: int, imgsz: int) -> tuple[int, int, float]:
    """(padded height, padded width, gain) of Ultralytics' rectangular letterbox."""
    gain = min(imgsz / height, imgsz / width)
    new_h, new_w = round(height * gain), round(width * gain)
    return new_h + (imgsz - new_h) % 32, new_w + (imgsz - new_w) % 32, gain


def letterbox(image: NDArray[np.uint8], imgsz: int) -> tuple[NDArray[Any], float, float, float]:
    """The frame resized into the model's input with grey padding: (image, gain, pad_x, pad_y)."""
    h, w = image.shape[:2]
    out_h, out_w, gain = letterbox_shape(h, w, imgsz)
    new_h, new_w = round(h * gain), round(w * gain)
    resized = (
        image
        if (new_h, new_w) == (h, w)
        else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    )
    dw, dh = (out_w - new_w) / 2, (out_h - new_h) / 2
    top, left = round(dh - 0.1), round(dw - 0.1)
    bottom, right = out_h - new_h - top, out_w - new_w - left
    padded = cv2.copyMakeBorder(
        resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
    )
    return padded, gain, float(left), float(top)


def decode(
    pred: NDArray[np.float32],
    classes: list[int] | None,
    conf: float,
    iou: float,
    gain: float,
    pad_x: float,
    pad_y: float,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """One image's raw YOLO output (4 + nc, anchors) → person boxes (xyxy, frame pixels) and
    scores after NMS (greedy, as torchvision's: OpenCV's NMSBoxes, without torch's import)."""
    cls_scores = pred[4:] if classes is None else pred[4:][classes]
    scores = cls_scores.max(axis=0)
    keep = scores > conf
    if not keep.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    cx, cy, w, h = pred[:4, keep]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    scores = scores[keep]
    kept_np = nms(boxes, scores, iou)[:MAX_DET]
    boxes, scores = boxes[kept_np], scores[kept_np]
    boxes -= np.array([pad_x, pad_y, pad_x, pad_y], np.float32)
    boxes /= gain
    return boxes.astype(np.float32), scores.astype(np.float32)


def _fit(image: NDArray[np.uint8], shape: tuple[int, int]) -> NDArray[Any]:
    """A calibration image as a model input of ``shape``: letterboxed, then stretched if the
    calibration footage has another aspect ratio than the frames being detected."""
    padded = letterbox(image, max(shape))[0]
    if padded.shape[:2] != shape:
        padded = cv2.resize(padded, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return padded


@dataclass(frozen=True)
class ModelFacts:
    """What the exported path needs to know of an Ultralytics ``.pt`` without loading it:
    remembered per file sha256 next to the exports, so a cached export needs neither
    Ultralytics nor torch at start-up (about 3 s of imports on this CPU)."""

    classes: list[int] | None  # people classes kept (None: every class)
    end_to_end: bool


def model_facts(weights: Path, name: str) -> tuple[ModelFacts, Any]:
    """(facts, the loaded Ultralytics model or None when the facts were remembered)."""
    sha = sha256_of(weights)
    data = remembered("ultralytics", sha)
    if data is not None and "classes" in data and "end_to_end" in data:
        return ModelFacts(data["classes"], bool(data["end_to_end"])), None
    from detectors.ultralytics_yolo import is_end_to_end, load_yolo

    model, classes = load_yolo(weights, name)
    facts = ModelFacts(classes, is_end_to_end(model))
    remember("ultralytics", sha, {"classes": classes, "end_to_end": facts.end_to_end})
    return facts, model


class ExportedYoloDetector:
    """An Ultralytics detection model through OpenVINO (fp32 or int8) or ONNX Runtime. The
    ``.pt`` is loaded (with Ultralytics) only when a shape has no cached export yet."""

    def __init__(
        self,
        weights: Path,
        facts: ModelFacts,
        cfg: DetectorConfig,
        name: str,
        backend: str,
        calibration: Sequence[NDArray[np.uint8]] = (),
        model: Any = None,
    ) -> None:
        self.name = name
        self.backend = backend
        self._cfg = cfg
        self._weights = Path(weights)
        self._classes = facts.classes
        self._model = model  # the Ultralytics model, once loaded
        self._sha = sha256_of(self._weights)
        self._calibration = list(calibration)
        self._runners: dict[tuple[int, int], Runner] = {}

    def _net(self) -> Any:
        if self._model is None:
            from detectors.ultralytics_yolo import load_yolo

            self._model = load_yolo(self._weights, self.name)[0]
        return self._model.model.eval()

    @property
    def input_px(self) -> int:
        return self._cfg.imgsz_px

    def with_input_size(self, imgsz_px: int) -> ExportedYoloDetector:
        """The same model at another input size (sharing its compiled shapes)."""
        import copy

        other = copy.copy(self)
        other._cfg = replace(self._cfg, imgsz_px=imgsz_px)
        return other

    def _runner(self, height: int, width: int) -> Runner:
        shape = letterbox_shape(height, width, self._cfg.imgsz_px)[:2]
        if shape in self._runners:
            return self._runners[shape]
        import hashlib

        precision = self._cfg.precision
        calib: list[NDArray[np.float32]] = []
        calib_digest = ""
        if precision == "int8":
            calib = [self._to_float(_fit(im, shape)) for im in self._calibration]
            calib_digest = hashlib.sha256(b"".join(c.tobytes() for c in calib)).hexdigest()
        key = ExportKey(
            f"{Path(self.name).stem}-{shape[0]}x{shape[1]}",
            self._sha,
            (1, 3, *shape),
            self.backend,
            precision,
            runtime_version(self.backend),
            calib_digest,
        )

        def make(folder: Path) -> list[str]:
            import torch

            export_onnx(self._net(), torch.zeros(1, 3, *shape), folder / "model.onnx", False)
            if precision != "int8":
                return ["model.onnx"]
            quantize_int8(folder / "model.onnx", calib, folder / "model.xml")
            (folder / "model.onnx").unlink()
            return ["model.xml", "model.bin"]

        folder = cached_export(key, make)
        runner = load_runner(folder, self.backend, uint8_bgr_nhwc=True, scale=255.0)
        self._runners[shape] = runner
        return runner

    @staticmethod
    def _to_float(padded: NDArray[np.uint8]) -> NDArray[np.float32]:
        rgb = padded[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        return np.ascontiguousarray(rgb)

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        if not frames:
            return []
        out: list[Detections | None] = [None] * len(frames)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(frames):
            by_size.setdefault((f.height_px, f.width_px), []).append(i)
        for (h, w), idx in by_size.items():
            runner = self._runner(h, w)
            boxed = [letterbox(frames[i].image, self._cfg.imgsz_px) for i in idx]
            if runner.backend == "openvino":  # uint8 BGR NHWC in, the graph converts
                inputs: list[NDArray[Any]] = [b[0][None] for b in boxed]
            else:
                inputs = [self._to_float(b[0]) for b in boxed]
            for i, b, pred in zip(idx, boxed, runner.run_many(inputs), strict=True):
                boxes, scores = decode(
                    pred[0], self._classes, self._cfg.conf, self._cfg.iou, b[1], b[2], b[3]
                )
                frame = frames[i]
                out[i] = Detections(boxes, scores).clipped(frame.width_px, frame.height_px)
        return [d for d in out if d is not None]
