"""Multi-object tracking in the ByteTrack family (Zhang et al., ECCV 2022): Kalman-filtered
boxes, a first association of confident detections and a second of low-score ones, IoU cost
(optionally fused with an appearance cost), each assignment solved with ``lap.lapjv``.

Every detection keeps its row: one the tracker does not keep gets track id -1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lap
import numpy as np
from numpy.typing import NDArray

from pipeline.core.boxes import iou_matrix
from pipeline.core.config import TrackingConfig
from pipeline.core.types import Detections
from pipeline.core.vectors import l2_normalise

UNTRACKED = -1


@dataclass(frozen=True)
class TrackerConfig:
    high_thresh: float = 0.5  # first association and new tracks start from these
    low_thresh: float = 0.1  # second association uses detections between low and high
    new_track_thresh: float = 0.6
    match_thresh: float = 0.8  # max (1 - IoU) cost in the first association
    second_match_thresh: float = 0.5
    buffer_frames: int = 30  # a lost track may come back within this many frames
    lost_match_thresh: float = 0.5  # ... if its predicted box overlaps the detection this well
    appearance_weight: float = 0.0  # >0: cost = (1-w)·(1-IoU) + w·(1-cos) when embeddings exist

    @classmethod
    def from_settings(cls, tc: TrackingConfig, fps: float) -> TrackerConfig:
        """The tracker ingest and evaluation both run: thresholds from the config, the
        lost-track buffer converted from seconds to frames at ``fps``."""
        return cls(
            tc.high_thresh,
            tc.low_thresh,
            tc.new_track_thresh,
            tc.match_thresh,
            buffer_frames=max(1, round(tc.buffer_s * max(fps, 1e-6))),
            appearance_weight=tc.appearance_weight,
        )


class KalmanXYAH:
    """Constant-velocity Kalman filter on (cx, cy, aspect w/h, h), ByteTrack's parameters."""

    _pos = 1.0 / 20
    _vel = 1.0 / 160

    def __init__(self) -> None:
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)
        self.H = np.eye(4, 8)

    def initiate(self, z: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        mean = np.r_[z, np.zeros(4)]
        h = z[3]
        std = [
            2 * self._pos * h,
            2 * self._pos * h,
            1e-2,
            2 * self._pos * h,
            10 * self._vel * h,
            10 * self._vel * h,
            1e-5,
            10 * self._vel * h,
        ]
        return mean, np.diag(np.square(std))

    def predict(
        self, mean: NDArray[np.float64], cov: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        h = mean[3]
        q = np.diag(
            np.square(
                [
                    self._pos * h,
                    self._pos * h,
                    1e-2,
                    self._pos * h,
                    self._vel * h,
                    self._vel * h,
                    1e-5,
                    self._vel * h,
                ]
            )
        )
        return self.F @ mean, self.F @ cov @ self.F.T + q

    def update(
        self, mean: NDArray[np.float64], cov: NDArray[np.float64], z: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        h = mean[3]
        r = np.diag(np.square([self._pos * h, self._pos * h, 1e-1, self._pos * h]))
        s = self.H @ cov @ self.H.T + r
        gain = np.linalg.solve(s, (cov @ self.H.T).T).T
        mean = mean + gain @ (z - self.H @ mean)
        cov = cov - gain @ s @ gain.T
        return mean, cov


def _xyah(xyxy: NDArray[np.floating]) -> NDArray[np.float64]:
    w, h = xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]
    return np.array([xyxy[0] + w / 2, xyxy[1] + h / 2, w / max(h, 1e-6), h], np.float64)


def _xyxy(m: NDArray[np.float64]) -> NDArray[np.float64]:
    w = m[2] * m[3]
    return np.array([m[0] - w / 2, m[1] - m[3] / 2, m[0] + w / 2, m[1] + m[3] / 2])


@dataclass
class _Track:
    track_id: int
    mean: NDArray[np.float64]
    cov: NDArray[np.float64]
    confirmed: bool
    last_frame: int
    lost: bool = False
    feature: NDArray[np.float32] | None = field(default=None, repr=False)
    score: float = 1.0  # of its last detection (a predicted box carries it)

    def box(self) -> NDArray[np.float64]:
        return _xyxy(self.mean)


def _assign(cost: NDArray[np.float64], limit: float) -> list[tuple[int, int]]:
    if cost.size == 0:
        return []
    _c, x, _y = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    return [(i, int(j)) for i, j in enumerate(x) if j >= 0]


class ByteTracker:
    """Feed it each frame's detections in order (``update``); it returns them with track ids.
    ``next_id`` lets a resumed ingest continue the id sequence of the interrupted one."""

    def __init__(self, cfg: TrackerConfig | None = None, next_id: int = 1) -> None:
        self.cfg = cfg or TrackerConfig()
        self.kf = KalmanXYAH()
        self.tracks: list[_Track] = []
        self.next_id = next_id
        self._updates = 0

    def state(self) -> dict[str, Any]:
        """Everything ``update`` depends on, as JSON-ready values (floats round-trip exactly):
        a run committed with this state and resumed from it tracks as if never stopped."""
        return {
            "next_id": self.next_id,
            "updates": self._updates,
            "tracks": [
                {
                    "id": t.track_id,
                    "mean": t.mean.tolist(),
                    "cov": t.cov.ravel().tolist(),
                    "confirmed": t.confirmed,
                    "last_frame": t.last_frame,
                    "lost": t.lost,
                    "feature": None if t.feature is None else t.feature.tolist(),
                    "score": t.score,
                }
                for t in self.tracks
            ],
        }

    @classmethod
    def from_state(cls, cfg: TrackerConfig, state: dict[str, Any]) -> ByteTracker:
        tracker = cls(cfg, next_id=int(state["next_id"]))
        tracker._updates = int(state["updates"])
        tracker.tracks = [
            _Track(
                int(t["id"]),
                np.asarray(t["mean"], np.float64),
                np.asarray(t["cov"], np.float64).reshape(8, 8),
                confirmed=bool(t["confirmed"]),
                last_frame=int(t["last_frame"]),
                lost=bool(t["lost"]),
                feature=None if t["feature"] is None else np.asarray(t["feature"], np.float32),
                score=float(t.get("score", 1.0)),
            )
            for t in state["tracks"]
        ]
        return tracker

    def _cost(
        self, tracks: list[_Track], dets: Detections, rows: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        if not tracks or len(rows) == 0:
            return np.zeros((len(tracks), len(rows)))
        boxes = np.stack([t.box() for t in tracks])
        cost = 1.0 - iou_matrix(boxes, dets.xyxy[rows])
        w = self.cfg.appearance_weight
        if w > 0 and dets.embeddings is not None and all(t.feature is not None for t in tracks):
            feats = np.stack([t.feature for t in tracks if t.feature is not None])
            app = 1.0 - feats @ dets.embeddings[rows].T
            # the look decides among boxes that overlap as much as position alone would need
            # (1 - IoU <= match_thresh), it never makes a distant box a candidate
            cost = np.where(cost <= self.cfg.match_thresh, (1 - w) * cost + w * app, 1.0)
        return cost

    def _apply(self, track: _Track, dets: Detections, row: int, frame_index: int) -> None:
        track.mean, track.cov = self.kf.update(track.mean, track.cov, _xyah(dets.xyxy[row]))
        track.last_frame = frame_index
        track.lost = False
        track.score = float(dets.scores[row])
        if dets.embeddings is not None:
            f = dets.embeddings[row]
            track.feature = (
                f if track.feature is None else l2_normalise(0.9 * track.feature + 0.1 * f)
            )

    def update(self, dets: Detections, frame_index: int) -> Detections:
        cfg = self.cfg
        ids = np.full(len(dets), UNTRACKED, np.int64)
        for t in self.tracks:
            t.mean, t.cov = self.kf.predict(t.mean, t.cov)
        high = np.where(dets.scores >= cfg.high_thresh)[0]
        low = np.where((dets.scores >= cfg.low_thresh) & (dets.scores < cfg.high_thresh))[0]
        confirmed = [t for t in self.tracks if t.confirmed]
        fresh = [t for t in self.tracks if not t.confirmed]

        # 1) confirmed (tracked and lost) tracks vs confident detections
        cost = self._cost(confirmed, dets, high)
        if cost.size:
            # A lost track coasts on its last velocity; without an appearance check it may only
            # take a box it overlaps well, or it claims whoever appears near its predicted path.
            lost = np.array([t.lost for t in confirmed])
            cost[lost] = np.where(cost[lost] > cfg.lost_match_thresh, 1.0, cost[lost])
        pairs = _assign(cost, cfg.match_thresh)
        used_t, used_d = set(), set()
        for ti, di in pairs:
            self._apply(confirmed[ti], dets, int(high[di]), frame_index)
            ids[high[di]] = confirmed[ti].track_id
            used_t.add(ti)
            used_d.add(di)
        # 2) still-tracked leftovers vs low-score detections (the "byte" step)
        rest = [t for i, t in enumerate(confirmed) if i not in used_t and not t.lost]
        for ti, di in _assign(self._cost(rest, dets, low), cfg.second_match_thresh):
            self._apply(rest[ti], dets, int(low[di]), frame_index)
            ids[low[di]] = rest[ti].track_id
        # 3) tentative tracks (seen once) vs the confident detections still free
        free = np.array([d for i, d in enumerate(high) if i not in used_d], np.int64)
        used_f: set[int] = set()
        for ti, di in _assign(self._cost(fresh, dets, free), 0.7):
            self._apply(fresh[ti], dets, int(free[di]), frame_index)
            fresh[ti].confirmed = True
            ids[free[di]] = fresh[ti].track_id
            used_f.add(di)
        # 4) new tracks; a tentative track not confirmed now is dropped (its one row keeps its id)
        self.tracks = [t for t in self.tracks if t.confirmed]
        for di, row in enumerate(free):
            if di in used_f or dets.scores[row] < cfg.new_track_thresh:
                continue
            mean, cov = self.kf.initiate(_xyah(dets.xyxy[row]))
            feat = None if dets.embeddings is None else dets.embeddings[row]
            # as in ByteTrack, tracks born in the very first frame need no confirmation
            track = _Track(
                self.next_id,
                mean,
                cov,
                confirmed=self._updates == 0,
                last_frame=frame_index,
                feature=feat,
            )
            self.next_id += 1
            self.tracks.append(track)
            ids[row] = track.track_id
        for t in self.tracks:
            if t.last_frame != frame_index:
                t.lost = True
        self.tracks = [t for t in self.tracks if frame_index - t.last_frame <= cfg.buffer_frames]
        self._updates += 1
        return dets.with_track_ids(ids)

    def coast(self, frame_index: int) -> Detections:
        """A frame the detector skips (``detector.every_frames``): every track moves on by its
        motion model, and the boxes of the tracks being followed (confirmed, not lost) are
        returned as this frame's, with their ids and their last detection's score. Nothing
        is matched, started or ended: the next detected frame does that."""
        for t in self.tracks:
            t.mean, t.cov = self.kf.predict(t.mean, t.cov)
        live = [t for t in self.tracks if t.confirmed and not t.lost]
        if not live:
            return Detections.empty().with_track_ids(np.zeros(0, np.int64))
        boxes = np.stack([t.box() for t in live]).astype(np.float32)
        scores = np.array([t.score for t in live], np.float32)
        ids = np.array([t.track_id for t in live], np.int64)
        return Detections(boxes, scores).with_track_ids(ids)


class EmbedCadence:
    """Which crops get a vector: a track's crop when the track starts, then every ``every``
    frames, or sooner when its box height changes by ``resize`` (relative). Untracked boxes
    are always embedded. Ingest and track-level evaluation use this same rule. Only used when
    the tracker associates by position alone: with appearance every crop is embedded."""

    def __init__(self, every: int, resize: float) -> None:
        self.every, self.resize = every, resize
        self.last: dict[int, tuple[int, float]] = {}

    def state(self, alive: set[int] | None = None) -> dict[str, list[float]]:
        """The last embedding (frame, box height) per track; only ``alive`` tracks when given
        (ids are never reused, so a finished track's entry can never matter again)."""
        return {
            str(tid): [f, h] for tid, (f, h) in self.last.items() if alive is None or tid in alive
        }

    def restore(self, state: dict[str, list[float]]) -> None:
        self.last = {int(tid): (int(f), float(h)) for tid, (f, h) in state.items()}

    def choose(self, dets: Detections, frame_index: int) -> NDArray[np.bool_]:
        if dets.track_ids is None:
            return np.ones(len(dets), bool)
        mask = np.zeros(len(dets), bool)
        heights = dets.xyxy[:, 3] - dets.xyxy[:, 1]
        for j, (tid, h) in enumerate(zip(dets.track_ids.tolist(), heights.tolist(), strict=True)):
            prev = self.last.get(tid)
            if (
                tid < 0
                or prev is None
                or frame_index - prev[0] >= self.every
                or (abs(h / max(prev[1], 1e-6) - 1.0) >= self.resize)
            ):
                mask[j] = True
                if tid >= 0:
                    self.last[tid] = (frame_index, h)
        return mask
