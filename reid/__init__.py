"""Re-identification embedders: crops in, L2-normalised float32 vectors out.
``build_embedder(cfg)`` picks one by name; heavy imports stay inside each branch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from pipeline.config import ReidConfig

EMBEDDER_NAMES = (
    "mobilenetv2-imagenet",
    "efficientnet-lite0-imagenet",
    "resnet50-imagenet",
    "hsv",
    "torchreid:<arch>",
)


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """(N, dim) float32, rows L2-normalised. Crops are H×W×3 uint8 BGR, any size ≥ 1 px."""
        ...


def l2_normalise(x: NDArray[np.floating]) -> NDArray[np.float32]:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def validate_crops(crops: Sequence[NDArray[np.generic]]) -> list[NDArray[np.uint8]]:
    """Every crop as H×W×3 uint8 BGR (grey, alpha, 16-bit and float images converted);
    an empty crop (a box wholly outside its frame) is a QueryError naming its position."""
    from pipeline.crops import to_bgr_uint8
    from pipeline.errors import QueryError

    out = []
    for i, crop in enumerate(crops):
        arr = np.asarray(crop)
        if arr.ndim < 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise QueryError(
                f"crop {i} is empty (shape {arr.shape}); its box lies outside the frame"
            )
        out.append(to_bgr_uint8(arr))
    return out


def build_embedder(cfg: ReidConfig) -> Embedder:
    match cfg.name:
        case "mobilenetv2-imagenet":
            from reid.backbones import mobilenetv2_imagenet

            return mobilenetv2_imagenet(cfg)
        case "efficientnet-lite0-imagenet":
            from reid.backbones import efficientnet_lite0_imagenet

            return efficientnet_lite0_imagenet(cfg)
        case "resnet50-imagenet":
            from reid.backbones import resnet50_imagenet

            return resnet50_imagenet(cfg)
        case "hsv":
            from reid.hsv import HSVHistogramEmbedder

            return HSVHistogramEmbedder()
        case _ if cfg.name.startswith("torchreid:"):
            from reid.torchreid_embedder import TorchreidEmbedder

            return TorchreidEmbedder(cfg.name.split(":", 1)[1], cfg)
        case _:
            raise ValueError(
                f"unknown re-ID embedder '{cfg.name}'; valid names: {', '.join(EMBEDDER_NAMES)}"
            )
