"""`prowl bench-ingest`, `prowl bench-search` and `prowl models`: speed, measured."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import load_cfg


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
    p.add_argument("--json", action="store_true")
    p.add_argument("--config", type=Path)
    p.set_defaults(func=cmd_bench_ingest)

    p = sub.add_parser("bench-search", help="FAISS vs. numpy brute force on random vectors")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_search)


def cmd_bench_ingest(args: argparse.Namespace) -> int:
    from pipeline.assets import resolve
    from pipeline.benchmarks import bench_ingest

    cfg = load_cfg(args, detector={"name": args.detector}, reid={"name": args.reid})
    video = Path(args.video) if args.video else resolve("vtest.avi")
    r = bench_ingest(video, cfg, args.frames)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(
        f"{Path(r['video']).name}: {r['frames']} frames, {r['people']} people "
        f"({r['detector']} + {r['embedder']})"
    )
    print(f"  bare detector (decode + detect): {r['bare_detector_fps']:.2f} frames/s")
    print(
        f"  prowl ingest (all stages + storage): {r['ingest_fps']:.2f} frames/s  "
        f"= {r['ingest_over_detector_time']:.2f}x the detector's time"
    )
    parts = ", ".join(
        f"{k} {v:.1f}s" for k, v in sorted(r["stage_s"].items(), key=lambda kv: -kv[1])
    )
    print(f"  ingest time by stage: {parts}")
    return 0


def cmd_bench_search(args: argparse.Namespace) -> int:
    from pipeline.benchmarks import bench_search

    r = bench_search(args.n, args.dim, args.queries, args.k)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(
        f"{r['n']:,} random unit vectors, dim {r['dim']}, index {r['index_type']}, "
        f"k={r['k']}, {r['queries']} single queries (built in {r['build_s']:.1f}s)"
    )
    print(
        f"  gallery index: {r['index_median_ms']:.1f} ms median; numpy brute force: "
        f"{r['numpy_median_ms']:.1f} ms; numpy/index = {r['numpy_over_index']:.2f}x; "
        f"FAISS's own single-query search: {r['faiss_search_median_ms']:.1f} ms"
    )
    print(
        f"  with a 10% id filter (FAISS IDSelector): {r['faiss_filtered_10pct_ms']:.1f} ms; "
        f"identical top-k: {r['identical_top_k']}"
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from pipeline import catalog

    if args.measure:
        from pipeline.assets import resolve

        cfg = load_cfg(args)
        names = [n for n in args.only.split(",") if n] if args.only else None
        print(
            f"measuring on the first {args.frames} frames of the sample video ...", file=sys.stderr
        )
        catalog.measure(cfg, resolve("vtest.avi"), args.frames, names)
    print(catalog.table(markdown=args.markdown))
    return 0
