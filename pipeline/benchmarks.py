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

from pipeline.core.config import Config
from pipeline.core.vectors import l2_normalise

log = logging.getLogger(__name__)


def ultralytics_model(cfg: Config) -> Any:
    """The configured detector as Ultralytics' own PyTorch model object (fp32), or None for
    a detector that is not an Ultralytics model."""
    from detectors import build_detector

    try:
        torch_det = build_detector(replace(cfg.detector, backend="torch", precision="fp32"))
    except ValueError:
        return None
    model = getattr(torch_det, "_model", None)
    return model if model is not None and hasattr(model, "predict") else None


def ultralytics_predict_fps(frames: list[Any], cfg: Config, model: Any) -> float | None:
    """The baseline of record: Ultralytics' own PyTorch ``predict`` loop (``model``, from
    ``ultralytics_model``), one frame per call, at the configured input size."""
    if model is None:
        return None
    kwargs = {"imgsz": cfg.detector.imgsz_px, "conf": cfg.detector.conf, "verbose": False}
    model.predict(frames[0].image, **kwargs)
    t = time.perf_counter()
    for f in frames:
        model.predict(f.image, **kwargs)
    return len(frames) / (time.perf_counter() - t)


def gflop_of(module: Any, shape: tuple[int, ...]) -> float | None:
    """The floating-point operations (GFLOP, a multiply-add counted as two) of one forward
    pass of a torch module on an input of ``shape``; None where it cannot be counted."""
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter, torch.no_grad():
            module(torch.zeros(shape))
        return float(counter.get_total_flops()) / 1e9
    except Exception as exc:  # an exotic module: the speed figures stand without it
        log.info("could not count the operations of %s: %s", type(module).__name__, exc)
        return None


def matmul_gflops(sizes: tuple[int, ...] = (1024, 2048), repeats: int = 5) -> float:
    """The CPU's dense fp32 rate as a tuned BLAS reaches it (numpy's OpenBLAS, on every core;
    the best of a few square products): about the most GFLOP/s any network gets here, the
    ceiling the detector and ingest rates are read against."""
    rng = np.random.default_rng(0)
    best = 0.0
    for size in sizes:
        a = rng.random((size, size), dtype=np.float32)
        b = rng.random((size, size), dtype=np.float32)
        a @ b
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            best = max(best, 2 * size**3 / (time.perf_counter() - t) / 1e9)
    return best


def arithmetic(
    cfg: Config, frame_hw: tuple[int, int], torch_model: Any, embedder: Any
) -> dict[str, float | None]:
    """GFLOP of one detector frame (at the letterboxed input ingest uses) and of one embedded
    crop, counted on the PyTorch modules (``torch_model``: ``ultralytics_model``'s): with the
    frames/s they turn a speed into GFLOP/s, comparable with what the CPU's arithmetic units
    can do at all."""
    from detectors.yolo_export import letterbox_shape

    det_gflop = None
    net = getattr(torch_model, "model", None)
    if net is not None:
        h, w, _gain = letterbox_shape(*frame_hw, cfg.detector.imgsz_px)
        det_gflop = gflop_of(net.eval(), (1, 3, h, w))
    module = getattr(embedder, "_model", None)
    emb_gflop = None
    if callable(module) and getattr(embedder, "input_hw", None):
        emb_gflop = gflop_of(module(), (1, 3, *embedder.input_hw))
    return {"detector_gflop_per_frame": det_gflop, "embedder_gflop_per_crop": emb_gflop}


