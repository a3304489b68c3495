"""`prowl eval-reid`: a re-ID benchmark (CMC, mAP with a bootstrap interval), optionally with
query expansion, re-ranking and distractor people added to the gallery."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import load_cfg
from pipeline.core.errors import ProwlError
from pipeline.core.outputs import check_writable, write_text


def cmd_eval_reid(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evaluation.reid_datasets import load_reid_dataset
    from evaluation.reid_runner import evaluate_reid
    from evaluation.runner import build_embedder_checked

    if args.json not in (None, "-"):
        check_writable(Path(args.json))  # before the evaluation, not after it
    if args.plot and not args.distractors:
        raise ProwlError("--plot draws the --distractors curve; give --distractors N|DIR")
    if args.distractors:
        folder, _n = distractor_spec(args.distractors)
        if folder is not None:
            from evaluation.distractors import images_in

            if not images_in(folder):
                raise ProwlError(
                    f"{folder} holds no images (.jpg, .png, .bmp) to use as distractors"
                )
        if args.plot:
            check_writable(args.plot)
    cfg = load_cfg(args, reid={"weights": args.reid_weights})
    ds = load_reid_dataset(args.dataset, args.format)
    args.reid = args.reid or cfg.reid.name
    embedder = build_embedder_checked(args.reid, cfg)
    with tqdm(
        total=len(ds.query) + len(ds.gallery),
        desc=f"eval-reid {embedder.name}",
        unit="sample",
        file=sys.stderr,
    ) as bar:
        r = evaluate_reid(
            ds, embedder, cfg.reid.batch_crops, bar.update, rerank=args.rerank, qe=args.qe
        )
    if args.distractors:
        r["distractors"] = _distractor_curve(args, ds, embedder, cfg.reid.batch_crops)
    if args.json == "-":
        print(json.dumps(r, indent=2))
        return 0
    kind = "tracklets" if r["tracklets"] else "images"
    print(
        f"{r['dataset']}: {r['queries']} query and {r['gallery']} gallery {kind} "
        f"({r['valid_queries']} queries with a cross-camera match); {r['reid']}"
    )
    print(
        f"  mAP {r['mAP']:.3f} [95% CI {r['mAP_ci95'][0]:.3f}, {r['mAP_ci95'][1]:.3f}]  "
        f"rank-1 {r['rank1']:.3f}  rank-5 {r['rank5']:.3f}  "
        f"rank-10 {r['rank10']:.3f}"
    )
    if args.distractors:
        d = r["distractors"]
        print(f"  distractors: {d['method']}")
        print("  gallery     mAP    rank-1  search p50 / p99 (ms)")
        for p in d["curve"]:
            print(
                f"  {p['gallery']:>9,}  {p['mAP']:.3f}  {p['rank1']:.3f}   "
                f"{p['search_p50_ms']:.2f} / {p['search_p99_ms']:.2f}"
            )
        if args.plot:
            print(f"  plot: {args.plot}")
    if args.json:
        write_text(Path(args.json), json.dumps(r, indent=2) + "\n")
    return 0


def distractor_spec(text: str) -> tuple[Path | None, int]:
    """``--distractors``: a folder of crops (as many as it holds) or a count (drawn figures)."""
    if text.isdigit():
        n = int(text)
        if not 1 <= n <= 10_000_000:
            raise ProwlError(f"--distractors {text}: give 1 to 10000000, or a folder of crops")
        return None, n
    folder = Path(text)
    if not folder.is_dir():
        raise ProwlError(f"--distractors {text}: not a number and not a folder of crops")
    return folder, 0


def _distractor_curve(
    args: argparse.Namespace, ds: Any, embedder: Any, batch: int
) -> dict[str, Any]:
    from dataclasses import asdict

    from evaluation.distractors import SIZES, curve, distractor_vectors, plot
    from evaluation.reid_runner import reid_features

    folder, n = distractor_spec(args.distractors)
    q, g = reid_features(ds, embedder, batch)
    if folder is not None:
        from evaluation.distractors import images_in

        n = len(images_in(folder))
    vectors, method = distractor_vectors(embedder, folder, n, batch)
    sizes = (*(s for s in SIZES if s < len(vectors)), len(vectors))
    points = curve(
        q,
        [s.pid for s in ds.query],
        [s.camid for s in ds.query],
        g,
        [s.pid for s in ds.gallery],
        [s.camid for s in ds.gallery],
        vectors,
        tuple(sorted(set(sizes))),
    )
    if args.plot:
        plot(points, f"{ds.name}: {embedder.name} with distractors", args.plot)
    return {"method": method, "curve": [asdict(p) for p in points]}
