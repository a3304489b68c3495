"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li: "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017), applied to the top candidates of one query.

Cost: the candidates' vectors are read back from the index and an (N+1)×(N+1) distance
matrix is re-ranked, O(N²·k1) in numpy; with N = max(100, 4k) that is a few milliseconds to a
few tens of milliseconds per query. Off by default (``--rerank``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from storage.gallery import Gallery, SearchFilters


def k_reciprocal_distances(
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


def rerank(
    gallery: Gallery,
    embedder_id: int,
    query: NDArray[np.float32],
    k: int,
    filters: SearchFilters | None = None,
    candidates: int | None = None,
) -> list[tuple[float, int]]:
    """The top ``k`` of the first ``max(100, 4k)`` candidates after re-ranking, as
    (cosine similarity, detection id) pairs in re-ranked order."""
    pool = gallery.rank(embedder_id, query, candidates or max(100, 4 * k), filters)
    if len(pool) < 2:
        return pool[:k]
    index = gallery.index_for(embedder_id)
    G = np.stack([index.reconstruct(i) for _, i in pool])
    q = query.reshape(1, -1).astype(np.float32)

    def dist(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.sqrt(np.maximum(2.0 - 2.0 * a @ b.T, 0.0)).astype(np.float32)

    final = k_reciprocal_distances(dist(q, G), dist(q, q), dist(G, G))[0]
    order = np.argsort(final, kind="stable")[:k]
    return [pool[int(j)] for j in order]
