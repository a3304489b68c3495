"""Tracklet association for unsupervised adaptation: tracks whose mean features are alike
become one pseudo-identity, except that two tracks seen at the same time in the same video are
certainly two people (a cannot-link no merge may break)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def cannot_link(spans: list[tuple[int, int, int]]) -> NDArray[np.bool_]:
    """(n, n): True where tracks (video, first frame, last frame) overlap in time in one video."""
    n = len(spans)
    out = np.zeros((n, n), bool)
    for i in range(n):
        vi, ai, bi = spans[i]
        for j in range(i + 1, n):
            vj, aj, bj = spans[j]
            if vi == vj and ai <= bj and aj <= bi:
                out[i, j] = out[j, i] = True
    return out


def associate(
    feats: NDArray[np.float32], forbidden: NDArray[np.bool_], threshold: float
) -> NDArray[np.int64]:
    """Pseudo-identity per track: greedy average-linkage merging of the most similar groups
    (cosine of L2-normalised mean features) while their similarity reaches ``threshold`` and no
    member of one cannot-link a member of the other. Labels are 0..k-1 in first-seen order."""
    n = len(feats)
    groups: list[set[int]] = [{i} for i in range(n)]
    sims = feats @ feats.T
    while True:
        best, pair = threshold, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                ga, gb = list(groups[a]), list(groups[b])
                if forbidden[np.ix_(ga, gb)].any():
                    continue
                sim = float(sims[np.ix_(ga, gb)].mean())
                if sim >= best:
                    best, pair = sim, (a, b)
        if pair is None:
            break
        a, b = pair
        groups[a] |= groups.pop(b)
    labels = np.empty(n, np.int64)
    for k, g in enumerate(sorted(groups, key=min)):
        labels[list(g)] = k
    return labels
