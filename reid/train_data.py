"""What `prowl train` learns from: the training split of a re-ID layout, or a prowl gallery's
own tracks (each long track a pseudo-identity), with identities held out for validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from torch import nn

from pipeline.core.errors import DatasetError
from reid.crop_folders import market_split
from reid.metrics import reid_metrics
from reid.train_parts import TrainSample
from reid.training import Recipe, net_features

TRAIN_FORMATS = ("market1501", "dukemtmc", "cuhk03-np", "msmt17", "mars", "gallery")


@dataclass(frozen=True)
class Labeled:
    load: Callable[[], NDArray[np.uint8]]
    pid: int  # as the source names it
    camid: int


@dataclass(frozen=True)
class TrainData:
    train: list[TrainSample]  # pids relabelled 0..num_classes-1
    num_classes: int
    val: list[Labeled]  # held-out identities
    source: str


def _read(path: Path) -> Callable[[], NDArray[np.uint8]]:
    def load() -> NDArray[np.uint8]:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetError(f"{path}: not a readable image")
        return np.asarray(img, np.uint8)

    return load


def decoder(jpeg: bytes) -> Callable[[], NDArray[np.uint8]]:
    def load() -> NDArray[np.uint8]:
        return np.asarray(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), np.uint8)

    return load


def layout_training_set(root: Path, fmt: str) -> list[Labeled]:
    """The training images of a re-ID layout, as torchreid reads them."""
    root = Path(root)
    if fmt in ("market1501", "dukemtmc", "cuhk03-np"):
        if (root / "detected" / "bounding_box_train").is_dir():
            root = root / "detected"
        if not (root / "bounding_box_train").is_dir():
            raise DatasetError(f"{root}: no bounding_box_train/ (the {fmt} training split)")
        return [
            Labeled(_read(s.paths[0]), s.pid, s.camid)
            for s in market_split(root / "bounding_box_train")
        ]
    if fmt == "msmt17":
        for sub in ("MSMT17_V2", "MSMT17_V1"):
            if (root / sub / "list_train.txt").is_file():
                root = root / sub
        lists = [root / "list_train.txt", root / "list_val.txt"]
        if not lists[0].is_file() or not (root / "train").is_dir():
            raise DatasetError(f"{root}: no list_train.txt with a train/ folder (MSMT17)")
        out = []
        for lst in (p for p in lists if p.is_file()):
            for line in lst.read_text().split("\n"):
                if line.strip():
                    rel, label = line.split()
                    cam = int(Path(rel).name.split("_")[2]) - 1
                    out.append(Labeled(_read(root / "train" / rel), int(label), cam))
        return out
    if fmt == "mars":
        folder = root / "bbox_train"
        if not folder.is_dir():
            raise DatasetError(f"{root}: no bbox_train/ (the MARS training split)")
        return [
            Labeled(_read(p), int(p.parent.name), int(p.name[5]) - 1)
            for p in sorted(folder.glob("*/*.jpg"))
        ]
    raise DatasetError(f"unknown training format '{fmt}'; use one of {', '.join(TRAIN_FORMATS)}")


def gallery_training_set(tracks: list[list[tuple[int, bytes]]]) -> list[Labeled]:
    """A gallery's tracks (frame, JPEG thumbnail) as identities. The first and second half of
    a track count as two 'cameras', so validation scores matches across a time gap."""
    out: list[Labeled] = []
    for pid, crops in enumerate(tracks):
        half = len(crops) // 2
        out.extend(
            Labeled(decoder(jpeg), pid, int(i >= half)) for i, (_f, jpeg) in enumerate(crops)
        )
    return out


def split(samples: list[Labeled], val_fraction: float, seed: int, source: str) -> TrainData:
    """Hold out ``val_fraction`` of the identities (seeded) for validation; relabel the rest."""
    pids = sorted({s.pid for s in samples if s.pid >= 0})
    if len(pids) < 3:
        raise DatasetError(
            f"{source}: {len(pids)} identities; training needs at least 3 "
            "(2 to learn from, 1 to validate on)"
        )
    rng = np.random.default_rng(seed)
    n_val = min(len(pids) - 2, max(1, round(len(pids) * val_fraction)))
    held = set(rng.choice(pids, size=n_val, replace=False).tolist()) if val_fraction > 0 else set()
    labels = {pid: i for i, pid in enumerate(p for p in pids if p not in held)}
    train = [TrainSample(s.load, labels[s.pid], s.camid) for s in samples if s.pid in labels]
    val = [s for s in samples if s.pid in held]
    return TrainData(train, len(labels), val, source)


def validator(val: list[Labeled], recipe: Recipe) -> Callable[[nn.Module], float]:
    """mAP of a model on the held-out identities: per identity, its first image of its first
    camera is the query; every other held-out image is gallery (same identity + camera
    removed, as eval-reid does)."""
    if not val:  # --val-fraction 0: train the whole schedule and keep the last epoch
        return lambda _model: float("nan")
    images = [s.load() for s in val]  # small: a fraction of the identities
    first: dict[int, int] = {}
    for i, s in enumerate(val):
        first.setdefault(s.pid, i)
    q_idx = sorted(first.values())

    def run(model: nn.Module) -> float:
        f = net_features(model, images, recipe)
        g_idx = [i for i in range(len(val)) if i not in set(q_idx)]
        r = reid_metrics(
            1.0 - f[q_idx] @ f[g_idx].T,
            [val[i].pid for i in q_idx],
            [val[i].pid for i in g_idx],
            [val[i].camid for i in q_idx],
            [val[i].camid for i in g_idx],
            max_rank=min(10, len(g_idx)),
        )
        return r.mAP

    return run
