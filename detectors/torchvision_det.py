"""torchvision's COCO detectors, person class (label 1). Weights come through the asset
resolver: torch's hub cache if the file is there, else torchvision's download URL when online;
offline without the file the error says where to put it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pipeline.core.assets import resolve
from pipeline.core.config import DetectorConfig
from pipeline.core.types import Detections, Frame
from pipeline.core.zoo import TORCHVISION_WEIGHTS

MODELS = (
    "fasterrcnn_resnet50_fpn_v2",
    "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn",
    "ssdlite320_mobilenet_v3_large",
)


class TorchvisionDetector:
    def __init__(self, name: str, cfg: DetectorConfig) -> None:
        import torchvision.models.detection as tvd

        weights = resolve(TORCHVISION_WEIGHTS[name])  # before building: fail fast offline
        self.name = name
        self._cfg = cfg
        model = getattr(tvd, name)(weights=None, weights_backbone=None)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        transform = getattr(model, "transform", None)
        if transform is not None and name != "ssdlite320_mobilenet_v3_large":
            # the short side at 3/4 of imgsz: a 768×576 frame runs at 640×480 with the default
            transform.min_size = (cfg.imgsz_px * 3 // 4,)
            transform.max_size = cfg.imgsz_px
        self._device = torch.device(cfg.device)
        self._model = model.eval().to(self._device)

    @torch.inference_mode()
    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        images = [
            torch.from_numpy(np.ascontiguousarray(f.image[..., ::-1]))
            .permute(2, 0, 1)
            .float()
            .div(255)
            .to(self._device)
            for f in frames
        ]
        results = self._model(images) if images else []
        out = []
        for frame, res in zip(frames, results, strict=True):
            keep = (res["labels"] == 1) & (res["scores"] >= self._cfg.conf)
            dets = Detections(res["boxes"][keep].cpu().numpy(), res["scores"][keep].cpu().numpy())
            out.append(dets.clipped(frame.width_px, frame.height_px))
        return out
