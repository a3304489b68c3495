"""The one L2 normalisation: re-ID vectors are compared by cosine, so every vector prowl
stores, pools or expands is made unit length here."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def l2_normalise(x: NDArray[np.floating]) -> NDArray[np.float32]:
    """``x`` (one vector, or rows of vectors) scaled to unit length along its last axis, as
    float32; a zero vector stays zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)
