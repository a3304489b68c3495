"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li: "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017) as pure functions over distance matrices and vectors;
the query layer decides which candidates to re-rank.

Cost: an (N+1)×(N+1) distance matrix is re-ranked, O(N²·k1) in numpy; with N = max(100, 4k)
candidates that is a few milliseconds to a few tens of milliseconds per query.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pipeline.core.vectors import l2_normalise


def re_ranking(
    q_g: NDArray[np.float32],
    q_q: NDArray[np.float32],
    g_g: NDArray[np.float32],
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> NDArray[np.float32]:
    """Re-ranked (n_query, n_gallery) distances from Euclidean distance matrices, following
    the authors' reference implementation."""
    n_q = q_g.shape[0]
    original = np.concatenate(
        [np.concatenate([q_q, q_g], axis=1), np.concatenate([q_g.T, g_g], axis=1)], axis=0
    )
    original = np.power(original, 2).astype(np.float32)
    original = np.transpose(original / np.maximum(np.max(original, axis=0), 1e-12))
    n_all = original.shape[0]
    k1 = min(k1, n_all - 1)
    V = np.zeros_like(original, dtype=np.float32)
    initial_rank = np.argsort(original).astype(np.int32)
    half = int(np.around(k1 / 2.0))
    for i in range(n_all):
        forward = initial_rank[i, : k1 + 1]
        backward = initial_rank[forward, : k1 + 1]
        reciprocal = forward[np.where(backward == i)[0]]
        expansion = reciprocal
        for candidate in reciprocal:
            c_forward = initial_rank[candidate, : half + 1]
            c_backward = initial_rank[c_forward, : half + 1]
            c_reciprocal = c_forward[np.where(c_backward == candidate)[0]]
            if len(np.intersect1d(c_reciprocal, reciprocal)) > 2.0 / 3 * len(c_reciprocal):
                expansion = np.append(expansion, c_reciprocal)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        V[i, expansion] = weight / np.sum(weight)
    original = original[:n_q]
    if k2 != 1:
        V = np.stack([V[initial_rank[i, :k2]].mean(axis=0) for i in range(n_all)]).astype(
            np.float32
        )
    inv_index = [np.where(V[:, i] != 0)[0] for i in range(n_all)]
    jaccard = np.zeros_like(original, dtype=np.float32)
    for i in range(n_q):
        temp_min = np.zeros((1, n_all), dtype=np.float32)
        nonzero = np.where(V[i] != 0)[0]
        for j in nonzero:
            temp_min[0, inv_index[j]] += np.minimum(V[i, j], V[inv_index[j], j])
        jaccard[i] = 1 - temp_min / (2.0 - temp_min)
    final = jaccard * (1 - lambda_value) + original * lambda_value
    return np.asarray(final[:n_q, n_q:], dtype=np.float32)


def rerank_order(query: NDArray[np.float32], candidates: NDArray[np.float32]) -> NDArray[np.int64]:
    """Positions of ``candidates`` (N, D) in k-reciprocal re-ranked order for one ``query``
    (D,); both L2-normalised, so Euclidean distance is sqrt(2 - 2·cosine)."""
    if len(candidates) < 2:
        return np.arange(len(candidates), dtype=np.int64)
    q = query.reshape(1, -1).astype(np.float32)
    g = np.asarray(candidates, np.float32)

    def dist(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.sqrt(np.maximum(2.0 - 2.0 * a @ b.T, 0.0)).astype(np.float32)

    final = re_ranking(dist(q, g), dist(q, q), dist(g, g))[0]
    return np.argsort(final, kind="stable").astype(np.int64)


def expand_query(
    query: NDArray[np.float32], ranked: NDArray[np.float32], n: int = 3, alpha: float = 3.0
) -> NDArray[np.float32]:
    """α-weighted query expansion (Radenović, Tolias, Chum, TPAMI 2019): the query plus its
    ``n`` best candidates ``ranked`` (best first, L2-normalised), each weighted by its cosine
    to the query raised to ``alpha``, re-normalised. Searching again with it finds views of
    the person that look more like their other views than like the query."""
    top = np.asarray(ranked[:n], np.float32)
    if not len(top):
        return query
    weights = np.maximum(top @ query, 0.0) ** alpha
    out = query + (weights[:, None] * top).sum(axis=0)
    return l2_normalise(out)


def ranked_positions(
    query: NDArray[np.float32],
    gallery: NDArray[np.float32],
    pool: int,
    rerank: bool,
    qe: int = 0,
) -> NDArray[np.int64]:
    """The gallery's order for one query as the query layer answers it: cosine ranking, with
    ``qe`` > 0 a second search with the query expanded by its ``qe`` best hits, then with
    ``rerank`` the best ``pool`` re-ranked k-reciprocally (the rest stay behind them)."""
    sims = gallery @ query
    order = np.argsort(-sims, kind="stable")
    if qe > 0:
        query = expand_query(query, gallery[order[:qe]], n=qe)
        order = np.argsort(-(gallery @ query), kind="stable")
    if rerank:
        head = order[:pool]
        order = np.concatenate([head[rerank_order(query, gallery[head])], order[pool:]])
    return order.astype(np.int64)
