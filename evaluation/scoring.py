"""Scoring cached detections and features with the pure metrics: what `eval`, `bench` and
the track-level evaluation share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evaluation.datasets import SearchDataset
from evaluation.metrics import bootstrap_ci, detection_metrics, search_metrics


@dataclass
class DetectedDataset:
    detector: str
    boxes: list[NDArray[np.float32]]
    scores: list[NDArray[np.float32]]
    key: str
    frames_per_s: float | None = None  # decode + detect, as measured when first detected


@dataclass(frozen=True)
class EvalOptions:
    protocol: str = "all"
    iou: str | float = "variable"
    det_thresh: float = 0.5
    cws: bool = False


def score(
    ds: SearchDataset,
    det: DetectedDataset,
    feats: list[NDArray[np.float32]],
    query_feats: NDArray[np.float32],
    opts: EvalOptions,
) -> dict[str, Any]:
    gt = [f.boxes for f in ds.frames]
    out: dict[str, Any] = {
        "dataset": ds.name,
        "detector": det.detector,
        "frames": len(ds.frames),
        "queries": len(ds.queries),
        "protocol": opts.protocol,
        "iou": opts.iou,
        "det_thresh": opts.det_thresh,
        "cws": opts.cws,
    }
    for thr in (0.5, 0.7):
        d = detection_metrics(gt, det.boxes, det.scores, iou_thresh=thr, det_thresh=opts.det_thresh)
        out[f"det_recall@{thr}"] = d.recall
        out[f"det_ap@{thr}"] = d.ap
    kept = [int((s >= opts.det_thresh).sum()) for s in det.scores]
    out["boxes_per_frame"] = float(np.mean(kept)) if kept else 0.0
    index = ds.frame_index()
    s = search_metrics(
        query_feats,
        [q.pid for q in ds.queries],
        [index[q.frame] for q in ds.queries],
        [q.camera for q in ds.queries],
        [f.camera for f in ds.frames],
        gt,
        [f.pids for f in ds.frames],
        det.boxes,
        det.scores,
        feats,
        protocol=opts.protocol,
        iou=opts.iou,
        det_thresh=opts.det_thresh,
        cws=opts.cws,
    )
    out["mAP"] = s.mAP
    out["mAP_ci95"] = bootstrap_ci(s.per_query_ap)
    out.update({f"top{k}": v for k, v in s.top_k.items()})
    return out
