"""Crops of many frames embedded in one model call: the one batching rule that ingest and
evaluation share."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from reid.base import Embedder

K = TypeVar("K", bound=Hashable)


class CropBatcher(Generic[K]):
    """Collect crops under an owner key (a frame) until ``full``, then ``flush`` embeds all of
    them in one ``Embedder.embed`` call and hands each owner its rows' vectors back.

    Crops are copied on ``add``: a view would keep its whole frame alive until the flush."""

    def __init__(self, embedder: Embedder, batch_crops: int) -> None:
        self.embedder = embedder
        self.batch_crops = max(1, batch_crops)
        self._crops: list[NDArray[np.uint8]] = []
        self._owners: list[tuple[K, int]] = []

    def __len__(self) -> int:
        return len(self._crops)

    @property
    def full(self) -> bool:
        return len(self._crops) >= self.batch_crops

    def add(
        self,
        owner: K,
        rows: Sequence[int] | NDArray[np.integer],
        crops: Sequence[NDArray[np.uint8]],
    ) -> None:
        """``crops[i]`` is row ``rows[i]`` of ``owner`` (a detection of a frame)."""
        for row, crop in zip(rows, crops, strict=True):
            self._crops.append(np.ascontiguousarray(crop))
            self._owners.append((owner, int(row)))

    def flush(self) -> list[tuple[K, NDArray[np.int64], NDArray[np.float32]]]:
        """(owner, rows, vectors (len(rows), dim)) per owner, in the order owners were added."""
        if not self._crops:
            return []
        vectors = self.embedder.embed(self._crops)
        grouped: dict[K, list[int]] = {}
        for k, (owner, _row) in enumerate(self._owners):
            grouped.setdefault(owner, []).append(k)
        out = [
            (
                owner,
                np.asarray([self._owners[k][1] for k in ks], np.int64),
                vectors[np.asarray(ks, np.int64)],
            )
            for owner, ks in grouped.items()
        ]
        self._crops.clear()
        self._owners.clear()
        return out
