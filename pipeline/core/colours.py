"""Clothing colour of a person crop: the dominant colour of the upper body and of the lower
body, named from a small fixed palette, for attribute search ("a man in a red jacket").

How: the crop is scaled to a fixed size (a frame's crops are named together, in a few array
operations); the upper body is rows 18-48 % of the height and
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
HEIGHT_PX = 64  # every crop is scaled to this size (people are about 2.5 times as tall as wide)
WIDTH_PX = 26
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
    hue_names = [
        PALETTE.index(n) for n in ("red", "orange", "yellow", "green", "blue", "purple", "pink")
    ]
    idx = np.select(
        [h < 8, h < 20, h < 33, h < 85, h < 130, h < 150, h < 170],
        hue_names,
        PALETTE.index("red"),
    ).astype(np.int64)
    out = np.where(chromatic, idx, out)
    brownish = chromatic & ((h < 20) | (h >= 170)) & (v < 150) & (s < 200)
    out = np.where(brownish & (h >= 8) & (h < 20), PALETTE.index("brown"), out)
    out = np.where(~chromatic & (v >= WHITE_V) & (s < 40), PALETTE.index("white"), out)
    out = np.where(v < BLACK_V, PALETTE.index("black"), out)
    return out


def clothing_colours(crop: NDArray[np.uint8]) -> tuple[str | None, str | None]:
    """(upper-body colour, lower-body colour) of a BGR person crop, from PALETTE."""
    upper, lower = clothing_colour_sets(crop, top=1)
    return (upper[0] if upper else None), (lower[0] if lower else None)


def clothing_colour_sets(crop: NDArray[np.uint8], top: int = 2) -> tuple[list[str], list[str]]:
    """The upper- and lower-body colours of a crop, most-voted first: the first always, a
    second when it holds SECOND_SHARE of the votes (``top`` 2; dark denim is often both blue
    and black). Empty when the crop is too small to say."""
    return colour_sets_batch([crop], top)[0]


def colour_sets_batch(
    crops: list[NDArray[np.uint8]], top: int = 2
) -> list[tuple[list[str], list[str]]]:
    """``clothing_colour_sets`` of many crops at once (a frame's people): every crop scaled
    to HEIGHT_PX x WIDTH_PX and all of them named in a few array operations."""
    out: list[tuple[list[str], list[str]]] = [([], []) for _ in crops]
    ok = [i for i, c in enumerate(crops) if c.size and c.shape[0] >= 8 and c.shape[1] >= 4]
    if not ok:
        return out
    size = (WIDTH_PX, HEIGHT_PX)
    imgs = np.stack([cv2.resize(crops[i], size, interpolation=cv2.INTER_AREA) for i in ok])
    n = len(ok)
    tall = imgs.reshape(n * HEIGHT_PX, WIDTH_PX, 3)  # one image for OpenCV's conversions
    lab = (
        cv2.cvtColor(tall, cv2.COLOR_BGR2LAB).astype(np.float32).reshape(n, HEIGHT_PX, WIDTH_PX, 3)
    )
    hsv = cv2.cvtColor(tall, cv2.COLOR_BGR2HSV).reshape(-1, 3)
    names = name_pixels(np.asarray(hsv, np.uint8)).reshape(n, HEIGHT_PX, WIDTH_PX)
    # background: close to one of a handful of the crop's own border colours
    ring = np.concatenate([lab[:, :, 0], lab[:, :, -1], lab[:, 0], lab[:, -1]], axis=1)
    order = np.argsort(ring[:, :, 0], axis=1)
    picks = order[:, np.linspace(0, ring.shape[1] - 1, 8).astype(int)]
    border = np.take_along_axis(ring, picks[:, :, None], axis=1)  # (n, 8, 3)
    c0, c1 = int(COLUMNS[0] * WIDTH_PX), int(COLUMNS[1] * WIDTH_PX)
    r0, r1 = int(UPPER[0] * HEIGHT_PX), int(LOWER[1] * HEIGHT_PX)  # both regions, and between
    body = lab[:, r0:r1, c0:c1]
    gaps = np.full(body.shape[:3], np.inf, np.float32)
    for b in range(border.shape[1]):
        gaps = np.minimum(gaps, ((body - border[:, None, None, b, :]) ** 2).sum(axis=3))
    background = np.zeros(lab.shape[:3], bool)
    background[:, r0:r1, c0:c1] = gaps <= BORDER_LAB**2
    for j, i in enumerate(ok):
        named = []
        for rows in (UPPER, LOWER):
            r0, r1 = int(rows[0] * HEIGHT_PX), int(rows[1] * HEIGHT_PX)
            votes = _votes(
                names[j, r0:r1, c0:c1].reshape(-1),
                lab[j, r0:r1, c0:c1].reshape(-1, 3),
                ~background[j, r0:r1, c0:c1].reshape(-1),
            )
            order_j = np.argsort(-votes, kind="stable")
            got = [PALETTE[int(order_j[0])]]
            if top > 1 and votes[order_j[1]] >= SECOND_SHARE * votes.sum():
                got.append(PALETTE[int(order_j[1])])
            named.append(got)
        out[i] = (named[0], named[1])
    return out


def _votes(
    names: NDArray[np.int64], lab: NDArray[np.float32], person: NDArray[np.bool_]
) -> NDArray[np.int64]:
    """Palette votes of a region: its person pixels (all of them when the background mask
    leaves too few), those nearest the region's median colour."""
    if person.sum() >= MIN_PIXELS:
        names, lab = names[person], lab[person]
    near = ((lab - np.median(lab, axis=0)) ** 2).sum(axis=1)
    cut = np.partition(near, int(0.7 * (len(near) - 1)))[int(0.7 * (len(near) - 1))]
    return np.bincount(names[near <= cut], minlength=len(PALETTE))


def colour_columns_batch(crops: list[NDArray[np.uint8]]) -> list[tuple[str | None, str | None]]:
    """What sightings store: upper and lower colour sets, comma-joined (None: unknown)."""
    return [
        ((",".join(up) or None), (",".join(low) or None)) for up, low in colour_sets_batch(crops)
    ]


def check_colour(name: str) -> str:
    """A palette colour, or a ValueError naming the palette."""
    if name.strip().lower() not in PALETTE:
        raise ValueError(f"'{name}' is not a colour prowl names; use one of {', '.join(PALETTE)}")
    return name.strip().lower()
