"""Tiled inference for small people: overlapping tiles at the frame's native resolution, each
run by the detector at the tile's own size, plus one full-frame pass for people too large for
a tile; the boxes of all passes merged by greedy NMS.

On a 1920×1080 frame a 640-px detector sees people at a third of their size and misses most
of those under about 60 px; in 640-px tiles it sees them at full size, at the cost of one
detector pass per tile (a batch of tiles is one call)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from detectors.base import Detector, nms
from pipeline.core.types import Detections, Frame


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Starts of tiles of size ``tile`` covering [0, length) with at least ``overlap`` of a
    tile shared by neighbours; the last tile ends at the edge. One tile when it fits."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    count = -(-(length - tile) // step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


EDGE_PX = 2.0


def _off_inner_edges(
    xyxy: NDArray[np.float32], tile: Frame, x: int, y: int, frame: Frame
) -> NDArray[np.bool_]:
    """Boxes that do not touch a tile edge lying inside the frame: a person cut by such an edge
    is seen whole by the overlapping neighbour tile or by the full-frame pass."""
    keep = np.ones(len(xyxy), bool)
    if x > 0:
        keep &= xyxy[:, 0] > EDGE_PX
    if y > 0:
        keep &= xyxy[:, 1] > EDGE_PX
    if x + tile.width_px < frame.width_px:
        keep &= xyxy[:, 2] < tile.width_px - EDGE_PX
    if y + tile.height_px < frame.height_px:
        keep &= xyxy[:, 3] < tile.height_px - EDGE_PX
    return keep


class TiledDetector:
    """``full`` runs on whole frames, ``tiler`` on tiles of ``tile_px`` (its own input size)."""

    def __init__(
        self, full: Detector, tiler: Detector, tile_px: int, overlap: float, iou: float
    ) -> None:
        self.name = full.name
        self.backend = getattr(full, "backend", "torch")
        self._full = full
        self._tiler = tiler
        self._tile = tile_px
        self._overlap = overlap
        self._iou = iou

    def _tiles(self, frame: Frame) -> list[tuple[int, int]]:
        xs = tile_origins(frame.width_px, self._tile, self._overlap)
        ys = tile_origins(frame.height_px, self._tile, self._overlap)
        if len(xs) == 1 and len(ys) == 1:
            return []  # the frame fits in one tile: the full pass sees it at full size
        return [(x, y) for y in ys for x in xs]

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        full = self._full.detect(frames)
        tiles: list[Frame] = []
        owner: list[tuple[int, int, int]] = []
        for i, frame in enumerate(frames):
            for x, y in self._tiles(frame):
                image = frame.image[y : y + self._tile, x : x + self._tile]
                tiles.append(Frame(image, frame.index, frame.timestamp_s, frame.source_id))
                owner.append((i, x, y))
        boxes: list[list[NDArray[np.float32]]] = [[d.xyxy] for d in full]
        scores: list[list[NDArray[np.float32]]] = [[d.scores] for d in full]
        for (i, x, y), det, tile in zip(owner, self._tiler.detect(tiles), tiles, strict=True):
            inner = _off_inner_edges(det.xyxy, tile, x, y, frames[i])
            boxes[i].append(det.xyxy[inner] + np.array([x, y, x, y], np.float32))
            scores[i].append(det.scores[inner])
        out = []
        for frame, b, s in zip(frames, boxes, scores, strict=True):
            xyxy, sc = np.concatenate(b).astype(np.float32), np.concatenate(s).astype(np.float32)
            keep = nms(xyxy, sc, self._iou)
            out.append(Detections(xyxy[keep], sc[keep]).clipped(frame.width_px, frame.height_px))
        return out
