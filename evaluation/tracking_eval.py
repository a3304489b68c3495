"""Track-level scoring: the ingest tracker run over a dataset's cached detections, scored
with ``motmetrics`` (MOTA, IDF1, ID switches), and search metrics recomputed with features
pooled over each track, all of them or only the crops the embedding cadence would embed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evaluation.datasets import SearchDataset
from evaluation.scoring import DetectedDataset, EvalOptions, score
from pipeline.core.boxes import iou_matrix
from pipeline.core.config import TrackingConfig
from pipeline.core.stitching import (
    StitchSettings,
)
from pipeline.core.tracking import UNTRACKED, ByteTracker, EmbedCadence, TrackerConfig
from pipeline.core.types import Detections
from pipeline.core.vectors import l2_normalise
from storage.tracks import appearances


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
    feats: list[NDArray[np.float32]] | None = None,
) -> list[NDArray[np.int64]]:
    """Track ids for every detection of every frame (-1 = untracked); ids unique per dataset.
    With ``cfg.appearance_weight`` the tracker also compares ``feats`` (every crop's), as
    ingest does. The detector interval's every-frame case (``interval_run``)."""
    if cfg.appearance_weight > 0 and feats is None:
        raise ValueError("appearance-aware tracking needs every detection's features")
    if feats is None:
        feats = [np.zeros((len(b), 1), np.float32) for b in det.boxes]
    return interval_run(ds, det, feats, cfg, 1, fps)[2]


def mot_metrics(
    ds: SearchDataset,
    det: DetectedDataset,
    track_ids: list[NDArray[np.int64]],
    det_thresh: float = 0.5,
) -> dict[str, float]:
    """MOTA, IDF1 and ID switches over all sequences (labeled people are the ground truth;
    a match needs IoU >= 0.5, the MOT Challenge rule)."""
    import motmetrics as mm
    from trackeval.metrics import HOTA

    hota = HOTA()
    accs, names, hota_res = [], [], {}
    for cam, positions in _sequences(ds).items():
        acc = mm.MOTAccumulator(auto_id=True)
        steps: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
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
            overlap = iou_matrix(gt_boxes, hyp_boxes)
            steps.append((gt_ids, hyp_ids, overlap))
            dist = 1.0 - overlap
            dist[dist > 0.5] = np.nan
            acc.update(gt_ids.tolist(), hyp_ids.tolist(), dist)
        accs.append(acc)
        names.append(cam)
        hota_res[cam] = hota.eval_sequence(_trackeval_data(steps))
    mh = mm.metrics.create()
    summary = mh.compute_many(
        accs, names=names, metrics=["mota", "idf1", "num_switches"], generate_overall=True
    )
    overall = summary.loc["OVERALL"]
    return {
        "MOTA": float(overall["mota"]),
        "IDF1": float(overall["idf1"]),
        "ID_switches": int(overall["num_switches"]),
        # HOTA (Luiten et al., IJCV 2021) by TrackEval: the mean over IoU thresholds 0.05-0.95
        "HOTA": float(np.mean(hota.combine_sequences(hota_res)["HOTA"])),
    }


def _trackeval_data(
    steps: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]],
) -> dict[str, Any]:
    """One sequence in TrackEval's input form: ids renumbered 0..n-1, IoU per frame."""
    gts = {int(g): n for n, g in enumerate(sorted({int(g) for g, _h, _o in steps for g in g}))}
    hyps = {int(h): n for n, h in enumerate(sorted({int(h) for _g, h, _o in steps for h in h}))}
    return {
        "num_timesteps": len(steps),
        "num_gt_ids": len(gts),
        "num_tracker_ids": len(hyps),
        "num_gt_dets": sum(len(g) for g, _h, _o in steps),
        "num_tracker_dets": sum(len(h) for _g, h, _o in steps),
        "gt_ids": [np.asarray([gts[int(x)] for x in g], int) for g, _h, _o in steps],
        "tracker_ids": [np.asarray([hyps[int(x)] for x in h], int) for _g, h, _o in steps],
        "similarity_scores": [o.astype(float) for _g, _h, o in steps],
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
                g[j] = l2_normalise(s)
        out.append(g)
    return out


def cadence_mask(
    ds: SearchDataset,
    det: DetectedDataset,
    track_ids: list[NDArray[np.int64]],
    every: int,
    resize: float,
    appearance_every: int = 0,
) -> list[NDArray[np.bool_]]:
    """Which detections ingest would embed (the same rule): with appearance tracking
    (``appearance_every`` > 0) every box of every that-many-th frame, else those the
    embedding cadence chooses."""
    masks: list[NDArray[np.bool_]] = [np.zeros(0, bool)] * len(ds.frames)
    if appearance_every > 0:
        for positions in _sequences(ds).values():
            for n, i in enumerate(positions):
                masks[i] = np.full(len(det.scores[i]), n % appearance_every == 0)
        return masks
    for positions in _sequences(ds).values():
        cadence = EmbedCadence(every, resize)
        for n, i in enumerate(positions):
            masks[i] = cadence.choose(
                Detections(det.boxes[i], det.scores[i], track_ids=track_ids[i]), n
            )
    return masks


@dataclass(frozen=True)
class _Row:
    """A detection as ingest stores it, for ``storage.tracks.appearances``."""

    id: int
    raw_track_id: int  # 0: untracked
    frame_index: int
    timestamp_s: float
    x1: float
    y1: float
    x2: float
    y2: float
    embedding: bytes | None


def stitched(
    ds: SearchDataset,
    det: DetectedDataset,
    feats: list[NDArray[np.float32]],
    track_ids: list[NDArray[np.int64]],
    use: list[NDArray[np.bool_]],
    settings: StitchSettings,
    fps: float = 10.0,
    fold_thresh: float | None = None,
) -> list[NDArray[np.int64]]:
    """``track_ids`` as ingest's appearances would make them: each camera's boxes as the
    rows ingest stores (tracked ones, and with ``fold_thresh`` the untracked ones scoring
    at least that; vectors of the crops in ``use`` only) through the same
    ``storage.tracks.appearances``: fragments stitched, and with ``fold_thresh`` strays
    folded in. -1: in no appearance."""
    rates = dict(ds.fps)
    out = [np.full(len(ids), -1, np.int64) for ids in track_ids]
    for cam, positions in _sequences(ds).items():
        rate = rates.get(cam, fps)
        rows = []
        for n, i in enumerate(positions):
            for k, t in enumerate(track_ids[i]):
                if t < 0 and (fold_thresh is None or det.scores[i][k] < fold_thresh):
                    continue  # ingest never stores it
                x1, y1, x2, y2 = (float(v) for v in det.boxes[i][k])
                vector = feats[i][k].astype(np.float32).tobytes() if use[i][k] else None
                rows.append(_Row(i * 100_000 + k, int(t) + 1, n, n / rate, x1, y1, x2, y2, vector))
        joined = appearances(rows, settings, fold_strays=fold_thresh is not None)
        for key, app in joined.items():
            out[key // 100_000][key % 100_000] = app - 1
    return out


def single_box_rows(
    ds: SearchDataset,
    det: DetectedDataset,
    feats: list[NDArray[np.float32]],
    query_feats: NDArray[np.float32],
    track_ids: list[NDArray[np.int64]],
    det_thresh: float,
    k: int = 20,
) -> float:
    """How many of a ``--by track`` answer's top ``k`` rows are a single box (an untracked
    detection or a one-box track), averaged over the queries: what an analyst sees as
    clutter unless that person really was seen once."""
    keep = [s >= det_thresh for s in det.scores]
    gallery = np.concatenate([f[m] for f, m in zip(feats, keep, strict=True)])
    ids = np.concatenate([t[m] for t, m in zip(track_ids, keep, strict=True)])
    if not len(gallery) or not len(query_feats):
        return 0.0
    sizes: dict[int, int] = defaultdict(int)
    for t in ids[ids >= 0].tolist():
        sizes[t] += 1
    counts = []
    for q in query_feats:
        order = np.argsort(-(gallery @ q), kind="stable")
        seen: set[object] = set()
        singles = 0
        for j in order:
            t = int(ids[j])
            key: object = t if t >= 0 else ("det", int(j))
            if key in seen:
                continue
            seen.add(key)
            singles += t < 0 or sizes[t] == 1
            if len(seen) == k:
                break
        counts.append(singles)
    return float(np.mean(counts))


def tracks_per_identity(
    ds: SearchDataset, det: DetectedDataset, track_ids: list[NDArray[np.int64]], det_thresh: float
) -> float:
    """Into how many tracks each labelled person is split, averaged over the people seen:
    tracks holding at least a tenth of the person's boxes (matched at IoU >= 0.5), so a
    stray box or two given to a neighbour does not count as a split. 1.0 = nobody split."""
    covering: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for f, boxes, scores, ids in zip(ds.frames, det.boxes, det.scores, track_ids, strict=True):
        keep = (scores >= det_thresh) & (ids >= 0)
        if not keep.any() or not len(f.boxes):
            continue
        overlap = iou_matrix(f.boxes, boxes[keep])
        for g in range(len(f.boxes)):
            j = int(np.argmax(overlap[g]))
            if overlap[g, j] >= 0.5 and f.pids[g] >= 0:
                covering[int(f.pids[g])][int(ids[keep][j])] += 1
    splits = [
        sum(n >= 0.1 * sum(held.values()) for n in held.values()) for held in covering.values()
    ]
    return float(np.mean(splits)) if splits else 0.0


def stray_only_identities(
    ds: SearchDataset, det: DetectedDataset, track_ids: list[NDArray[np.int64]], det_thresh: float
) -> int:
    """Labelled people whose every kept box (IoU >= 0.5) is a single box fitting no
    appearance: those a ``--by track`` answer leaves out unless ``--strays``."""
    sizes: dict[int, int] = defaultdict(int)
    for ids, scores in zip(track_ids, det.scores, strict=True):
        for t in ids[(scores >= det_thresh) & (ids >= 0)].tolist():
            sizes[t] += 1
    seen, in_appearance = set(), set()
    for f, boxes, scores, ids in zip(ds.frames, det.boxes, det.scores, track_ids, strict=True):
        keep = scores >= det_thresh
        if not keep.any() or not len(f.boxes):
            continue
        overlap = iou_matrix(boxes[keep], f.boxes)
        for j, t in zip(range(len(overlap)), ids[keep].tolist(), strict=True):
            g = int(np.argmax(overlap[j]))
            pid = int(f.pids[g])
            if overlap[j, g] < 0.5 or pid < 0:
                continue
            seen.add(pid)
            if t >= 0 and sizes[t] > 1:
                in_appearance.add(pid)
    return len(seen - in_appearance)


def track_level(
    ds: SearchDataset,
    det: DetectedDataset,
    feats: list[NDArray[np.float32]],
    query_feats: NDArray[np.float32],
    opts: EvalOptions,
    cfg: TrackingConfig,
) -> dict[str, Any]:
    ids = track_dataset(ds, det, cfg, feats=feats)
    out: dict[str, Any] = mot_metrics(ds, det, ids, opts.det_thresh)
    mask = cadence_mask(
        ds,
        det,
        ids,
        cfg.embed_every_frames,
        cfg.embed_on_resize,
        cfg.appearance_every_frames if cfg.appearance_weight > 0 else 0,
    )
    joined = stitched(ds, det, feats, ids, mask, StitchSettings())
    folded = stitched(ds, det, feats, ids, mask, StitchSettings(), fold_thresh=opts.det_thresh)
    for name, variant in (("stitched", joined), ("folded", folded)):
        out.update(
            {f"{k}_{name}": v for k, v in mot_metrics(ds, det, variant, opts.det_thresh).items()}
        )
        out[f"tracks_{name}"] = _tracks(variant, det, opts.det_thresh)
        out[f"single_box_rows_{name}"] = single_box_rows(
            ds, det, feats, query_feats, variant, opts.det_thresh
        )
        out[f"stray_only_identities_{name}"] = stray_only_identities(
            ds, det, variant, opts.det_thresh
        )
        out[f"tracks_per_identity_{name}"] = tracks_per_identity(ds, det, variant, opts.det_thresh)
    out["tracks_per_identity"] = tracks_per_identity(ds, det, ids, opts.det_thresh)
    out["tracks"] = _tracks(ids, det, opts.det_thresh)
    out["single_box_rows"] = single_box_rows(ds, det, feats, query_feats, ids, opts.det_thresh)
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


def _tracks(track_ids: list[NDArray[np.int64]], det: DetectedDataset, det_thresh: float) -> int:
    """Distinct tracks among the boxes a gallery keeps."""
    return len(
        {
            int(t)
            for ids, scores in zip(track_ids, det.scores, strict=True)
            for t in ids[scores >= det_thresh]
            if t >= 0
        }
    )


def interval_run(
    ds: SearchDataset,
    det: DetectedDataset,
    feats: list[NDArray[np.float32]],
    cfg: TrackingConfig,
    every: int,
    fps: float = 10.0,
) -> tuple[DetectedDataset, list[NDArray[np.float32]], list[NDArray[np.int64]], list[bool]]:
    """What ingest stores with ``detector.every_frames`` = ``every``: the detector's boxes on
    every ``every``-th frame of each sequence, the tracker's predicted boxes (its tracks
    being followed, with their last score) on the frames between, as ``FrameStages`` does.
    Returns the stored boxes, their features (zeros on predicted frames: never embedded),
    their track ids, and which frames were detected."""
    boxes, scores = list(det.boxes), list(det.scores)
    out_feats, out_ids = list(feats), [np.zeros(0, np.int64)] * len(ds.frames)
    detected = [True] * len(ds.frames)
    offset, rates = 0, dict(ds.fps)
    dim = next((f.shape[1] for f in feats if f.ndim == 2), 1)
    for cam, positions in _sequences(ds).items():
        tracker = ByteTracker(TrackerConfig.from_settings(cfg, rates.get(cam, fps)))
        for n, i in enumerate(positions):
            if n % every:
                tracked = tracker.coast(n)
                detected[i] = False
                boxes[i], scores[i] = tracked.xyxy, tracked.scores
                out_feats[i] = np.zeros((len(tracked), dim), np.float32)
            else:
                looked = every > 1 or n % max(1, cfg.appearance_every_frames) == 0
                vectors = feats[i] if cfg.appearance_weight > 0 and looked else None
                tracked = tracker.update(
                    Detections(det.boxes[i], det.scores[i], embeddings=vectors), n
                )
            assert tracked.track_ids is not None
            out_ids[i] = np.where(tracked.track_ids >= 0, tracked.track_ids + offset, UNTRACKED)
        offset += tracker.next_id
    stored = DetectedDataset(f"{det.detector}/every{every}", boxes, scores, f"{det.key}/{every}")
    return stored, out_feats, out_ids, detected


def interval_study(
    ds: SearchDataset,
    det: DetectedDataset,
    feats: list[NDArray[np.float32]],
    query_feats: NDArray[np.float32],
    opts: EvalOptions,
    cfg: TrackingConfig,
    everys: list[int],
) -> list[dict[str, Any]]:
    """For each detector interval: detection recall of the stored boxes, MOTA/IDF1/HOTA of
    the online tracker, and search mAP with track-pooled features (pooled over the detected
    frames' crops only; every stored box, predicted ones included, carries its track's)."""
    rows = []
    for every in everys:
        stored, vecs, ids, detected = interval_run(ds, det, feats, cfg, every)
        use = [np.full(len(v), d) for v, d in zip(vecs, detected, strict=True)]
        pooled = score(ds, stored, pooled_features(vecs, ids, use), query_feats, opts)
        row: dict[str, Any] = {"every_frames": every}
        row["detected_fraction"] = sum(detected) / max(1, len(detected))
        row.update(mot_metrics(ds, stored, ids, opts.det_thresh))
        for key in ("det_recall@0.5", "det_ap@0.5", "mAP", "mAP_ci95", "top1"):
            row[key] = pooled[key]
        rows.append(row)
    return rows
