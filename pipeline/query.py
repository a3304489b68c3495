"""Query: a suspect's crop(s) in, ranked hits out. The crop goes through the same embedder
call as a gallery detection, and the embedder is the one the gallery was built with."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.core.config import ReidConfig
from pipeline.core.errors import QueryError
from pipeline.core.files import sha256_of
from pipeline.core.vectors import l2_normalise
from pipeline.ranking import AttributeRanker, SimilarityRanker, candidate_depth, stored_vector
from reid import Embedder, build_embedder
from reid.rerank import expand_query
from storage.gallery import Gallery, Hit, SearchFilters
from storage.models import EmbedderRow, TrackRow, VideoRow
from storage.search import cameras_of, per_camera_cap, resolve_videos
from storage.tracks import TrackHit, search_tracks, tracks_of_video

log = logging.getLogger(__name__)


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
    per_camera: int = 0,
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
    rank: Callable[[int], list[tuple[float, int]]]
    if not vectors:
        if not (filters is not None and filters.by_colour):
            raise QueryError(
                "nothing to query; give IMAGE, --detection ID, --frame VIDEO:FRAME --box or "
                "a clothing colour (--upper/--lower)"
            )
        # no picture of the person: the colours alone rank (pipeline/ranking.py)
        rank = AttributeRanker(gallery, filters, frozenset(int(d) for d in rejected))
        name = "clothing colour"
    else:
        query = fuse(np.stack(vectors))
        if expand > 0:  # α-query expansion with the best few hits (reid/rerank.py)
            top = gallery.rank(embedder_id, query, expand, filters)
            if top:
                index = gallery.index_for(embedder_id)
                query = expand_query(query, index.reconstruct_many([i for _, i in top]), n=expand)
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
    timings["embed_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tracks: list[TrackHit] = []
    notes = gallery.incomplete_runs()
    if by == "track":
        with gallery.session() as s:
            tracks, hidden = search_tracks(s, rank, k, strays, candidate_depth(k), per_camera)
        if hidden:
            notes.append(
                f"{hidden} single box{'es' if hidden > 1 else ''} that fit no appearance "
                "(a detection the tracker never followed) left out; --strays shows them"
            )
        timings["search_and_fetch_s"] = time.perf_counter() - t
        hits = gallery.hits([(tr.similarity, tr.best_detection_id) for tr in tracks])
    else:
        ranked = rank(k) if not per_camera else _capped(gallery, rank, k, per_camera)
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


def _capped(
    gallery: Gallery, rank: Callable[[int], list[tuple[float, int]]], k: int, n: int
) -> list[tuple[float, int]]:
    """The best ``k`` with at most ``n`` per camera: the ranking read deeper until found."""
    depth = candidate_depth(k)
    while True:
        ranked = rank(depth)
        with gallery.session() as s:
            kept = per_camera_cap(ranked, cameras_of(s, [i for _, i in ranked]), n)
        if len(kept) >= k or len(ranked) < depth:
            return kept[:k]
        depth *= 4


def _name(gallery: Gallery, embedder_id: int) -> str:
    return next(e.name for e in gallery.embedders() if e.id == embedder_id)


def tracks_of_videos(
    gallery: Gallery, names: Sequence[str]
) -> tuple[list[tuple[TrackRow, VideoRow]], list[str]]:
    """The tracks of the named videos (paths or file names), by enter time, and a note for
    each of them whose ingest is incomplete."""
    with gallery.session() as s:
        ids = resolve_videos(s, names)
        tracks = tracks_of_video(s, ids)
    return tracks, gallery.incomplete_runs(ids)
