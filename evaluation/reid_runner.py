"""Re-ID evaluation: every query and gallery sample through the same ``Embedder.embed`` call
as ingest (crops batched across samples), tracklets mean-pooled, scored with
``reid_metrics``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from evaluation.metrics import reid_metrics
from evaluation.reid_datasets import ReidDataset, ReidSample
from pipeline.crops import crop_boxes
from pipeline.errors import DatasetError
from reid import Embedder, l2_normalise
from reid.batching import CropBatcher

Progress = Callable[[int], object]


def _crops(sample: ReidSample) -> list[NDArray[np.uint8]]:
    out = []
    for path in sample.paths:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetError(f"{path}: not a readable image")
        image: NDArray[np.uint8] = np.asarray(img, np.uint8)
        if sample.box is not None:
            image = crop_boxes(image, np.asarray([sample.box], np.float32))[0]
        out.append(image)
    return out


def sample_features(
    samples: Sequence[ReidSample],
    embedder: Embedder,
    batch_crops: int,
    progress: Progress | None = None,
) -> NDArray[np.float32]:
    """(len(samples), dim): each image's feature, or a tracklet's mean feature (MARS's
    temporal average pooling), L2-normalised."""
    feats = np.zeros((len(samples), embedder.dim), np.float32)
    batcher = CropBatcher[int](embedder, batch_crops)

    def flush() -> None:
        for i, _rows, vecs in batcher.flush():
            feats[i] += vecs.sum(axis=0)  # a tracklet may span several flushes

    for i, sample in enumerate(samples):
        crops = _crops(sample)
        batcher.add(i, range(len(crops)), crops)
        if batcher.full:
            flush()
        if progress is not None:
            progress(1)
    flush()
    return l2_normalise(feats)


def evaluate_reid(
    ds: ReidDataset,
    embedder: Embedder,
    batch_crops: int,
    progress: Progress | None = None,
) -> dict[str, Any]:
    q = sample_features(ds.query, embedder, batch_crops, progress)
    g = sample_features(ds.gallery, embedder, batch_crops, progress)
    r = reid_metrics(
        1.0 - q @ g.T,  # cosine distance
        [s.pid for s in ds.query],
        [s.pid for s in ds.gallery],
        [s.camid for s in ds.query],
        [s.camid for s in ds.gallery],
    )
    return {
        "dataset": ds.name,
        "reid": embedder.name,
        "weights": embedder.weights,
        "tracklets": ds.tracklets,
        "queries": len(ds.query),
        "gallery": len(ds.gallery),
        "valid_queries": r.queries,
        "protocol": "same identity + same camera removed from the gallery (eval_market1501)",
        "mAP": r.mAP,
        "rank1": float(r.cmc[0]),
        "rank5": float(r.cmc[4]),
        "rank10": float(r.cmc[9]),
    }
