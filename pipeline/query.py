"""Query: a suspect's crop(s) in, ranked hits out. The crop goes through the same embedder
call as a gallery detection, and the embedder is the one the gallery was built with."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.core.config import ReidConfig
from pipeline.core.errors import QueryError
from pipeline.core.files import sha256_of
from pipeline.core.vectors import l2_normalise
from reid import Embedder, build_embedder
from reid.rerank import expand_query, rerank_order
from storage.gallery import Gallery, Hit, SearchFilters
from storage.models import EmbedderRow, TrackRow, VideoRow
from storage.search import resolve_videos
from storage.tracks import TrackHit, search_tracks, tracks_of_video

log = logging.getLogger(__name__)

BY = ("track", "detection")


def candidate_depth(k: int) -> int:
    """How deep the similarity ranking is read to give ``k`` answers: the pool re-ranking
    reorders, the pool searched for look-alikes of rejected hits, and the first read for
    ``k`` appearances (read deeper only while too few distinct ones are found). One rule."""
    return max(100, 4 * k)


@dataclass(frozen=True)
class QuerySpec:
    """One search as a person asks for it, from the CLI, the API or the page, checked in one
    place (``check``) before anything is embedded or read. ``images``: how many query crops
    come with it; ``subject``: a saved subject whose confirmed sightings join the query."""

    k: int
    by: str = "track"
    filters: SearchFilters = field(default_factory=SearchFilters)
    detection_id: int | None = None
    confirmed: tuple[int, ...] = ()
    rejected: tuple[int, ...] = ()
    subject: str | int | None = None
    strays: bool = False
    rerank: bool = False
    expand: int = 0
    images: int = 0

    def check(self) -> QuerySpec:
        """Itself, or a QueryError naming what is wrong (one line, said the same way to the
        CLI and the API)."""
        if not (self.images or self.detection_id is not None or self.confirmed or self.subject):
            raise QueryError(
                "nothing to query; give an image, a detection id (--detection), a subject or "
                "confirmed sightings"
            )
        if self.k < 1:
            raise QueryError(f"k = {self.k}: ask for at least 1 hit")
        if self.by not in BY:
            raise QueryError(f"by = {self.by!r}: answer by {' or '.join(BY)}")
        if self.expand < 0:
            raise QueryError(f"expand = {self.expand}: 0 (off) or a number of best hits")
        f = self.filters
        if f.min_similarity is not None and not -1.0 <= f.min_similarity <= 1.0:
            raise QueryError("the minimum similarity is a cosine similarity within -1..1")
        if f.from_s is not None and f.to_s is not None and f.to_s < f.from_s:
            raise QueryError("the time window ends before it starts (--to before --from)")
        return self

    def run(
        self,
        gallery: Gallery,
        crops: list[NDArray[np.uint8]],
        reid: str | None = None,
        weights: str | None = None,
        loaded: tuple[int, Embedder] | None = None,
        confirmed: Sequence[int] | None = None,
    ) -> QueryResult:
        """``run_query`` with this search; ``confirmed``: the sightings to fuse when the
        caller has resolved a subject into them (default: the spec's own)."""
        return run_query(
            gallery,
            crops,
            self.k,
            self.filters,
            reid=reid,
            detection_id=self.detection_id,
            rerank=self.rerank,
            by=self.by,
            weights=weights,
            loaded=loaded,
            confirmed=self.confirmed if confirmed is None else confirmed,
            rejected=self.rejected,
            strays=self.strays,
            expand=self.expand,
        )


@dataclass
class QueryResult:
    hits: list[Hit]  # per detection (--by detection); for --by track, each track's best sighting
    crops: list[NDArray[np.uint8]]  # what was queried, BGR, for the report
    embedder: str
    timings_s: dict[str, float] = field(default_factory=dict)
    reranked: bool = False
    tracks: list[TrackHit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. videos whose ingest is incomplete


def fuse(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Several views of one person: mean of the normalised vectors, re-normalised."""
    return l2_normalise(l2_normalise(vectors).mean(axis=0, keepdims=True))[0]


def embedder_config(
    row: EmbedderRow, weights: str | None = None, device: str = "cpu"
) -> ReidConfig:
    """The configuration that rebuilds exactly the embedder whose vectors ``row`` holds: its
    name and, for a checkpoint-taking embedder, the same weights file (``weights`` points at
    a copy elsewhere). A missing or different file is a QueryError naming what is needed."""
    path = weights or row.weights
    if row.weights_sha256:
        need = (
            f"the gallery's vectors come from {row.name} with weights {row.weights} "
            f"(sha256 {row.weights_sha256[:12]}…)"
        )
        if not path or not Path(path).is_file():
            raise QueryError(f"{need}, which is not there; pass --reid-weights FILE with it")
        if sha256_of(Path(path)) != row.weights_sha256:
            raise QueryError(
                f"{path} is not the checkpoint the gallery was built with: {need}; "
                "pass that file with --reid-weights"
            )
    return ReidConfig(name=row.name, batch_crops=32, device=device, weights=path)


def embedder_for(
    gallery: Gallery, requested: str | None, weights: str | None = None, device: str = "cpu"
) -> tuple[int, Embedder]:
    row = gallery.embedder_for_query(requested)
    try:
        embedder = build_embedder(embedder_config(row, weights, device))
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    if embedder.dim != row.dim:
        raise QueryError(
            f"embedder {row.name} now gives {embedder.dim}-d vectors, the gallery "
            f"holds {row.dim}-d; re-ingest with --force"
        )
    return row.id, embedder


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


def stored_vector(gallery: Gallery, detection_id: int) -> tuple[int, NDArray[np.float32], bytes]:
    """(embedder id, vector, thumbnail JPEG) of a stored sighting: its own embedding, or its
    track's pooled vector when the tracking cadence skipped it."""
    row, _video = gallery.detection(detection_id)
    if row.embedding is not None:
        vector = np.frombuffer(row.embedding, np.float32)
    else:
        vector = pooled_vector_of(gallery, row.track_id, detection_id)
    return row.embedder_id, vector, bytes(row.thumbnail)


def run_query(
    gallery: Gallery,
    crops: list[NDArray[np.uint8]],
    k: int,
    filters: SearchFilters | None = None,
    reid: str | None = None,
    detection_id: int | None = None,
    rerank: bool = False,
    by: str = "detection",
    weights: str | None = None,
    loaded: tuple[int, Embedder] | None = None,
    confirmed: Sequence[int] = (),
    rejected: Sequence[int] = (),
    strays: bool = False,
    expand: int = 0,
) -> QueryResult:
    """Embed ``crops`` (fused into one query) and/or take a stored detection's vector, then
    search. ``expand`` > 0 expands the query with its best that many hits (α-QE; shown
    similarities are then to the expanded query); ``rerank`` applies k-reciprocal
    re-ranking to the top candidates. ``loaded``:
    (embedder id, embedder) already built by a long-lived caller (the server).

    Refining: ``confirmed`` sightings (marked as the person) join the query (query expansion:
    their vectors are fused with it); ``rejected`` ones (marked as not the person) are left
    out of the answer and candidates that look more like them than like the query are pushed
    down (see ``SimilarityRanker``)."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    vectors = []
    shown = list(crops)
    ids: set[int] = set()
    stored = ([detection_id] if detection_id is not None else []) + list(confirmed)
    for i, det in enumerate(stored):
        eid, vector, thumbnail = stored_vector(gallery, det)
        ids.add(eid)
        vectors.append(vector)
        thumb = cv2.imdecode(np.frombuffer(thumbnail, np.uint8), cv2.IMREAD_COLOR)
        if thumb is not None and (i == 0 or not crops):
            shown.append(np.asarray(thumb, dtype=np.uint8))
    negatives = [stored_vector(gallery, det) for det in rejected]
    ids.update(eid for eid, _v, _t in negatives)
    rejected_tracks = frozenset(
        t for t in gallery.track_ids(list(rejected)).values() if t is not None
    )
    if len(ids) > 1:
        raise QueryError(
            "the marked sightings come from different embedders; mark hits of one search"
        )
    embedder_id: int
    if crops:
        embedder_id, embedder = loaded or embedder_for(gallery, reid, weights)
        timings["load_s"] = time.perf_counter() - t
        t = time.perf_counter()
        if ids and ids != {embedder_id}:
            raise QueryError(
                "--detection or the marked sightings come from another embedder than the "
                "query images"
            )
        vectors.extend(embedder.embed(crops))
        name = embedder.name
    elif ids:
        embedder_id = ids.pop()
        name = _name(gallery, embedder_id)
    else:
        name = gallery.embedder_for_query(reid).name
    if not vectors:
        raise QueryError(
            "nothing to query; give IMAGE, --detection ID or --frame VIDEO:FRAME --box"
        )
    query = fuse(np.stack(vectors))
    if expand > 0:  # α-query expansion with the best few hits (reid/rerank.py)
        top = gallery.rank(embedder_id, query, expand, filters)
        if top:
            index = gallery.index_for(embedder_id)
            query = expand_query(query, index.reconstruct_many([i for _, i in top]), n=expand)
    timings["embed_s"] = time.perf_counter() - t

    rank = SimilarityRanker(
        gallery,
        embedder_id,
        query,
        filters,
        candidate_depth(k) if rerank else 0,
        negatives=np.stack([v for _e, v, _t in negatives]) if negatives else None,
        excluded=frozenset(int(d) for d in rejected),
        rejected_tracks=rejected_tracks,
    )
    t = time.perf_counter()
    tracks: list[TrackHit] = []
    notes = gallery.incomplete_runs()
    if by == "track":
        with gallery.session() as s:
            tracks, hidden = search_tracks(s, rank, k, strays, candidate_depth(k))
        if hidden:
            notes.append(
                f"{hidden} single box{'es' if hidden > 1 else ''} that fit no appearance "
                "(a detection the tracker never followed) left out; --strays shows them"
            )
        timings["search_and_fetch_s"] = time.perf_counter() - t
        hits = gallery.hits([(tr.similarity, tr.best_detection_id) for tr in tracks])
    else:
        ranked = rank(k)
        timings["search_s"] = time.perf_counter() - t
        t = time.perf_counter()
        hits = gallery.hits(ranked)
        timings["fetch_s"] = time.perf_counter() - t
    return QueryResult(
        hits=hits,
        crops=shown,
        embedder=name,
        timings_s=timings,
        reranked=rerank,
        tracks=tracks,
        notes=notes,
    )


def _name(gallery: Gallery, embedder_id: int) -> str:
    return next(e.name for e in gallery.embedders() if e.id == embedder_id)


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


def tracks_of_videos(
    gallery: Gallery, names: Sequence[str]
) -> tuple[list[tuple[TrackRow, VideoRow]], list[str]]:
    """The tracks of the named videos (paths or file names), by enter time, and a note for
    each of them whose ingest is incomplete."""
    with gallery.session() as s:
        ids = resolve_videos(s, names)
        tracks = tracks_of_video(s, ids)
    return tracks, gallery.incomplete_runs(ids)
