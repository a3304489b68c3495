"""Core value types shared by every stage. numpy only: importing this is cheap.

Coordinate convention everywhere: ``xyxy`` = (x1, y1, x2, y2) in pixels of the original
frame, x to the right, y down, x2/y2 exclusive-ish (floats; crops use floor/ceil).
Images are H×W×3 uint8 in BGR order (OpenCV's), unless a docstring says otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame.

    image: H×W×3 uint8, BGR. index: frame number in the source (0-based, counting every
    frame, not only the ones kept by the stride). timestamp_s: presentation time in seconds
    from the start of the source. source_id: camera id.
    """

    image: NDArray[np.uint8]
    index: int
    timestamp_s: float
    source_id: str

    @property
    def height_px(self) -> int:
        return int(self.image.shape[0])

    @property
    def width_px(self) -> int:
        return int(self.image.shape[1])


def _as_array(value: Any, dtype: type[np.generic]) -> NDArray[Any]:
    arr = np.asarray(value, dtype=dtype)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True)
class Detections:
    """The people found in one frame, columnar and immutable.

    xyxy: (N, 4) float32, original-frame pixels. scores: (N,) float32 in 0..1 (person
    confidence). track_ids: optional (N,) int64. embeddings: optional (N, D) float32,
    L2-normalised rows.
    """

    xyxy: NDArray[np.float32]
    scores: NDArray[np.float32]
    track_ids: NDArray[np.int64] | None = None
    embeddings: NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        xyxy = _as_array(self.xyxy, np.float32).reshape(-1, 4)
        scores = _as_array(self.scores, np.float32).reshape(-1)
        n = xyxy.shape[0]
        if scores.shape[0] != n:
            raise ValueError(f"scores has {scores.shape[0]} rows, xyxy has {n}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", scores)
        if self.track_ids is not None:
            tids = _as_array(self.track_ids, np.int64).reshape(-1)
            if tids.shape[0] != n:
                raise ValueError(f"track_ids has {tids.shape[0]} rows, xyxy has {n}")
            object.__setattr__(self, "track_ids", tids)
        if self.embeddings is not None:
            emb = _as_array(self.embeddings, np.float32)
            if emb.ndim != 2 or emb.shape[0] != n:
                raise ValueError(f"embeddings must be (N={n}, D), got {emb.shape}")
            object.__setattr__(self, "embeddings", emb)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: NDArray[np.bool_] | NDArray[np.integer] | slice) -> Detections:
        """Select rows with a boolean mask, an integer index array or a slice."""
        return Detections(
            xyxy=self.xyxy[index],
            scores=self.scores[index],
            track_ids=None if self.track_ids is None else self.track_ids[index],
            embeddings=None if self.embeddings is None else self.embeddings[index],
        )

    def with_embeddings(self, embeddings: NDArray[np.float32]) -> Detections:
        return dataclasses.replace(self, embeddings=embeddings)

    def with_track_ids(self, track_ids: NDArray[np.int64]) -> Detections:
        return dataclasses.replace(self, track_ids=track_ids)

    def clipped(self, width_px: int, height_px: int) -> Detections:
        """Boxes clipped to the frame; boxes left with no area are dropped."""
        xyxy = self.xyxy.copy()
        xyxy[:, [0, 2]] = np.clip(self.xyxy[:, [0, 2]], 0, width_px)
        xyxy[:, [1, 3]] = np.clip(self.xyxy[:, [1, 3]], 0, height_px)
        keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        return dataclasses.replace(self[keep], xyxy=xyxy[keep])
