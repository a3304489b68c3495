"""`prowl bench-ingest`, `prowl bench-search` and `prowl models`: speed, measured."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import load_cfg, open_gallery, storage_args
from pipeline.core.errors import ProwlError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("models", help="every detector and embedder, its files and speed here")
    p.add_argument("--measure", action="store_true", help="run the speed micro-benchmark now")
    p.add_argument("--frames", type=int, default=200, help="sample frames for --measure")
    p.add_argument("--only", help="comma-separated names to measure")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--config", type=Path)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("bench-ingest", help="ingest speed vs. the bare detector, same frames")
    p.add_argument("video", nargs="?", help="video (default: the sample vtest.avi)")
    p.add_argument("--frames", type=int, default=200, help="first N frames (0 = all)")
    p.add_argument("--detector")
    p.add_argument("--reid")
    p.add_argument("--backend", help="detector and embedder backend (auto, openvino, ...)")
    p.add_argument("--precision", help="detector precision: fp32 or int8")
    p.add_argument("--imgsz", type=int, help="detector input size (long side, px)")
    p.add_argument(
        "--every-frames", type=int, help="ingest with the detector on every Nth frame only"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--config", type=Path)
    p.set_defaults(func=cmd_bench_ingest)

    p = sub.add_parser(
        "bench-motion",
        help="ingest with motion gating vs. without, on the video with empty stretches added",
    )
    p.add_argument("video", nargs="?", help="video (default: the sample vtest.avi)")
    p.add_argument("--busy-frames", type=int, default=300, help="frames of the video used")
    p.add_argument("--idle", default="0,0.5,0.9", help="idle fractions, comma-separated")
    p.add_argument("--out", type=Path, help="also write bench-motion.json and .png here")
    p.add_argument("--json", action="store_true")
    p.add_argument("--config", type=Path)
    p.set_defaults(func=cmd_bench_motion)

    p = sub.add_parser(
        "bench-ray", help="Ray ingest (1, 2, ... workers) vs in-process, same video and run"
    )
    p.add_argument("video", nargs="?", help="video (default: the sample vtest.avi)")
    p.add_argument("--db", required=True, help="a PostgreSQL database to use (it is wiped)")
    p.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    p.add_argument("--end", type=float, help="only the first END seconds")
    p.add_argument("--segment", type=float, help="segment length, seconds")
    p.add_argument("--ray-address", help="a running Ray cluster (default: Ray on this machine)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--config", type=Path)
    p.set_defaults(func=cmd_bench_ray)

    p = sub.add_parser("bench-search", help="index latency, recall and memory on N vectors")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512, help="512: the default embedder's")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument(
        "--data",
        choices=["sightings", "random", "real"],
        default="sightings",
        help="a re-ID gallery's shape, unstructured random vectors (the worst case), or real: "
        "the vectors a gallery stores (--data-dir/--db), grown to --n by noisy copies",
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument(
        "--compare",
        default="",
        help="also build these alternatives on the same vectors and queries: hnsw, ivfpq "
        "(comma-separated; minutes each at 1M)",
    )
    p.add_argument("--json", action="store_true")
    storage_args(p)
    p.set_defaults(func=cmd_bench_search)


def cmd_bench_ray(args: argparse.Namespace) -> int:
    from pipeline.benchmarks import bench_distributed
    from pipeline.core.assets import resolve
    from pipeline.core.errors import ConfigError

    try:
        workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        raise ConfigError("--workers takes counts separated by commas, e.g. 1,2") from None
    if not workers or min(workers) < 1:
        raise ConfigError("--workers takes counts of at least 1, e.g. 1,2")
    if args.end is not None and not args.end > 0:
        raise ConfigError("--end must be a positive number of seconds")
    if args.segment is not None and not 1 <= args.segment <= 86400:
        raise ConfigError("--segment must be within 1..86400 seconds")
    cfg = load_cfg(args, executor={"address": args.ray_address, "segment_s": args.segment})
    from pipeline.distributed import check_shared_database

    check_shared_database(cfg)
    video = Path(args.video) if args.video else resolve("vtest.avi")
    r = bench_distributed(video, cfg, cfg.db_url, workers, args.end)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(
        f"{Path(r['video']).name}: {r['frames']} frames; in-process {r['inprocess_fps']:.1f} "
        f"frames/s, {r['inprocess_tracks']} tracks (Ray sees {r['ray_cpus']:g} CPUs)"
    )
    for run in r["runs"]:
        print(
            f"  Ray, {run['workers']} worker(s), {run['segments']} segments: "
            f"{run['fps']:.1f} frames/s = {run['x_inprocess']:.2f}x in-process; rows "
            f"{'equal' if run['rows_equal'] else 'DIFFERENT'}; {run['tracks']} tracks"
        )
    return 0


def cmd_bench_ingest(args: argparse.Namespace) -> int:
    from pipeline.benchmarks import bench_ingest
    from pipeline.core.assets import resolve
    from pipeline.core.errors import ConfigError

    if args.frames < 0:
        raise ConfigError("--frames must be 0 (the whole video) or more")
    cfg = load_cfg(
        args,
        detector={
            "name": args.detector,
            "backend": args.backend,
            "precision": args.precision,
            "imgsz_px": args.imgsz,
            "every_frames": args.every_frames,
        },
        reid={"name": args.reid, "backend": args.backend},
    )
    video = Path(args.video) if args.video else resolve("vtest.avi")
    r = bench_ingest(video, cfg, args.frames)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(
        f"{Path(r['video']).name}: {r['frames']} frames, {r['people']} people "
        f"({r['detector']} + {r['embedder']})"
    )
    base = r["ultralytics_torch_predict_fps"]
    if base:
        b0, b1 = r["baseline_before_after_fps"]
        print(
            f"  baseline, Ultralytics PyTorch predict loop: {base:.2f} frames/s "
            f"(mean of {b0:.2f} before and {b1:.2f} after the runs below)"
        )
    print(
        f"  bare detector ({r['detector_backend']} {r['detector_precision']} at "
        f"{r['detector_input_px']} px, decode + detect): "
        f"{r['bare_detector_fps']:.2f} frames/s"
        + (f" = {r['bare_detector_fps'] / base:.2f}x the baseline" if base else "")
    )
    every = r["detector_every_frames"]
    print(
        f"  prowl ingest (all stages + storage, embedder on {r['embedder_backend']}"
        + (f", detector on one frame in {every}" if every > 1 else "")
        + "): "
        f"{r['ingest_fps']:.2f} frames/s"
        + (f" = {r['ingest_over_ultralytics_torch']:.2f}x the baseline" if base else "")
        + f"; {r['ingest_over_detector_time']:.2f}x the bare detector's time"
    )
    parts = ", ".join(
        f"{k} {v:.1f}s" for k, v in sorted(r["stage_s"].items(), key=lambda kv: -kv[1])
    )
    print(f"  ingest time by stage: {parts}")
    det_g, emb_g = r["detector_gflop_per_frame"], r["embedder_gflop_per_crop"]
    if det_g:
        work = [f"detector {det_g:.2f} GFLOP a frame"]
        if emb_g:
            work.append(f"embedder {emb_g:.3f} GFLOP a crop ({r['embedded']} crops embedded)")
        rates = [
            f"{name} {r[key]:.0f}"
            for name, key in (
                ("baseline", "baseline_gflops"),
                ("bare detector", "bare_detector_gflops"),
                ("ingest", "ingest_gflops"),
            )
            if r[key]
        ]
        print(
            f"  arithmetic: {'; '.join(work)}; GFLOP/s: {', '.join(rates)} (the CPU's fp32 "
            f"matrix multiply: {r['matmul_gflops']:.0f})"
        )
    return 0


def cmd_bench_motion(args: argparse.Namespace) -> int:
    from evaluation.motion_bench import bench_motion, write_plot
    from pipeline.core.assets import resolve
    from pipeline.core.errors import ConfigError
    from pipeline.core.outputs import check_writable

    try:
        fractions = [float(v) for v in args.idle.split(",")]
    except ValueError:
        raise ConfigError(f"--idle {args.idle!r}: give fractions such as 0,0.5,0.9") from None
    if not fractions or any(not 0 <= f < 1 for f in fractions):
        raise ConfigError("--idle: each fraction must be within [0, 1)")
    if not 10 <= args.busy_frames <= 100_000:
        raise ConfigError("--busy-frames must be within 10..100000")
    video = Path(args.video) if args.video else resolve("vtest.avi")
    if not video.is_file():
        raise ConfigError(f"{video}: no such video")
    if args.out is not None:  # said now, not after minutes of ingest
        check_writable(args.out / "bench-motion.json")
    cfg = load_cfg(args)
    say = None if args.json else (lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    rows = bench_motion(video, cfg, args.busy_frames, fractions, progress=say)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench-motion.json").write_text(json.dumps(rows, indent=2) + "\n")
        write_plot(rows, args.out / "bench-motion.png", f"Motion gating on {video.name}")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{video.name}: {args.busy_frames} frames with empty stretches (background plate + "
        "sensor noise + lighting drift, evaluation/idle.py); whole ingest, motion off vs auto"
    )
    print("  idle  frames  off s   auto s  speed-up (bound)  gated   recall  tracks off/auto")
    for r in rows:
        print(
            f"  {r['idle_fraction']:4.2f}  {r['frames']:6d}  {r['seconds_motion_off']:6.1f}  "
            f"{r['seconds_motion_auto']:6.1f}  {r['speedup']:5.2f}x ({r['speedup_bound']:5.2f}x)  "
            f"{r['frames_gated']:6d}  {r['recall_of_ungated_boxes']:.4f}  "
            f"{r['tracks_ungated']}/{r['tracks_gated']}"
        )
    print(
        "  recall: share of the ungated run's boxes the gated run stores (same frame, IoU >= "
        "0.5); bound: the speed-up if empty frames cost nothing (off time over the idle-0 "
        "row's off time when measured, else 1/(1 - idle))"
    )
    return 0


def cmd_bench_search(args: argparse.Namespace) -> int:
    from pipeline.benchmarks import bench_search
    from pipeline.core.errors import ConfigError

    for flag, value, low, high in (
        ("--n", args.n, 1, 100_000_000),
        ("--dim", args.dim, 1, 65_536),
        ("--queries", args.queries, 1, 1_000_000),
        ("--k", args.k, 1, 10_000),
    ):
        if not low <= value <= high:
            raise ConfigError(f"{flag} {value} must be within {low}..{high:_}".replace("_", ","))
    if args.k > args.n:
        raise ConfigError(f"--k {args.k} asks for more neighbours than --n {args.n} vectors hold")
    from pipeline.benchmarks import ALTERNATIVES

    compare = tuple(c.strip() for c in args.compare.split(",") if c.strip())
    unknown = sorted(set(compare) - set(ALTERNATIVES))
    if unknown:
        raise ConfigError(
            f"--compare {','.join(unknown)}: not an index to compare; choose from "
            + ", ".join(ALTERNATIVES)
        )
    real = None
    if args.data == "real":
        real = _stored_vectors(args)
        args.dim = real.shape[1]
    r = bench_search(args.n, args.dim, args.queries, args.k, args.data, real=real, compare=compare)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    grown = f" ({r['real_vectors']:,} stored, the rest noisy copies)" if real is not None else ""
    print(
        f"{r['n']:,} {r['data']} unit vectors{grown}, dim {r['dim']}, index {r['index_type']}, "
        f"k={r['k']}, {r['queries']} single queries"
        + (f" ({r['queries_from']})" if real is not None else "")
    )
    print(f"  built in {r['build_s']:.1f} s, {r['memory_mb']:.0f} MB (vectors included)")
    print(
        f"  latency p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms; "
        f"recall@{r['k']} against the exact scan {r[f'recall_at_{args.k}']:.3f}"
    )
    print(
        f"  numpy brute force: {r['numpy_median_ms']:.1f} ms median "
        f"(= {r['numpy_over_index']:.1f}x the index); a 10% id filter (exact): "
        f"{r['filtered_10pct_median_ms']:.1f} ms"
    )
    for alt in r["alternatives"]:
        print(
            f"  {alt['index']}: built in {alt['build_s']:.1f} s, {alt['index_mb']:.0f} MB; "
            f"p50 {alt['p50_ms']:.2f} ms, p99 {alt['p99_ms']:.2f} ms, "
            f"recall@{r['k']} {alt[f'recall_at_{args.k}']:.3f}"
        )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from pipeline import catalog

    if args.measure:
        from pipeline.core.assets import resolve
        from pipeline.core.errors import ConfigError

        if args.frames < 1:
            raise ConfigError("--frames must be at least 1")

        cfg = load_cfg(args)
        names = [n for n in args.only.split(",") if n] if args.only else None
        print(
            f"measuring on the first {args.frames} frames of the sample video ...", file=sys.stderr
        )
        catalog.measure(cfg, resolve("vtest.avi"), args.frames, names)
    print(catalog.table(markdown=args.markdown))
    return 0


def _stored_vectors(args: argparse.Namespace) -> Any:
    """Every vector the gallery stores for its most used embedder."""
    cfg = load_cfg(args)
    with open_gallery(cfg, must_exist=True) as gallery:
        embedders = [e for e in gallery.embedders() if len(gallery.index_for(e.id))]
        if not embedders:
            raise ProwlError("the gallery holds no vectors; ingest footage first")
        best = max(embedders, key=lambda e: len(gallery.index_for(e.id)))
        index = gallery.index_for(best.id)
        return index.reconstruct_many(index.ids().tolist())
