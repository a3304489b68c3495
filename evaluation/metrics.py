"""Detection and person-search metrics as pure functions over arrays.

They reproduce the evaluation of the person-search codebases (OIM, NAE, SeqNet, COAT:
``eval_detection`` and ``eval_search_prw``); each protocol choice is an explicit parameter
named after the convention it reproduces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.core.boxes import iou_matrix

Boxes = NDArray[np.float32]


def average_precision(
    y_true: NDArray[np.bool_] | Sequence[bool], y_score: NDArray[np.floating] | Sequence[float]
) -> float:
    """Area under the precision-recall curve as a step function, the definition of
    scikit-learn's ``average_precision_score`` (ties in score form one threshold)."""
    t = np.asarray(y_true, bool)
    s = np.asarray(y_score, np.float64)
    n_pos = int(t.sum())
    if n_pos == 0:
        return 0.0
    order = np.argsort(-s, kind="mergesort")
    t, s = t[order], s[order]
    distinct = np.where(np.diff(s))[0]
    ends = np.r_[distinct, len(s) - 1]  # last index of each threshold group
    tp = np.cumsum(t)[ends]
    fp = ends + 1 - tp
    precision = tp / (tp + fp)
    recall = tp / n_pos
    recall_prev = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - recall_prev) * precision))


@dataclass(frozen=True)
class DetectionResult:
    recall: float
    ap: float
    gt_boxes: int
    true_positives: int


def detection_metrics(
    gt_boxes: Sequence[Boxes],
    det_boxes: Sequence[Boxes],
    det_scores: Sequence[NDArray[np.float32]],
    iou_thresh: float = 0.5,
    det_thresh: float = 0.5,
) -> DetectionResult:
    """Recall and AP of person detection over frames (every annotated person counts,
    labeled or not). Each ground-truth box and each detection keep only their mutual best
    match (``eval_detection`` of the person-search codebases); detections scoring below
    ``det_thresh`` are dropped first. AP is the precision-recall area times the recall."""
    y_true: list[bool] = []
    y_score: list[float] = []
    count_gt = count_tp = 0
    for gt, det, score in zip(gt_boxes, det_boxes, det_scores, strict=True):
        keep = np.asarray(score) >= det_thresh
        det, score = np.asarray(det).reshape(-1, 4)[keep], np.asarray(score)[keep]
        count_gt += len(gt)
        if len(det) == 0:
            continue
        if len(gt) == 0:
            y_true.extend(False for _ in range(len(det)))
            y_score.extend(score.tolist())
            continue
        ious = iou_matrix(det, gt)
        tf = ious >= iou_thresh
        best_det_for_gt = ious.argmax(axis=0)
        best_gt_for_det = ious.argmax(axis=1)
        mutual = np.zeros_like(tf)
        mutual[best_det_for_gt, np.arange(len(gt))] = True
        mutual &= np.eye(len(gt), dtype=bool)[best_gt_for_det]
        tf &= mutual
        y_true.extend(bool(v) for v in np.asarray(tf.any(axis=1)).reshape(-1))
        y_score.extend(score.tolist())
        count_tp += int(tf.sum())
    recall = count_tp / count_gt if count_gt else 0.0
    ap = average_precision(y_true, y_score) * recall if y_true else 0.0
    return DetectionResult(recall, ap, count_gt, count_tp)


def variable_iou(box: NDArray[np.floating]) -> float:
    """min(0.5, w·h / ((w+10)(h+10))): the small-box allowance of the person-search codebases."""
    w, h = float(box[2] - box[0]), float(box[3] - box[1])
    return min(0.5, (w * h) / ((w + 10) * (h + 10)))


@dataclass(frozen=True)
class SearchResult:
    mAP: float
    top_k: dict[int, float]
    per_query_ap: NDArray[np.float64]
    queries: int