def bench_ingest(video: Path, cfg: Config, frames: int) -> dict[str, Any]:
    """Three measurements on the same frames, one run: Ultralytics' PyTorch predict loop (the
    baseline), the bare detector on its configured backend (decode + detect), and the whole
    ingest (decode, detect, track, crop, embed, store, index)."""
    from pipeline.core.stream import batched, prefetch
    from pipeline.core.video import probe, read_frames
    from pipeline.ingest import ingest_video
    from storage.gallery import Gallery

    info = probe(video)
    end_s = frames / info.fps if frames else None  # the window [0, end) holds `frames`
    cfg = replace(cfg, video=replace(cfg.video, start_s=None, end_s=end_s, stride=1))
    from pipeline.context import RunContext, build_models

    models = build_models(cfg, video)
    detector, embedder = models.detector, models.embedder
    warm = list(read_frames(video, stop_index=1))
    detector.detect(warm)
    embedder.embed([warm[0].image[:128, :64]])

    # The baseline runs before and after the measured runs and is averaged: a shared or
    # throttled machine drifts by tens of percent within a minute.
    baseline_frames = list(read_frames(video, end_s=min(end_s or 1e9, 100 / info.fps)))
    base_cfg = cfg
    torch_model = ultralytics_model(base_cfg)  # built once: baseline and operation count
    before = ultralytics_predict_fps(baseline_frames, base_cfg, torch_model)
    # the input size ingest will choose for this footage (detectors.adaptive), for both runs
    from detectors.adaptive import PROBE_FRAMES, settings_of, sized_for
    from pipeline.core.video import sample_frames

    detector = sized_for(cfg, detector, sample_frames(video, PROBE_FRAMES))
    cfg = settings_of(cfg, detector)

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
        summary = ingest_video(
            RunContext(cfg_tmp, gallery, replace(models, detector=detector)), video
        )
        ingest_s = time.perf_counter() - t
        gallery.close()
    ingest_fps = summary.frames_processed / ingest_s
    after = ultralytics_predict_fps(baseline_frames, base_cfg, torch_model)
    baseline_fps = (before + after) / 2 if before and after else None
    ops = arithmetic(cfg, warm[0].image.shape[:2], torch_model, embedder)
    ops["matmul_gflops"] = matmul_gflops()
    det_g, emb_g = ops["detector_gflop_per_frame"], ops["embedder_gflop_per_crop"]
    detected = n_frames / max(1, cfg.detector.every_frames)
    return {
        "video": str(video),
        "frames": n_frames,
        "people": n_people,
        "detector": detector.name,
        "detector_backend": getattr(detector, "backend", "torch"),
        "detector_precision": cfg.detector.precision,
        "detector_input_px": cfg.detector.imgsz_px,
        "detector_every_frames": cfg.detector.every_frames,
        "embedder": embedder.name,
        "embedder_backend": getattr(embedder, "backend", "torch"),
        "ultralytics_torch_predict_fps": baseline_fps,
        "baseline_before_after_fps": [before, after],
        "bare_detector_fps": n_frames / bare_s,
        "ingest_fps": ingest_fps,
        "ingest_over_ultralytics_torch": ingest_fps / baseline_fps if baseline_fps else None,
        "ingest_over_detector_time": ingest_s / bare_s,
        "stage_s": summary.stage_s,
        "stored": summary.detections,
        "embedded": summary.embedded,
        **ops,
        # GFLOP/s: the bare detector's, and the whole ingest's (detector + embedder work)
        "bare_detector_gflops": det_g * n_frames / bare_s if det_g else None,
        "ingest_gflops": (
            (det_g * detected + emb_g * summary.embedded) / ingest_s if det_g and emb_g else None
        ),
        "baseline_gflops": det_g * baseline_fps if det_g and baseline_fps else None,
    }


REAL_NOISE_SIGMA = 0.02  # per dimension: a copy keeps cosine ~0.9 to its stored vector


