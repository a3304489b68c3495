"""Track-level scoring: the ingest tracker run over a dataset's cached detections, scored
with ``motmetrics`` (MOTA, IDF1, ID switches), and search metrics recomputed with features
pooled over each track, all of them or only the crops the embedding cadence would embed."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evaluation.datasets import SearchDataset
from evaluation.scoring import DetectedDataset, EvalOptions, score
from pipeline.boxes import iou_matrix
from pipeline.config import TrackingConfig
from pipeline.stitching import StitchSettings, Tracklet, stitch
from pipeline.tracking import UNTRACKED, ByteTracker, EmbedCadence, TrackerConfig
from pipeline.types import Detections


def _sequences(ds: SearchDataset) -> dict[str, list[int]]:
    """Frame positions per camera, in frame-name order (MOT: one sequence per camera)."""
    seqs: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(ds.frames):
        seqs[f.camera].append(i)
    return {cam: sorted(idx, key=lambda i: ds.frames[i].name) for cam, idx in seqs.items()}


def track_dataset(
    ds: SearchDataset,
    det: DetectedDataset,
    cfg: TrackingConfig,
    fps: float = 10.0,
    det_thresh: float = 0.0,
) -> list[NDArray[np.int64]]:
    """Track ids for every detection of every frame (-1 = untracked); ids unique per dataset."""
    out: list[NDArray[np.int64]] = [np.zeros(0, np.int64)] * len(ds.frames)
    offset = 0
    rates = dict(ds.fps)
    for cam, positions in _sequences(ds).items():
        tracker = ByteTracker(TrackerConfig.from_settings(cfg, rates.get(cam, fps)))
        for n, i in enumerate(positions):
            keep = det.scores[i] >= det_thresh
            ids = np.full(len(det.scores[i]), UNTRACKED, np.int64)
            tracked = tracker.update(Detections(det.boxes[i][keep], det.scores[i][keep]), n)
            assert tracked.track_ids is not None
            ids[keep] = np.where(tracked.track_ids >= 0, tracked.track_ids + offset, UNTRACKED)
            out[i] = ids
        offset += tracker.next_id
    return out


def mot_metrics(
    ds: SearchDataset,
    det: DetectedDataset,
    track_ids: list[NDArray[np.int64]],
    det_thresh: float = 0.5,
) -> dict[str, float]:
    """MOTA, IDF1 and ID switches over all sequences (labeled people are the ground truth;
    a match needs IoU >= 0.5, the MOT Challenge rule)."""
    import motmetrics as mm

    accs, names = [], []
    for cam, positions in _sequences(ds).items():
        acc = mm.MOTAccumulator(auto_id=True)
        for i in positions:
            f = ds.frames[i]
            labeled = f.pids >= 0
            gt_boxes, gt_ids = f.boxes[labeled], f.pids[labeled]
            keep = (det.scores[i] >= det_thresh) & (track_ids[i] >= 0)
            if (~labeled).any() and keep.any():  # boxes on unlabeled people are ignored, not FPs
                on_ignored = iou_matrix(det.boxes[i], f.boxes[~labeled]).max(axis=1) >= 0.5
                on_labeled = (
                    iou_matrix(det.boxes[i], gt_boxes).max(axis=1) >= 0.5
                    if len(gt_boxes)
                    else np.zeros(len(keep), bool)
                )
                keep &= ~(on_ignored & ~on_labeled)
            hyp_boxes, hyp_ids = det.boxes[i][keep], track_ids[i][keep]
            # IoU distances computed here: motmetrics 1.4's own helper uses np.asfarray (numpy<2)
            dist = 1.0 - iou_matrix(gt_boxes, hyp_boxes)
            dist[dist > 0.5] = np.nan
            acc.update(gt_ids.tolist(), hyp_ids.tolist(), dist)
        accs.append(acc)
        names.append(cam)
    mh = mm.metrics.create()
    summary = mh.compute_many(
        accs, names=names, metrics=["mota", "idf1", "num_switches"], generate_overall=True
    )
    overall = summary.loc["OVERALL"]
    return {
        "MOTA": float(overall["mota"]),
        "IDF1": float(overall["idf1"]),
        "ID_switches": int(overall["num_switches"]),
    }


def pooled_features(
    feats: list[NDArray[np.float32]],
    track_ids: list[NDArray[np.int64]],
    use: list[NDArray[np.bool_]] | None = None,
) -> list[NDArray[np.float32]]:
    """Each tracked detection's feature replaced by its track's pooled one: the mean of the
    L2-normalised features of the members marked in ``use`` (all by default), re-normalised.
    Untracked detections keep their own."""
    sums: dict[int, NDArray[np.float64]] = {}
    for f, ids, u in zip(
        feats, track_ids, use or [np.ones(len(t), bool) for t in track_ids], strict=True
    ):
        for j in np.flatnonzero(u & (ids >= 0)):
            sums[int(ids[j])] = sums.get(int(ids[j]), 0) + f[j]
    out = []
    for f, ids in zip(feats, track_ids, strict=True):
        g = f.copy()
        for j in np.flatnonzero(ids >= 0):
            s = sums.get(int(ids[j]))
            if s is not None:
                g[j] = s / max(float(np.linalg.norm(s)), 1e-12)
        out.append(g)
    return out


def cadence_mask(
    ds: SearchDataset,
    det: DetectedDataset,
    track_ids: list[NDArray[np.int64]],
    every: int,
    resize: float,
) -> list[NDArray[np.bool_]]:
    """Which detections the ingest cadence would embed (same rule as ingest)."""
    masks: list[NDArray[np.bool_]] = [np.zeros(0, bool)] * len(ds.frames)
    for positions in _sequences(ds).values():
        cadence = EmbedCadence(every, resize)
        for n, i in enumerate(positions):
            masks[i] = cadence.choose(
                Detections(det.boxes[i], det.scores[i], track_ids=track_ids[i]), n
            )
    return masks


def stitched(
    ds: SearchDataset,
    det: DetectedDataset,
    feats: list[NDArray[np.float32]],
    track_ids: list[NDArray[np.int64]],
    use: list[NDArray[np.bool_]],
    settings: StitchSettings,
    fps: float = 10.0,
) -> list[NDArray[np.int64]]:
    """``track_ids`` with each camera's fragments joined by ``pipeline.stitching`` (pooled
    vectors of the crops in ``use``, as ingest has them)."""
    rates = dict(ds.fps)
    pooled = pooled_features(feats, track_ids, use)
    mapping: dict[int, int] = {}
    for cam, positions in _sequences(ds).items():
        rate = rates.get(cam, fps)
        seen: dict[int, list[Any]] = {}
        for n, i in enumerate(positions):
            for j in np.flatnonzero(track_ids[i] >= 0):
                t = int(track_ids[i][j])
                entry = seen.setdefault(t, [n, det.boxes[i][j], n, det.boxes[i][j], None])
                entry[2], entry[3] = n, det.boxes[i][j]
                if use[i][j]:
                    entry[4] = pooled[i][j]
        tracklets = [
            Tracklet(t, a / rate, b / rate, box_a, box_b, feat)
            for t, (a, box_a, b, box_b, feat) in seen.items()
        ]
        mapping.update(stitch(tracklets, settings))
    return [np.asarray([mapping.get(int(t), int(t)) for t in ids], np.int64) for ids in track_ids]


def track_level(
    ds: SearchDataset,
    det: DetectedDataset,
    feats: list[NDArray[np.float32]],
    query_feats: NDArray[np.float32],
    opts: EvalOptions,
    cfg: TrackingConfig,
) -> dict[str, Any]:
    ids = track_dataset(ds, det, cfg)
    out: dict[str, Any] = mot_metrics(ds, det, ids, opts.det_thresh)
    mask = cadence_mask(ds, det, ids, cfg.embed_every_frames, cfg.embed_on_resize)
    joined = stitched(ds, det, feats, ids, mask, StitchSettings())
    out.update(
        {f"{k}_stitched": v for k, v in mot_metrics(ds, det, joined, opts.det_thresh).items()}
    )
    out["tracks"] = len({int(t) for a in ids for t in a if t >= 0})
    out["tracks_stitched"] = len({int(t) for a in joined for t in a if t >= 0})
    out["identities"] = len({int(p) for f in ds.frames for p in f.pids if p >= 0})
    pooled = score(ds, det, pooled_features(feats, ids), query_feats, opts)
    sparse = score(ds, det, pooled_features(feats, ids, mask), query_feats, opts)
    total = sum(len(m) for m in mask)
    out.update(
        {
            "mAP_pooled": pooled["mAP"],
            "top1_pooled": pooled["top1"],
            "mAP_pooled_cadence": sparse["mAP"],
            "top1_pooled_cadence": sparse["top1"],
            "embedded_fraction_cadence": sum(int(m.sum()) for m in mask) / total if total else 0.0,
        }
    )
    return out
