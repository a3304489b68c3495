"""Offline stitching of one camera's track fragments: when the online tracker loses a person
(an occlusion, a missed detection longer than its memory) and starts a new track for them, the
two fragments are joined if they look alike, follow each other closely in time, and the
person could have walked from where the first ended to where the second began.

A pure function over arrays (the tracks' pooled appearance vectors, their first and last boxes
and times); the stages and the evaluation feed it the same way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.core.vectors import l2_normalise


def mean_direction(vectors: Sequence[NDArray[np.float32]]) -> NDArray[np.float32] | None:
    """The mean of L2-normalised vectors, re-normalised (a track's pooled look); None: none."""
    if not len(vectors):
        return None
    mean = np.mean(vectors, axis=0)
    return l2_normalise(mean)


@dataclass(frozen=True)
class Tracklet:
    track_id: int
    first_s: float
    last_s: float
    first_xyxy: NDArray[np.float32]  # (4,) the first box, pixels
    last_xyxy: NDArray[np.float32]  # (4,) the last box
    feature: NDArray[np.float32] | None  # pooled, L2-normalised; None: nothing embedded


@dataclass(frozen=True)
class StitchSettings:
    # Chosen on the three real sequences (IDF1 over gap 2/4/8 s × similarity 0.6-0.85: a
    # plateau at 2-4 s and 0.6-0.7 on all three; see the README): in-sample, so modest.
    max_gap_s: float = 4.0  # the second fragment starts at most this long after the first ends
    min_similarity: float = 0.7  # cosine of the pooled appearance vectors
    max_speed_heights_s: float = 2.0  # walking: about one body height per second; twice that


def stitch(tracklets: Sequence[Tracklet], settings: StitchSettings) -> dict[int, int]:
    """Track id -> the id of the chain it belongs to (its first fragment's). Greedy by
    similarity: each fragment gets at most one successor and one predecessor, so a chain's
    fragments never overlap in time."""
    candidates: list[tuple[float, int, int]] = []
    for a_i, a in enumerate(tracklets):
        if a.feature is None:
            continue
        for b_i, b in enumerate(tracklets):
            if b.feature is None or a_i == b_i:
                continue
            gap = b.first_s - a.last_s
            if not 0 < gap <= settings.max_gap_s:
                continue
            sim = float(a.feature @ b.feature)
            if sim < settings.min_similarity or not _reachable(a, b, gap, settings):
                continue
            candidates.append((sim, a_i, b_i))
    successor: dict[int, int] = {}
    predecessor: dict[int, int] = {}
    for _sim, a_i, b_i in sorted(candidates, key=lambda c: -c[0]):
        if a_i in successor or b_i in predecessor:
            continue
        successor[a_i], predecessor[b_i] = b_i, a_i
    out: dict[int, int] = {}
    for i, t in enumerate(tracklets):
        head = i
        while head in predecessor:
            head = predecessor[head]
        out[t.track_id] = tracklets[head].track_id
    return out


def _reachable(a: Tracklet, b: Tracklet, gap_s: float, settings: StitchSettings) -> bool:
    """Could a person have walked from a's last box to b's first in ``gap_s`` seconds?"""
    return _near(a.last_xyxy, b.first_xyxy, gap_s, settings)


@dataclass(frozen=True)
class Stray:
    """A box that belongs to no track of more than one box: the tracker never confirmed it
    (a low score, a duplicate box, a person seen for one frame)."""

    key: int  # the caller's name for it
    time_s: float
    xyxy: NDArray[np.float32]
    feature: NDArray[np.float32] | None


@dataclass(frozen=True)
class Path:
    """One appearance (a chain of stitched fragments): every box's time and position, and
    its pooled appearance vector."""

    chain_id: int
    times_s: NDArray[np.float64]  # (n,) ascending
    xyxy: NDArray[np.float32]  # (n, 4)
    feature: NDArray[np.float32] | None


def fold(
    strays: Sequence[Stray], paths: Sequence[Path], settings: StitchSettings
) -> dict[int, int]:
    """Stray key -> the chain id it is folded into: the appearance it looks most like
    (cosine >= ``min_similarity``) among those with a box within ``max_gap_s`` of it that
    the person could have walked from (the stitching rule, measured from the nearest box).
    Strays that fit no appearance stay alone: someone really seen once, or a false alarm."""
    out: dict[int, int] = {}
    usable = [p for p in paths if p.feature is not None and len(p.times_s)]
    if not usable:
        return out
    feats = np.stack([p.feature for p in usable if p.feature is not None])
    for stray in strays:
        if stray.feature is None:
            continue
        sims = feats @ stray.feature
        best, best_sim = None, -1.0
        for p_i in np.flatnonzero(sims >= settings.min_similarity):
            p = usable[int(p_i)]
            j = int(np.clip(np.searchsorted(p.times_s, stray.time_s), 1, len(p.times_s)) - 1)
            if j + 1 < len(p.times_s) and (
                abs(p.times_s[j + 1] - stray.time_s) < abs(p.times_s[j] - stray.time_s)
            ):
                j += 1
            gap = abs(float(p.times_s[j]) - stray.time_s)
            if gap > settings.max_gap_s or not _near(p.xyxy[j], stray.xyxy, gap, settings):
                continue
            if float(sims[p_i]) > best_sim:
                best, best_sim = p.chain_id, float(sims[p_i])
        if best is not None:
            out[stray.key] = best
    return out


def _near(
    a: NDArray[np.float32], b: NDArray[np.float32], gap_s: float, settings: StitchSettings
) -> bool:
    ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
    height = float((a[3] - a[1] + b[3] - b[1]) / 2)
    return float(np.linalg.norm(cb - ca)) <= height * (1.0 + settings.max_speed_heights_s * gap_s)
