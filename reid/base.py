"""What every embedder shares: the ``Embedder`` protocol, L2 normalisation and crop checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


class Embedder(Protocol):
    name: str
    dim: int
    weights: str | None  # the checkpoint file it loaded, for those that take one

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
