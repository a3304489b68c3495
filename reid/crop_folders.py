"""Folders of re-ID crops named the Market-1501 way (``PID_cCAM...``, e.g.
``0002_c1s1_000451_03.jpg``): what `prowl train` learns from and what evaluation's benchmark
loaders (evaluation/reid_datasets.py) read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import DatasetError

_PID_CAM = re.compile(r"^(-?\d+)_c(\d+)")


@dataclass(frozen=True)
class ReidSample:
    """One image (or, for MARS, one tracklet of images) of an identity seen by a camera.
    ``box`` crops it out of a whole frame (PRW); None: the image is the crop."""

    paths: tuple[Path, ...]
    pid: int
    camid: int
    box: tuple[float, float, float, float] | None = None


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def market_split(folder: Path, keep_junk: bool = False) -> tuple[ReidSample, ...]:
    out = []
    for path in image_files(folder):
        m = _PID_CAM.match(path.name)
        if not m:
            raise DatasetError(f"{path}: name is not PID_cCAM... (e.g. 0002_c1s1_000451_03.jpg)")
        pid, cam = int(m.group(1)), int(m.group(2)) - 1
        if pid == -1 and not keep_junk:  # junk images: ignored by the protocol
            continue
        out.append(ReidSample((path,), pid, cam))
    return tuple(out)
