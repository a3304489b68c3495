"""Re-ID retrieval metrics (CMC and mAP, the Market-1501 protocol): what training validates
with and what evaluation reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class ReidResult:
    mAP: float
    cmc: NDArray[np.float64]  # cmc[k-1] = fraction of queries with a true match in the top k
    queries: int  # queries with at least one valid gallery match (the others are skipped)
    per_query_ap: NDArray[np.float64] | None = None  # of those queries, for bootstrap intervals


def reid_metrics(
    distmat: NDArray[np.floating],
    q_pids: Sequence[int],
    g_pids: Sequence[int],
    q_camids: Sequence[int],
    g_camids: Sequence[int],
    max_rank: int = 50,
) -> ReidResult:
    """Re-ID CMC and mAP the way torchreid's ``eval_market1501`` computes them (the Market-1501,
    DukeMTMC, MSMT17, CUHK03-NP and MARS protocol): for each query, gallery samples of the
    same identity seen by the same camera are removed; a query whose identity has no other
    sample left is skipped. AP is the mean of precision at each true match; CMC counts a
    query as found at rank k when a true match is within its top k."""
    dist = np.asarray(distmat, np.float64)
    qp, gp = np.asarray(q_pids), np.asarray(g_pids)
    qc, gc = np.asarray(q_camids), np.asarray(g_camids)
    order = np.argsort(dist, axis=1, kind="stable")
    cmcs, aps = [], []
    for i in range(dist.shape[0]):
        ranked = order[i]
        keep = ~((gp[ranked] == qp[i]) & (gc[ranked] == qc[i]))
        matches = (gp[ranked] == qp[i])[keep].astype(np.float64)
        if not matches.any():
            continue
        cmc = np.minimum(matches.cumsum(), 1.0)[:max_rank]
        if len(cmc) < max_rank:
            cmc = np.pad(cmc, (0, max_rank - len(cmc)), constant_values=1.0)
        cmcs.append(cmc)
        hits = np.flatnonzero(matches)
        aps.append(float(np.mean((np.arange(len(hits)) + 1) / (hits + 1))))
    if not aps:
        return ReidResult(0.0, np.zeros(max_rank), 0)
    return ReidResult(
        float(np.mean(aps)), np.mean(cmcs, axis=0), len(aps), np.asarray(aps, np.float64)
    )
