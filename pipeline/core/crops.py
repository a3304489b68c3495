"""Cutting person crops out of frames, and image normalisation shared by ingest and query."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.core.errors import QueryError


def to_bgr_uint8(image: NDArray[np.generic]) -> NDArray[np.uint8]:
    """Any H×W, H×W×1, H×W×3 or H×W×4 image of uint8/uint16/float to H×W×3 uint8 BGR.

    16-bit images are scaled by 1/257; float images are taken as 0..1.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise QueryError(f"image has unusable shape {img.shape}; expected H×W or H×W×C")
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype.kind == "f":
        img = (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    elif img.shape[2] != 3:
        raise QueryError(f"image has {img.shape[2]} channels; expected 1, 3 or 4")
    return np.ascontiguousarray(img, dtype=np.uint8)


def box_to_int(
    xyxy: NDArray[np.floating], width_px: int, height_px: int
) -> tuple[int, int, int, int]:
    """Integer pixel box (x1, y1, x2, y2), clipped to the frame; may be empty."""
    x1 = int(np.clip(np.floor(xyxy[0]), 0, width_px))
    y1 = int(np.clip(np.floor(xyxy[1]), 0, height_px))
    x2 = int(np.clip(np.ceil(xyxy[2]), 0, width_px))
    y2 = int(np.clip(np.ceil(xyxy[3]), 0, height_px))
    return x1, y1, x2, y2


def crop_boxes(image: NDArray[np.uint8], xyxy: NDArray[np.floating]) -> list[NDArray[np.uint8]]:
    """Crops (views, not copies) of ``image`` for each row of ``xyxy``; boxes are clipped to
    the frame, so a box partly outside gives the part inside and one wholly outside gives an
    empty (0-pixel) crop."""
    h, w = image.shape[:2]
    crops = []
    for row in np.asarray(xyxy, dtype=np.float64).reshape(-1, 4):
        x1, y1, x2, y2 = box_to_int(row, w, h)
        crops.append(image[y1 : max(y1, y2), x1 : max(x1, x2)])
    return crops


def encode_jpeg(image: NDArray[Any], height_px: int, quality: int = 85) -> bytes:
    """JPEG bytes of ``image`` scaled to ``height_px`` tall (never enlarged)."""
    h, w = image.shape[:2]
    if h > height_px:
        scale = height_px / h
        image = cv2.resize(
            image, (max(1, round(w * scale)), height_px), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - imencode fails only on empty input, excluded upstream
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
