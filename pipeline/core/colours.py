"""Clothing colour of a person crop: the dominant colour of the upper body and of the lower
body, named from a small fixed palette, for attribute search ("a man in a red jacket").

How: the crop is scaled to a fixed height; the upper body is rows 18-48 % of the height and
the lower body rows 55-85 % (head and feet left out), both in the middle 60 % of the width.
Background is suppressed twice: pixels close (in CIE Lab) to the crop's own border, which is
mostly background, are dropped; and of the rest, only those near the region's own median
colour vote. Each pixel is named in HSV space (OpenCV's H 0-180, S and V 0-255): dark pixels
black, unsaturated ones white or grey by brightness, the others by hue, with dark oranges and
reds called brown. The region's colour is the most-voted name; ``None`` when too few pixels
survive. The rules were written before any labelled crop was looked at; their accuracy on
hand-labelled real crops is measured by `make colours-study` (docs/evaluation.md)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

PALETTE = (
    "black",
    "white",
    "grey",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
)
HEIGHT_PX = 96
UPPER = (0.18, 0.48)
LOWER = (0.55, 0.85)
COLUMNS = (0.20, 0.80)
BORDER_LAB = 18.0  # Lab distance under which a pixel counts as the border's (background)
MIN_PIXELS = 12
BLACK_V = 85  # value below which a pixel is black
CHROMA_S = 30  # saturation from which a pixel has a hue (with value >= CHROMA_V)
CHROMA_V = 60
WHITE_V = 185  # unsaturated pixels this bright are white
SECOND_SHARE = 0.3  # a second colour is kept when it has this share of the votes


def name_pixels(hsv: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Palette index of each HSV pixel (N, 3)."""
    h = hsv[:, 0].astype(np.int64)
    s = hsv[:, 1].astype(np.int64)
    v = hsv[:, 2].astype(np.int64)
    out = np.full(len(hsv), PALETTE.index("grey"), np.int64)
    chromatic = (s >= CHROMA_S) & (v >= CHROMA_V)
    hue_names = np.select(
        [h < 8, h < 20, h < 33, h < 85, h < 130, h < 150, h < 170],
        ["red", "orange", "yellow", "green", "blue", "purple", "pink"],
        "red",
    )
    idx = np.asarray([PALETTE.index(n) for n in hue_names], np.int64) if len(h) else h
    out = np.where(chromatic, idx, out)
    brownish = chromatic & ((h < 20) | (h >= 170)) & (v < 150) & (s < 200)
    out = np.where(brownish & (h >= 8) & (h < 20), PALETTE.index("brown"), out)
    out = np.where(~chromatic & (v >= WHITE_V) & (s < 40), PALETTE.index("white"), out)
    out = np.where(v < BLACK_V, PALETTE.index("black"), out)
    return out


def _region(
    img: NDArray[np.uint8],
    lab: NDArray[np.float32],
    border: NDArray[np.float32],
    rows: tuple[float, float],
    top: int = 1,
) -> list[str]:
    h, w = img.shape[:2]
    r0, r1 = int(rows[0] * h), max(int(rows[1] * h), int(rows[0] * h) + 1)
    c0, c1 = int(COLUMNS[0] * w), max(int(COLUMNS[1] * w), int(COLUMNS[0] * w) + 1)
    part = img[r0:r1, c0:c1].reshape(-1, 3)
    part_lab = lab[r0:r1, c0:c1].reshape(-1, 3)
    if len(part) < MIN_PIXELS:
        return []
    far = np.linalg.norm(part_lab[:, None, :] - border[None, :, :], axis=2).min(axis=1) > BORDER_LAB
    if far.sum() >= MIN_PIXELS:
        part, part_lab = part[far], part_lab[far]
    centre = np.median(part_lab, axis=0)
    near = np.linalg.norm(part_lab - centre, axis=1)
    keep = near <= np.percentile(near, 70)
    hsv = cv2.cvtColor(part[keep].reshape(-1, 1, 3), cv2.COLOR_BGR2HSV).reshape(-1, 3)
    votes = np.bincount(name_pixels(hsv), minlength=len(PALETTE))
    order = np.argsort(-votes, kind="stable")
    names = [PALETTE[int(order[0])]]
    if top > 1 and votes[order[1]] >= SECOND_SHARE * votes.sum():
        names.append(PALETTE[int(order[1])])
    return names


def clothing_colours(crop: NDArray[np.uint8]) -> tuple[str | None, str | None]:
    """(upper-body colour, lower-body colour) of a BGR person crop, from PALETTE."""
    upper, lower = clothing_colour_sets(crop, top=1)
    return (upper[0] if upper else None), (lower[0] if lower else None)


def clothing_colour_sets(crop: NDArray[np.uint8], top: int = 2) -> tuple[list[str], list[str]]:
    """The upper- and lower-body colours of a crop, most-voted first: the first always, a
    second when it holds SECOND_SHARE of the votes (``top`` 2; dark denim is often both blue
    and black). Empty when the crop is too small to say."""
    if crop.size == 0 or crop.shape[0] < 8 or crop.shape[1] < 4:
        return [], []
    scale = HEIGHT_PX / crop.shape[0]
    width = max(4, round(crop.shape[1] * scale))
    img = np.asarray(cv2.resize(crop, (width, HEIGHT_PX), interpolation=cv2.INTER_AREA), np.uint8)
    img = np.asarray(cv2.GaussianBlur(img, (3, 3), 0), np.uint8)
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB).astype(np.float32)
    edge = np.concatenate([lab[:, 0], lab[:, -1], lab[0], lab[-1]])
    # a handful of border colours (k-means would do; quantiles of a sorted ring suffice)
    order = np.argsort(edge[:, 0])
    border = edge[order[np.linspace(0, len(order) - 1, 8).astype(int)]]
    return _region(img, lab, border, UPPER, top), _region(img, lab, border, LOWER, top)


def colour_columns(crop: NDArray[np.uint8]) -> tuple[str | None, str | None]:
    """What a sighting stores: its upper and lower colour sets, comma-joined (None: unknown)."""
    upper, lower = clothing_colour_sets(crop)
    return (",".join(upper) or None), (",".join(lower) or None)


def check_colour(name: str) -> str:
    """A palette colour, or a ValueError naming the palette."""
    if name.strip().lower() not in PALETTE:
        raise ValueError(f"'{name}' is not a colour prowl names; use one of {', '.join(PALETTE)}")
    return name.strip().lower()
