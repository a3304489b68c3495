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
    ca = (a.last_xyxy[:2] + a.last_xyxy[2:]) / 2
    cb = (b.first_xyxy[:2] + b.first_xyxy[2:]) / 2
    height = float((a.last_xyxy[3] - a.last_xyxy[1] + b.first_xyxy[3] - b.first_xyxy[1]) / 2)
    allowed = height * (1.0 + settings.max_speed_heights_s * gap_s)
    return float(np.linalg.norm(cb - ca)) <= allowed
