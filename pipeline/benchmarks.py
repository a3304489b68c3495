"""Speed measurements, always as a ratio against a baseline measured in the same run.

- ``bench_ingest``: the whole ingest path vs. the bare detector on the same frames.
- ``bench_search``: the gallery's FAISS index vs. brute-force numpy on the same vectors.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config

log = logging.getLogger(__name__)


def bench_ingest(video: Path, cfg: Config, frames: int) -> dict[str, Any]:
    from detectors import build_detector
    from pipeline.ingest import ingest_video
    from pipeline.stream import batched, prefetch
    from pipeline.video import probe, read_frames
    from reid import build_embedder
    from storage.gallery import Gallery

    info = probe(video)
    end_s = frames / info.fps if frames else None  # the window [0, end) holds `frames`
    cfg = replace(cfg, video=replace(cfg.video, start_s=None, end_s=end_s, stride=1))
    detector = build_detector(cfg.detector)
    embedder = build_embedder(cfg.reid)
    warm = list(read_frames(video, stop_index=1))
    detector.detect(warm)
    embedder.embed([warm[0].image[:128, :64]])

    t = time.perf_counter()
    n_frames = n_people = 0
    source = prefetch(read_frames(video, end_s=end_s), cfg.video.queue_frames)
    for batch in batched(source, cfg.detector.batch_frames):
        n_people += sum(len(d) for d in detector.detect(batch))
        n_frames += len(batch)
    bare_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory(prefix="prowl-bench-") as tmp:
        cfg_tmp = replace(cfg, data_dir=Path(tmp), db=None)
        gallery = Gallery(cfg_tmp.db_url, Path(tmp))
        t = time.perf_counter()
        summary = ingest_video(video, cfg_tmp, gallery, detector, embedder)
        ingest_s = time.perf_counter() - t
        gallery.close()
    return {
        "video": str(video),
        "frames": n_frames,
        "people": n_people,
        "detector": detector.name,
        "embedder": embedder.name,
        "bare_detector_fps": n_frames / bare_s,
        "ingest_fps": summary.frames_processed / ingest_s,
        "ingest_over_detector_time": ingest_s / bare_s,
        "stage_s": summary.stage_s,
        "stored": summary.detections,
    }


def bench_search(n: int, dim: int, queries: int, k: int, seed: int = 0) -> dict[str, Any]:
    """Synthetic gallery of ``n`` random unit vectors in the gallery's own index type."""
    from storage.index import INDEX_TYPE, VectorIndex

    rng = np.random.default_rng(seed)
    index = VectorIndex(dim)
    data = np.empty((n, dim), np.float32)
    t = time.perf_counter()
    chunk = 50_000
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        data[start : start + len(block)] = block
        index.add(np.arange(start, start + len(block), dtype=np.int64), block)
    build_s = time.perf_counter() - t
    qs = rng.standard_normal((queries, dim), dtype=np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)

    faiss_s, numpy_s, raw_faiss_s, agree = [], [], [], 0
    inner = index._index  # FAISS's own search, for reference
    for q in qs[:5]:
        t = time.perf_counter()
        inner.search(q[None], k)
        raw_faiss_s.append(time.perf_counter() - t)
    for q in qs:  # one query at a time, as a user runs them
        t = time.perf_counter()
        _sims, ids = index.search(q[None], k)
        faiss_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        scores = data @ q
        top = np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top])]
        numpy_s.append(time.perf_counter() - t)
        agree += int(np.array_equal(ids[0], top))
    allowed = np.arange(0, n, 10, dtype=np.int64)  # a filter keeping 10% of the gallery
    t = time.perf_counter()
    for q in qs:
        index.search(q[None], k, allowed)
    filtered_s = (time.perf_counter() - t) / queries
    f_med, n_med = float(np.median(faiss_s)), float(np.median(numpy_s))
    return {
        "n": n,
        "dim": dim,
        "queries": queries,
        "k": k,
        "index_type": INDEX_TYPE,
        "build_s": build_s,
        "index_median_ms": f_med * 1000,
        "numpy_median_ms": n_med * 1000,
        "numpy_over_index": n_med / f_med,
        "faiss_filtered_10pct_ms": filtered_s * 1000,
        "identical_top_k": f"{agree}/{queries}",
        "faiss_search_median_ms": float(np.median(raw_faiss_s)) * 1000,
    }
