"""Re-ID evaluation: every query and gallery sample through the same ``Embedder.embed`` call
as ingest (crops batched across samples), tracklets mean-pooled, scored with
``reid_metrics``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from evaluation.metrics import bootstrap_ci
from evaluation.reid_datasets import ReidDataset, ReidSample
from pipeline.core.crops import crop_boxes
from pipeline.core.errors import DatasetError
from pipeline.core.vectors import l2_normalise
from reid import Embedder
from reid.batching import CropBatcher
from reid.metrics import reid_metrics
from reid.rerank import ranked_positions

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


def reid_features(
    ds: ReidDataset, embedder: Embedder, batch_crops: int, progress: Progress | None = None
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(query features, gallery features), cached in memory per dataset and embedder so that
    an evaluation asked for twice in one process embeds once."""
    key = (ds.root, ds.name, embedder.name, embedder.weights)
    if key not in _FEATURES:
        _FEATURES.clear()
        q = sample_features(ds.query, embedder, batch_crops, progress)
        g = sample_features(ds.gallery, embedder, batch_crops, progress)
        _FEATURES[key] = (q, g)
    return _FEATURES[key]


_FEATURES: dict[tuple[object, ...], tuple[NDArray[np.float32], NDArray[np.float32]]] = {}


def evaluate_reid(
    ds: ReidDataset,
    embedder: Embedder,
    batch_crops: int,
    progress: Progress | None = None,
    rerank: bool = False,
    qe: int = 0,
    pool: int = 100,
) -> dict[str, Any]:
    """Each query ranked as a prowl query ranks it: cosine, optionally expanded (``qe`` best
    hits, α-QE) and k-reciprocally re-ranked over its best ``pool`` candidates."""
    q, g = reid_features(ds, embedder, batch_crops, progress)
    dist: NDArray[np.float64] = 1.0 - (q @ g.T).astype(np.float64)  # cosine distance
    if rerank or qe:  # each query's order as its rank positions
        for i, vector in enumerate(q):
            dist[i, ranked_positions(vector, g, pool, rerank, qe)] = np.arange(len(g))
    r = reid_metrics(
        dist,
        [s.pid for s in ds.query],
        [s.pid for s in ds.gallery],
        [s.camid for s in ds.query],
        [s.camid for s in ds.gallery],
    )
    per_query = [] if r.per_query_ap is None else [round(float(v), 6) for v in r.per_query_ap]
    return {
        "dataset": ds.name,
        "reid": embedder.name,
        "weights": embedder.weights,
        "tracklets": ds.tracklets,
        "queries": len(ds.query),
        "gallery": len(ds.gallery),
        "valid_queries": r.queries,
        "rerank": rerank,
        "query_expansion": qe,
        "protocol": "same identity + same camera removed from the gallery (eval_market1501)",
        "mAP": r.mAP,
        "mAP_ci95": bootstrap_ci(np.asarray(per_query, np.float64)),
        # per valid query, in query order: paired comparisons between embedders and methods
        "per_query_ap": per_query,
        "rank1": float(r.cmc[0]),
        "rank5": float(r.cmc[4]),
        "rank10": float(r.cmc[9]),
    }