def search_metrics(
    query_feats: NDArray[np.float32],
    query_pids: Sequence[int],
    query_frames: Sequence[int],
    query_cams: Sequence[str],
    frame_cams: Sequence[str],
    gt_boxes: Sequence[Boxes],
    gt_pids: Sequence[NDArray[np.int64]],
    det_boxes: Sequence[Boxes],
    det_scores: Sequence[NDArray[np.float32]],
    det_feats: Sequence[NDArray[np.float32]],
    protocol: str = "all",
    iou: str | float = "variable",
    det_thresh: float = 0.5,
    cws: bool = False,
    top_ks: tuple[int, ...] = (1, 5, 10),
) -> SearchResult:
    """Person-search mAP and top-k (``eval_search_prw``).

    For each query: the gallery is every frame except the query's own (``protocol='all'``,
    the person-search default) or the frames of other cameras (``'cross-camera'``, the
    official PRW protocol). Similarity is the dot product of L2-normalised features,
    times the detection score with ``cws`` (the PRW paper's confidence-weighted similarity).
    In each gallery frame holding the query identity, only the first detection in similarity
    order whose IoU with that ground-truth box reaches the threshold (``iou='variable'``:
    min(0.5, wh/((w+10)(h+10))), or a fixed 0.5 / 0.7) is a positive. AP over all gallery
    detections is multiplied by the fraction of ground-truth frames matched; top-k is over
    the pooled ranking."""
    if protocol not in ("all", "cross-camera"):
        raise ValueError(f"protocol '{protocol}' unknown; use all or cross-camera")
    aps, accs = [], []
    for qi in range(len(query_pids)):
        pid, qframe, qcam = int(query_pids[qi]), int(query_frames[qi]), query_cams[qi]
        feat = np.asarray(query_feats[qi], np.float32)
        y_true: list[float] = []
        y_score: list[float] = []
        count_gt = count_tp = 0
        for g in range(len(gt_boxes)):
            if g == qframe or (protocol == "cross-camera" and frame_cams[g] == qcam):
                continue
            hit = np.where(np.asarray(gt_pids[g]) == pid)[0]
            gt = np.asarray(gt_boxes[g])[hit[0]] if len(hit) else None
            count_gt += gt is not None
            keep = np.asarray(det_scores[g]) >= det_thresh
            if not keep.any():
                continue
            boxes = np.asarray(det_boxes[g]).reshape(-1, 4)[keep]
            sims = np.asarray(det_feats[g])[keep] @ feat
            if cws:
                sims = sims * np.asarray(det_scores[g])[keep]
            labels = np.zeros(len(sims))
            if gt is not None:
                thresh = variable_iou(gt) if iou == "variable" else float(iou)
                order = np.argsort(-sims, kind="stable")
                sims, boxes = sims[order], boxes[order]
                ious = iou_matrix(boxes, gt[None])[:, 0]
                first = np.where(ious >= thresh)[0]
                if len(first):
                    labels[first[0]] = 1
                    count_tp += 1
            y_true.extend(labels.tolist())
            y_score.extend(sims.tolist())
        recall = count_tp / count_gt if count_gt else 0.0
        t = np.asarray(y_true, bool)
        s = np.asarray(y_score, np.float64)
        aps.append(0.0 if count_tp == 0 else average_precision(t, s) * recall)
        ranked = t[np.argsort(-s, kind="stable")]
        accs.append([min(1, int(ranked[:k].sum())) for k in top_ks])
    per_query = np.asarray(aps, np.float64)
    acc = np.asarray(accs, np.float64).reshape(-1, len(top_ks))
    return SearchResult(
        mAP=float(per_query.mean()) if len(per_query) else 0.0,
        top_k={k: float(acc[:, i].mean()) if len(acc) else 0.0 for i, k in enumerate(top_ks)},
        per_query_ap=per_query,
        queries=len(per_query),
    )


def bootstrap_ci(
    values: NDArray[np.float64], resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (per-query APs): how far a
    small query set's mAP could move with other queries of the same kind."""
    v = np.asarray(values, np.float64)
    if len(v) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_difference_ci(
    a: NDArray[np.float64], b: NDArray[np.float64], resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``a - b`` over the same queries and its 95 % percentile bootstrap interval,
    resampling queries (both methods on the same resample): whether one method beats another
    on these queries, which two separate intervals cannot say."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if len(d) == 0:
        return 0.0, 0.0, 0.0
    lo, hi = bootstrap_ci(d, resamples=resamples, seed=seed)
    return float(d.mean()), lo, hi
