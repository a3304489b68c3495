"""What every embedder shares: the ``Embedder`` protocol, L2 normalisation and crop checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from pipeline.core.vectors import l2_normalise


class Embedder(Protocol):
    name: str
    dim: int
    weights: str | None  # the checkpoint file it loaded, for those that take one

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """(N, dim) float32, rows L2-normalised. Crops are H×W×3 uint8 BGR, any size ≥ 1 px."""
        ...


def validate_crops(crops: Sequence[NDArray[np.generic]]) -> list[NDArray[np.uint8]]:
    """Every crop as H×W×3 uint8 BGR (grey, alpha, 16-bit and float images converted);
    an empty crop (a box wholly outside its frame) is a QueryError naming its position."""
    from pipeline.core.crops import to_bgr_uint8
    from pipeline.core.errors import QueryError

    out = []
    for i, crop in enumerate(crops):
        arr = np.asarray(crop)
        if arr.ndim < 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise QueryError(
                f"crop {i} is empty (shape {arr.shape}); its box lies outside the frame"
            )
        out.append(to_bgr_uint8(arr))
    return out


FLIP_SUFFIX = "+flip"


class FlipAveraged:
    """Test-time augmentation: each crop and its mirror image embedded in the same batch,
    the two vectors averaged and re-normalised (a person seen from the left looks like one
    seen from the right). Twice the embedding work; the name says it, so a gallery built
    with it is queried with it."""

    def __init__(self, base: Embedder) -> None:
        self.base = base
        self.name = base.name + FLIP_SUFFIX
        self.dim = base.dim
        self.weights = base.weights

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        crops = list(crops)
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        both = self.base.embed([*crops, *(np.ascontiguousarray(c[:, ::-1]) for c in crops)])
        return l2_normalise(both[: len(crops)] + both[len(crops) :])
