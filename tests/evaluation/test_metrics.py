"""Metrics against cases computed by hand, and invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.metrics import (
    average_precision,
    detection_metrics,
    search_metrics,
    variable_iou,
)
from pipeline.core.boxes import iou_matrix

F = np.float32


def test_average_precision_by_hand() -> None:
    # positives at ranks 1 and 3: precision 1/1 and 2/3, each weighs half the recall
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)  # a tie is one threshold
    assert average_precision([0, 0], [0.3, 0.2]) == 0.0


def test_iou_and_variable_threshold() -> None:
    assert iou_matrix(np.array([[0, 0, 10, 12]]), np.array([[0, 0, 10, 20]]))[
        0, 0
    ] == pytest.approx(0.6)
    assert variable_iou(np.array([0, 0, 100, 200])) == 0.5
    assert variable_iou(np.array([0, 0, 10, 20])) == pytest.approx(200 / (20 * 30))


GT = [np.array([[0, 0, 10, 20], [100, 0, 110, 20]], F)]
DETS = [np.array([[0, 0, 10, 20], [0, 0, 10, 12], [100, 0, 110, 11]], F)]  # IoU 1, 0.6 (dup), 0.55
SCORES = [np.array([0.9, 0.8, 0.7], F)]


def test_detection_by_hand() -> None:
    r = detection_metrics(GT, DETS, SCORES, iou_thresh=0.5, det_thresh=0.0)
    # the duplicate loses the mutual best match: TP, FP, TP in score order
    assert (r.recall, r.true_positives, r.gt_boxes) == (1.0, 2, 2)
    assert r.ap == pytest.approx((1 + 2 / 3) / 2)
    r7 = detection_metrics(GT, DETS, SCORES, iou_thresh=0.7, det_thresh=0.0)
    assert r7.recall == 0.5 and r7.ap == pytest.approx(0.5)  # only the exact box counts
    rt = detection_metrics(GT, DETS, SCORES, iou_thresh=0.5, det_thresh=0.75)
    assert rt.recall == 0.5  # the box on the second person scored 0.7 and is dropped first


def test_dropping_a_true_detection_lowers_recall_by_one_gt() -> None:
    rng = np.random.default_rng(0)
    # four well-separated people per frame
    gts = [
        np.array([[i * 50 + o, o, i * 50 + o + 30, o + 80] for i in range(4)], F)
        for o in rng.uniform(0, 10, 5)
    ]
    full = detection_metrics(gts, gts, [np.ones(4, F)] * 5, det_thresh=0.5)
    fewer = [g.copy() for g in gts]
    fewer[2] = fewer[2][1:]
    less = detection_metrics(gts, fewer, [np.ones(len(g), F) for g in fewer], det_thresh=0.5)
    assert full.recall == 1.0 and full.ap == pytest.approx(1.0)
    assert less.recall == pytest.approx(1 - 1 / 20)
    assert less.ap == pytest.approx(1 - 1 / 20)  # precision stays 1: AP = recall


def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)], F)


def _hand_case(cws_scores: tuple[float, float] = (1.0, 1.0)) -> dict:  # type: ignore[type-arg]
    """Query pid 7 cut from frame 0 (camera a). Frame 1 (camera b) holds pid 7 at G1 with two
    detections: D1 on G1 (similarity 0.9) and D2 elsewhere (0.95). Frame 2 (camera c) holds
    pid 7 but its only detection is elsewhere (0.3). Frame 3 (camera a) holds pid 7, found
    exactly, similarity 0.99."""
    g1, g2, g3 = (
        np.array([0, 0, 40, 100], F),
        np.array([50, 0, 90, 100], F),
        np.array([0, 0, 40, 100], F),
    )
    return dict(
        query_feats=np.stack([_unit(0)]),
        query_pids=[7],
        query_frames=[0],
        query_cams=["a"],
        frame_cams=["a", "b", "c", "a"],
        gt_boxes=[np.array([[0, 0, 40, 100]], F), g1[None], g2[None], g3[None]],
        gt_pids=[np.array([7]), np.array([7]), np.array([7]), np.array([7])],
        det_boxes=[np.zeros((0, 4), F), np.stack([g1, g1 + 200]), np.stack([g2 + 300]), g3[None]],
        det_scores=[
            np.zeros(0, F),
            np.array(cws_scores, F),
            np.array([1.0], F),
            np.array([1.0], F),
        ],
        det_feats=[
            np.zeros((0, 2), F),
            np.stack([_unit(math.acos(0.9)), _unit(math.acos(0.95))]),
            np.stack([_unit(math.acos(0.3))]),
            np.stack([_unit(math.acos(0.99))]),
        ],
    )


def test_search_cross_camera_by_hand() -> None:
    r = search_metrics(**_hand_case(), protocol="cross-camera", det_thresh=0.5)
    # gallery = frames 1, 2 (frame 3 shares the query's camera). Pooled ranking by similarity:
    # D2 0.95 (neg), D1 0.9 (pos), F2 0.3 (neg): AP = 1/2, matched 1 of 2 gt frames -> 0.25.
    assert r.mAP == pytest.approx(0.25)
    assert r.top_k == {1: 0.0, 5: 1.0, 10: 1.0}


def test_search_all_frames_protocol_by_hand() -> None:
    r = search_metrics(**_hand_case(), protocol="all", det_thresh=0.5)
    # adds frame 3 (pos, 0.99) on top: ranks pos, neg, pos, neg -> AP (1 + 2/3)/2; 2 of 3 gt frames
    assert r.mAP == pytest.approx((1 + 2 / 3) / 2 * 2 / 3)
    assert r.top_k[1] == 1.0


def test_confidence_weighted_similarity_by_hand() -> None:
    case = _hand_case(cws_scores=(1.0, 0.5))
    plain = search_metrics(**case, protocol="cross-camera", det_thresh=0.4)
    weighted = search_metrics(**case, protocol="cross-camera", det_thresh=0.4, cws=True)
    assert plain.mAP == pytest.approx(0.25)
    # D2 becomes 0.95 * 0.5 = 0.475 < D1 0.9: the positive ranks first -> AP 1 * 1/2
    assert weighted.mAP == pytest.approx(0.5) and weighted.top_k[1] == 1.0


def test_fixed_iou_rules_and_threshold() -> None:
    case = _hand_case()
    case["det_boxes"][1] = np.stack(
        [np.array([0, 0, 40, 60], F), np.array([200, 0, 240, 100], F)]
    )  # IoU 0.6
    assert search_metrics(**case, protocol="cross-camera", iou=0.5).mAP == pytest.approx(0.25)
    assert search_metrics(**case, protocol="cross-camera", iou=0.7).mAP == 0.0  # no longer a match


def test_perfect_detector_and_features_give_map_one_and_order_does_not_matter() -> None:
    rng = np.random.default_rng(1)
    frames, ids, dim = 12, 6, 16
    id_feats = np.eye(ids, dim, dtype=F)
    gt_boxes, gt_pids, feats = [], [], []
    for _ in range(frames):
        present = rng.choice(ids, size=3, replace=False)
        boxes = np.array([[i * 50, 0, i * 50 + 30, 80] for i in range(3)], F)
        gt_boxes.append(boxes)
        gt_pids.append(present.astype(np.int64))
        feats.append(id_feats[present])
    queries = [(int(gt_pids[f][0]), f) for f in range(0, frames, 3)]
    args = dict(
        query_feats=np.stack([id_feats[p] for p, _ in queries]),
        query_pids=[p for p, _ in queries],
        query_frames=[f for _, f in queries],
        query_cams=["x"] * len(queries),
        frame_cams=["x"] * frames,
        gt_boxes=gt_boxes,
        gt_pids=gt_pids,
        det_boxes=gt_boxes,
        det_scores=[np.ones(3, F)] * frames,
        det_feats=feats,
    )
    r = search_metrics(**args)
    assert r.mAP == pytest.approx(1.0) and r.top_k[1] == 1.0
    perm = rng.permutation(frames)
    inv = np.argsort(perm)
    shuffled = dict(
        args,
        gt_boxes=[gt_boxes[i] for i in perm],
        gt_pids=[gt_pids[i] for i in perm],
        det_boxes=[gt_boxes[i] for i in perm],
        det_feats=[feats[i] for i in perm],
        query_frames=[int(inv[f]) for _, f in queries],
    )
    assert search_metrics(**shuffled).mAP == pytest.approx(r.mAP)


def test_reid_metrics_by_hand() -> None:
    """Two queries, five gallery samples. Query 0 (pid 1, cam 0): its same-camera sample g0
    is removed; in distance order g1 (pid 2), g2 (pid 1, cam 1), g3 (pid 1, cam 2), g4 (pid 3)
    the true matches sit at ranks 2 and 3: AP = (1/2 + 2/3) / 2, found from rank 2.
    Query 1 (pid 3, cam 1): g4 is first: AP 1. Query 2 (pid 9) has no match and is skipped."""
    from reid.metrics import reid_metrics

    g_pids, g_cams = [1, 2, 1, 1, 3], [0, 0, 1, 2, 0]
    dist = np.array(
        [
            [0.0, 0.1, 0.2, 0.3, 0.4],
            [0.5, 0.6, 0.7, 0.8, 0.1],
            [0.1, 0.2, 0.3, 0.4, 0.5],
        ]
    )
    r = reid_metrics(dist, [1, 3, 9], g_pids, [0, 1, 0], g_cams, max_rank=3)
    assert r.queries == 2
    assert r.mAP == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1.0) / 2)
    assert r.cmc.tolist() == pytest.approx([0.5, 1.0, 1.0])


def test_reid_metrics_same_camera_same_identity_never_counts() -> None:
    from reid.metrics import reid_metrics

    # the only other sample of pid 1 is from the query's camera: no valid match at all
    r = reid_metrics(np.array([[0.0, 1.0]]), [1], [1, 2], [0], [0, 1])
    assert r.queries == 0 and r.mAP == 0.0


def test_paired_difference_sees_a_consistent_gain_that_separate_intervals_hide() -> None:
    import numpy as np

    from evaluation.metrics import bootstrap_ci, paired_difference_ci
    from evaluation.summaries import paired_table

    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 1.0, 60)  # very different queries: wide intervals
    better = np.minimum(base + 0.03, 1.0)  # every query a little better
    _lo_b, hi_b = bootstrap_ci(base)
    lo_n, _hi_n = bootstrap_ci(better)
    assert lo_n < hi_b  # the two intervals overlap ...
    mean, lo, hi = paired_difference_ci(better, base)
    assert 0 < lo <= mean <= hi and abs(mean - float(np.mean(better - base))) < 1e-12  # ... yet
    assert paired_difference_ci(base, base) == (0.0, 0.0, 0.0)
    results = [
        {
            "reid": "old",
            "mAP": 0.5,
            "mAP_ci95": [0.4, 0.6],
            "rank1": 0.5,
            "per_query_ap": list(base),
        },
        {
            "reid": "new",
            "mAP": 0.53,
            "mAP_ci95": [0.43, 0.63],
            "rank1": 0.5,
            "rerank": True,
            "query_expansion": 3,
            "per_query_ap": list(better),
        },
    ]
    table = paired_table(results, "old")
    assert "| new | expand 3 + re-rank | +0.0" in table and "| old |" not in table
    assert paired_table(results, "missing") == ""


def test_models_that_share_an_embedder_name_are_told_apart_by_their_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every trained model is `prowl:model.pt` to eval-reid: the summary labels them by the
    file each result was saved to, and a file name can be the paired reference."""
    import json

    from evaluation.summaries import labelled, paired_table, reid_table

    for name, aps in (("plain", [0.5, 0.6, 0.7]), ("camstyle", [0.4, 0.6, 0.6])):
        r = {"reid": "prowl:model.pt", "mAP": sum(aps) / 3, "mAP_ci95": [0, 1], "rank1": 0.5}
        (tmp_path / f"{name}.json").write_text(json.dumps({**r, "per_query_ap": aps}))
    results = labelled(sorted(tmp_path.glob("*.json")))
    assert "| camstyle (prowl:model.pt) |" in reid_table(results)
    rows = paired_table(results, "plain").splitlines()
    assert len(rows) == 3 and rows[2].startswith("| camstyle (prowl:model.pt) | cosine | -0.067")
