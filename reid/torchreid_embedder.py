"""Any torchreid model (OSNet and others) from a user's checkpoint: `--reid torchreid:ARCH`
with `reid.weights` (or `--reid-weights`) naming the checkpoint. Needs `pip install torchreid`
(not a core dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.core.config import ReidConfig
from pipeline.core.errors import AssetError
from pipeline.core.vectors import l2_normalise
from reid.base import validate_crops


class TorchreidEmbedder:
    def __init__(self, arch: str, cfg: ReidConfig) -> None:
        if not cfg.weights or not Path(cfg.weights).is_file():
            raise AssetError(
                f"torchreid:{arch} needs a checkpoint: pass --reid-weights FILE.pth "
                "(a model trained with torchreid)"
            )
        try:
            from torchreid.utils import FeatureExtractor
        except ImportError:
            raise AssetError(
                "torchreid is not installed; `pip install torchreid` in .venv to use "
                f"torchreid:{arch}"
            ) from None
        self.name = f"torchreid:{arch}"
        self.weights: str | None = str(Path(cfg.weights).resolve())
        self._extractor = FeatureExtractor(
            model_name=arch, model_path=str(cfg.weights), device=cfg.device
        )
        probe = self._extractor([np.zeros((256, 128, 3), np.uint8)])
        self.dim = int(probe.shape[1])
        self.input_desc = "torchreid's own (256×128 RGB, ImageNet mean/std)"

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        rgb = [np.ascontiguousarray(c[..., ::-1]) for c in validate_crops(crops)]
        return l2_normalise(self._extractor(rgb).cpu().numpy())
