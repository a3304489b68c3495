"""k-reciprocal re-ranking as a pure function, on a case whose answer follows from the
definition: a hub near the query whose own neighbours lie elsewhere falls below a true
mutual neighbour."""

from __future__ import annotations

import numpy as np

from reid.rerank import re_ranking, rerank_order

# The query q at the origin. Cluster A to its right (a1 at distance 1.0, whose 3 nearest are
# a3, a2 and q: q and a1 are k-reciprocal). h to its left at 0.9, nearer than a1, but h's 3
# nearest are its own cluster B, not q: not reciprocal.
POINTS = {
    "q": (0.0, 0.0),
    "a1": (1.0, 0.0),
    "a2": (1.0, 0.1),
    "a3": (1.05, 0.05),
    "h": (-0.9, 0.0),
    "b1": (-1.0, 0.05),
    "b2": (-1.0, -0.05),
    "b3": (-1.05, 0.0),
}


def _distances() -> tuple[list[str], np.ndarray]:
    names = list(POINTS)
    p = np.array([POINTS[n] for n in names])
    return names, np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1)).astype(np.float32)


def test_a_non_reciprocal_hub_falls_below_a_mutual_neighbour() -> None:
    names, d = _distances()
    gallery = names[1:]
    plain = [gallery[i] for i in np.argsort(d[0, 1:])]
    assert plain[0] == "h"  # the plain distance puts the hub first
    final = re_ranking(d[:1, 1:], d[:1, :1], d[1:, 1:], k1=3, k2=1, lambda_value=0.3)
    assert final.shape == (1, 7)
    order = [gallery[i] for i in np.argsort(final[0])]
    assert order[0] == "a1"
    assert order.index("h") > order.index("a1")
    assert set(order[:3]) == {"a1", "a2", "a3"}  # the query's whole mutual cluster comes first


def test_rerank_order_on_unit_vectors_is_a_permutation() -> None:
    rng = np.random.default_rng(0)
    g = rng.normal(size=(30, 16)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    q = g[3] + 0.05 * rng.normal(size=16).astype(np.float32)
    q /= np.linalg.norm(q)
    order = rerank_order(q, g)
    assert sorted(order.tolist()) == list(range(30))
    assert order[0] == 3  # the query's own near-duplicate stays first
    assert rerank_order(q, g[:1]).tolist() == [0]
