"""What a query starts from: a crop of the person read from a file or cut from a frame of a
video, checked to be big enough to carry an identity."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.core.crops import box_to_int, to_bgr_uint8
from pipeline.core.errors import QueryError

log = logging.getLogger(__name__)


MIN_CROP_PX = 8  # a crop smaller than this on either side carries no identity


def check_crop(crop: NDArray[np.uint8], what: str) -> NDArray[np.uint8]:
    h, w = crop.shape[:2]
    if h < MIN_CROP_PX or w < MIN_CROP_PX:
        raise QueryError(
            f"{what} is {w}x{h} px; a query crop needs at least "
            f"{MIN_CROP_PX}x{MIN_CROP_PX} px of the person"
        )
    return crop


def read_query_image(path: Path) -> NDArray[np.uint8]:
    path = Path(path)
    if path.is_dir():
        raise QueryError(f"query image {path} is a folder; pass a JPEG/PNG crop of the person")
    if not path.is_file():
        raise QueryError(f"query image {path} does not exist; pass a JPEG/PNG crop of the person")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise QueryError(f"{path} is not an image OpenCV can read; pass a JPEG/PNG crop")
    return check_crop(to_bgr_uint8(image), f"query image {path.name}")


def read_frame(video: Path, frame_index: int) -> NDArray[np.uint8]:
    """One frame of a video file (or image folder) by its index."""
    from pipeline.core.video import read_frames

    video = Path(video)
    if not video.exists():
        raise QueryError(f"video {video} does not exist; check the path in --frame VIDEO:FRAME")
    if frame_index < 0:
        raise QueryError(f"frame {frame_index} is negative; frames count from 0")
    for frame in read_frames(video, first_index=frame_index):
        return frame.image
    raise QueryError(f"{video} has no frame {frame_index}; it ends earlier")


def crop_from_frame(
    video: Path, frame_index: int, box: tuple[float, float, float, float]
) -> NDArray[np.uint8]:
    image = read_frame(video, frame_index)
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise QueryError(f"box {box} is empty; give x1,y1,x2,y2 with x2>x1 and y2>y1")
    cx1, cy1, cx2, cy2 = box_to_int(np.asarray(box, np.float64), w, h)
    if cx2 <= cx1 or cy2 <= cy1:
        raise QueryError(
            f"box {box} lies outside the {w}x{h} frame; give pixel coordinates inside it"
        )
    return check_crop(np.ascontiguousarray(image[cy1:cy2, cx1:cx2]), f"box {box}")