def _vectors(n: int, dim: int, data: str, rng: np.random.Generator, real: Any = None) -> Any:
    """Blocks of unit vectors: ``sightings`` = a re-ID gallery's shape (about 50 sightings per
    person around their identity), ``random`` = no structure at all (the worst case for any
    approximate index), ``real`` = a gallery's stored vectors, then copies of them with
    Gaussian noise (``REAL_NOISE_SIGMA`` per dimension, re-normalised) up to ``n``."""
    centres = rng.standard_normal((max(1, n // 50), dim), dtype=np.float32)
    chunk = 50_000
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        if data == "real":
            picks = np.arange(start, start + m) % len(real)
            block = np.array(real[picks], np.float32)
            copies = np.arange(start, start + m) >= len(real)
            noise = rng.standard_normal((int(copies.sum()), dim), dtype=np.float32)
            block[copies] += noise * np.float32(REAL_NOISE_SIGMA)
        elif data == "random":
            block = rng.standard_normal((m, dim), dtype=np.float32)
        else:
            block = centres[rng.integers(0, len(centres), m)]
            block = block + rng.standard_normal((m, dim), dtype=np.float32) * np.float32(
                0.8 / np.sqrt(dim)
            ) * np.linalg.norm(block, axis=1, keepdims=True)
        yield start, l2_normalise(block)


ALTERNATIVES = {  # what --compare builds beside the shipped index, with its search setting
    "hnsw": ("HNSW32,SQ8", "efSearch", (128, 512)),
    "ivfpq": ("IVF{nlist},PQ64x4fs", "nprobe", (64, 256)),
}


def _alternative(
    kind: str, data_arr: Any, qs: Any, k: int, exact: list[set[int]], seed: int
) -> list[dict[str, Any]]:
    """One of ``ALTERNATIVES`` built on the same vectors and searched with the same queries,
    each result re-scored exactly from a pool of max(100, 4k) as the shipped index is: build
    time, its own memory, then p50/p99 and recall@k against the exact scan per setting."""
    import faiss

    from storage.index import nlist_for

    n, dim = data_arr.shape
    spec, knob, settings = ALTERNATIVES[kind]
    spec = spec.format(nlist=nlist_for(n))
    t = time.perf_counter()
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    sample = np.sort(np.random.default_rng(seed).choice(n, min(n, 200_000), replace=False))
    index.train(np.ascontiguousarray(data_arr[sample]))
    for start in range(0, n, 100_000):
        index.add(np.ascontiguousarray(data_arr[start : start + 100_000]))
    build_s = time.perf_counter() - t
    memory_mb = len(faiss.serialize_index(index)) / 2**20
    pool = max(100, 4 * k)
    rows = []
    for value in settings:
        faiss.ParameterSpace().set_index_parameter(index, knob, value)
        took, found = [], 0
        for q, truth in zip(qs, exact, strict=True):
            t = time.perf_counter()
            _d, ids = index.search(q[None], pool)
            cand = ids[0][ids[0] >= 0]
            best = cand[np.argsort(-(data_arr[cand] @ q))[:k]]
            took.append(time.perf_counter() - t)
            found += len(truth & set(best.tolist()))
        rows.append(
            {
                "index": f"{spec} + re-scoring, {knob} {value}, pool {pool}",
                "build_s": build_s,
                "index_mb": memory_mb,
                "p50_ms": float(np.median(took)) * 1000,
                "p99_ms": float(np.percentile(took, 99)) * 1000,
                f"recall_at_{k}": found / (k * len(qs)),
            }
        )
    return rows


def bench_search(
    n: int,
    dim: int,
    queries: int,
    k: int,
    data: str = "sightings",
    seed: int = 0,
    real: Any = None,
    compare: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The gallery's own index on ``n`` vectors (synthetic, or ``real`` re-ID vectors grown by
    noisy copies): single-query latency (p50/p99), recall@k against the exact scan of the
    same vectors, filtered latency, build time and memory; numpy brute force on the same
    vectors as the baseline. With ``real``, the queries are real vectors too: every 10th
    stored vector (up to ``queries``) is held out of the gallery and its copies, so a query
    is a real sighting the index has never seen, with its person's other sightings inside.
    ``compare``: ``ALTERNATIVES`` measured on the same vectors and queries."""
    import resource

    from storage.index import ANN_MIN_VECTORS, ANN_TYPE, INDEX_TYPE, VectorIndex

    rng = np.random.default_rng(seed)
    held_out = None
    if real is not None:
        out = np.zeros(len(real), bool)
        out[::10] = True
        out[np.flatnonzero(out)[queries:]] = False
        held_out, real = np.asarray(real[out], np.float32), real[~out]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    index = VectorIndex(dim)
    data_arr = np.empty((n, dim), np.float32)
    t = time.perf_counter()
    for start, block in _vectors(n, dim, data, rng, real):
        data_arr[start : start + len(block)] = block
        index.add(np.arange(start, start + len(block), dtype=np.int64), block)
    if index.approximate:
        index.search(data_arr[:1], k)  # the graph is complete before timing queries
    build_s = time.perf_counter() - t
    rss_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    if held_out is not None and len(held_out):
        qs = l2_normalise(held_out)  # real sightings the gallery does not hold
        queries = len(qs)
    else:
        picks = rng.integers(0, n, queries)
        noise = rng.standard_normal((queries, dim), dtype=np.float32)
        qs = data_arr[picks] + noise * np.float32(0.5 / np.sqrt(dim))  # a new sighting
        qs = l2_normalise(qs)

    index_s, numpy_s, found, exact = [], [], 0, []
    for q in qs:  # one query at a time, as a user runs them
        t = time.perf_counter()
        _sims, ids = index.search(q[None], k)
        index_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        scores = data_arr @ q
        top = np.argpartition(-scores, k)[:k]
        numpy_s.append(time.perf_counter() - t)
        exact.append(set(top.tolist()))
        found += len(set(ids[0].tolist()) & exact[-1])
    allowed = np.arange(0, n, 10, dtype=np.int64)  # a filter keeping 10% of the gallery
    filtered_s = []
    for q in qs[: min(queries, 20)]:
        t = time.perf_counter()
        index.search(q[None], k, allowed)
        filtered_s.append(time.perf_counter() - t)
    i_med, n_med = float(np.median(index_s)), float(np.median(numpy_s))
    return {
        "n": n,
        "dim": dim,
        "data": data,
        "real_vectors": 0 if real is None else len(real),
        "queries_from": "held-out real vectors" if held_out is not None else "noisy copies",
        "queries": queries,
        "k": k,
        "index_type": ANN_TYPE if index.approximate else INDEX_TYPE,
        "approximate_from": ANN_MIN_VECTORS,
        "build_s": build_s,
        "memory_mb": rss_mb,
        "p50_ms": i_med * 1000,
        "p99_ms": float(np.percentile(index_s, 99)) * 1000,
        f"recall_at_{k}": found / (k * queries),
        "numpy_median_ms": n_med * 1000,
        "numpy_over_index": n_med / i_med,
        "filtered_10pct_median_ms": float(np.median(filtered_s)) * 1000,
        "alternatives": [
            row for kind in compare for row in _alternative(kind, data_arr, qs, k, exact, seed)
        ],
    }


def bench_distributed(
    video: Path, cfg: Config, db: str, workers: list[int], end_s: float | None
) -> dict[str, Any]:
    """The same video ingested in-process (a temporary SQLite gallery) and by Ray with each
    worker count (the PostgreSQL database ``db``, wiped before each run): frames/s of each,
    the ratio to in-process, and whether the rows (frame + box to the pixel) are equal.
    Ray's start-up (actors building their models) is inside the Ray times."""
    import collections
    import tempfile
    from dataclasses import replace

    from sqlalchemy import select

    from pipeline.context import RunContext, build_models
    from pipeline.distributed import connect, ingest_distributed
    from pipeline.ingest import ingest_video
    from storage.gallery import Gallery, wipe
    from storage.models import DetectionRow

    cfg = replace(cfg, video=replace(cfg.video, end_s=end_s))
    models = build_models(cfg, video)

    def rows(g: Gallery) -> collections.Counter[tuple[int, ...]]:
        with g.session() as s:
            return collections.Counter(
                (r.frame_index, round(r.x1), round(r.y1), round(r.x2), round(r.y2))
                for r in s.scalars(select(DetectionRow))
            )

    out: dict[str, Any] = {"video": str(video), "end_s": end_s, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        local = replace(cfg, data_dir=Path(tmp), db=None)
        with Gallery(local.db_url, Path(tmp)) as g:
            t = time.perf_counter()
            s = ingest_video(RunContext(local, g, models), video, camera_id="bench")
            base_s = time.perf_counter() - t
            reference = rows(g)
        out["frames"] = s.frames_new
        out["inprocess_fps"] = s.frames_new / base_s
        ray = connect(cfg.executor.address)
        out["ray_cpus"] = ray.cluster_resources().get("CPU")
        for n in workers:
            wipe(db)
            distributed = replace(
                cfg,
                db=db,
                data_dir=Path(tmp) / f"ray{n}",
                executor=replace(cfg.executor, workers=n),
            )
            with Gallery(db, distributed.data_dir) as g:
                t = time.perf_counter()
                r = ingest_distributed(RunContext(distributed, g, models), video, camera_id="bench")
                took = time.perf_counter() - t
                out["runs"].append(
                    {
                        "workers": n,
                        "segments": r.segments,
                        "fps": r.frames_new / took,
                        "x_inprocess": (r.frames_new / took) / out["inprocess_fps"],
                        "rows_equal": rows(g) == reference,
                        "tracks": r.tracks,
                    }
                )
        out["inprocess_tracks"] = s.tracks
    return out
