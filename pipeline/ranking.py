"""Ranking a query's candidates: the similarity order (optionally k-reciprocal re-ranked),
pushed down by hits an analyst rejected, and the stored vectors of sightings a query starts
from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from pipeline.core.errors import QueryError
from reid.rerank import rerank_order
from storage.gallery import Gallery, SearchFilters
from storage.models import TrackRow


def candidate_depth(k: int) -> int:
    """How deep the similarity ranking is read to give ``k`` answers: the pool re-ranking
    reorders, the pool searched for look-alikes of rejected hits, and the first read for
    ``k`` appearances (read deeper only while too few distinct ones are found). One rule."""
    return max(100, 4 * k)


NEGATIVE_WEIGHT = 1.0  # how hard a candidate closer to a rejected hit than to the query drops


@dataclass(frozen=True)
class SimilarityRanker:
    """``ranker(depth)`` -> the best ``depth`` (similarity, detection id) pairs for ``query``.
    With ``rerank_pool`` the first that many candidates are put in k-reciprocal order (the
    rest keep the plain order behind them); similarities stay the cosine ones.

    ``negatives`` (vectors of hits an analyst rejected): a pool of candidates is re-ordered by
    ``cos(q, x) - NEGATIVE_WEIGHT * max(0, max_n cos(n, x) - cos(q, x))``, so a candidate that
    looks more like a rejected person than like the query falls behind the ones that do not;
    and the other sightings on a rejected hit's track (the tracker says: the same person) go
    behind every candidate that is not. ``excluded`` ids (the rejected hits themselves) never
    come back."""

    gallery: Gallery
    embedder_id: int
    query: NDArray[np.float32]
    filters: SearchFilters | None
    rerank_pool: int = 0
    negatives: NDArray[np.float32] | None = None
    excluded: frozenset[int] = frozenset()
    rejected_tracks: frozenset[int] = frozenset()

    def __call__(self, depth: int) -> list[tuple[float, int]]:
        if self.negatives is not None and len(self.negatives):
            return self._pushed_down(depth)
        if self.excluded:
            extra = depth + len(self.excluded)
            return [p for p in self._ranked(extra) if p[1] not in self.excluded][:depth]
        return self._ranked(depth)

    def _ranked(self, depth: int) -> list[tuple[float, int]]:
        g, q = self.gallery, self.query
        if not self.rerank_pool:
            return g.rank(self.embedder_id, q, depth, self.filters)
        ranked = g.rank(self.embedder_id, q, max(depth, self.rerank_pool), self.filters)
        head, tail = ranked[: self.rerank_pool], ranked[self.rerank_pool :]
        vectors = g.index_for(self.embedder_id).reconstruct_many([i for _, i in head])
        return ([head[int(j)] for j in rerank_order(q, vectors)] + tail)[:depth]

    def _pushed_down(self, depth: int) -> list[tuple[float, int]]:
        assert self.negatives is not None
        g = self.gallery
        pool = candidate_depth(depth) + len(self.excluded)
        ranked = [
            p
            for p in g.rank(self.embedder_id, self.query, pool, self.filters)
            if p[1] not in self.excluded
        ]
        if not ranked:
            return []
        vectors = g.index_for(self.embedder_id).reconstruct_many([i for _, i in ranked])
        sims = np.asarray([sv for sv, _ in ranked], np.float32)
        closest_negative = (vectors @ np.asarray(self.negatives, np.float32).T).max(axis=1)
        score = sims - NEGATIVE_WEIGHT * np.maximum(0.0, closest_negative - sims)
        if self.rejected_tracks:
            tracks = g.track_ids([i for _, i in ranked])
            same = np.asarray([tracks.get(i) in self.rejected_tracks for _, i in ranked])
            score = np.where(same, score - 10.0, score)  # cosines lie in [-1, 1]
        order = np.argsort(-score, kind="stable")
        return [ranked[int(j)] for j in order[:depth]]


@dataclass(frozen=True)
class AttributeRanker:
    """``ranker(depth)`` for a search by clothing colour alone (no picture of the person): the
    sightings that pass ``filters``, an appearance ranked by the share of its sightings whose
    colours match (then by how many match), its sightings by detector score, and single boxes
    on no appearance after every appearance. The share stands in for the similarity."""

    gallery: Gallery
    filters: SearchFilters
    excluded: frozenset[int] = frozenset()

    def __call__(self, depth: int) -> list[tuple[float, int]]:
        return self._ranked[:depth]

    @cached_property
    def _ranked(self) -> list[tuple[float, int]]:
        """Every match in order, read once (the track search asks again, deeper)."""
        found = self.gallery.attribute_matches(self.filters)
        rows = [r for r in found if r[0] not in self.excluded]
        matching = Counter(t for _i, t, _s, _n in rows if t is not None)

        def share(track: int | None, size: int | None) -> float:
            if track is None:
                return 0.0
            return matching[track] / max(size or 0, matching[track], 1)

        def count(track: int | None) -> int:
            return 0 if track is None else matching[track]

        rows.sort(key=lambda r: (r[1] is None, -share(r[1], r[3]), -count(r[1]), -r[2], r[0]))
        return [(share(t, n), i) for i, t, _s, n in rows]


def stored_vector(gallery: Gallery, detection_id: int) -> tuple[int, NDArray[np.float32], bytes]:
    """(embedder id, vector, thumbnail JPEG) of a stored sighting: its own embedding, or its
    track's pooled vector when the tracking cadence skipped it."""
    row, _video = gallery.detection(detection_id)
    if row.embedding is not None:
        vector = np.frombuffer(row.embedding, np.float32)
    else:
        vector = pooled_vector_of(gallery, row.track_id, detection_id)
    return row.embedder_id, vector, bytes(row.thumbnail)


def pooled_vector_of(
    gallery: Gallery, track_id: int | None, detection_id: int
) -> NDArray[np.float32]:
    with gallery.session() as s:
        track = s.get(TrackRow, track_id) if track_id is not None else None
    if track is None or track.pooled is None:
        raise QueryError(
            f"detection #{detection_id} has no embedding (tracking cadence skipped it) "
            "and no finished track; query one of its track's embedded sightings"
        )
    return np.frombuffer(track.pooled, np.float32)
