"""`prowl eval` and `prowl bench` (detector × retriever scoring), and the parsers of the
evaluation commands (eval-reid and make-* run from their own modules)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from cli.common import load_cfg
from cli.eval_reid import cmd_eval_reid
from cli.make_data import cmd_make_crowd, cmd_make_synthetic
from pipeline.core.errors import ConfigError, ProwlError
from pipeline.core.outputs import check_writable, write_text


def _iou(text: str) -> str | float:
    if text == "variable":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--iou is variable, 0.5 or 0.7") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("--iou must be within (0, 1)")
    return value


def _dataset_args(p: argparse.ArgumentParser, several: bool = False) -> None:
    if several:
        p.add_argument(
            "dataset", type=Path, nargs="+", help="dataset root folders (each benched alone)"
        )
    else:
        p.add_argument("dataset", type=Path, help="dataset root folder")
    p.add_argument("--format", required=True, choices=["prw", "mot"])
    p.add_argument(
        "--protocol",
        default="all",
        choices=["all", "cross-camera"],
        help="gallery: every frame but the query's (person-search default) "
        "or other cameras only (official PRW)",
    )
    p.add_argument(
        "--iou",
        type=_iou,
        default="variable",
        help="variable (min(0.5, wh/((w+10)(h+10)))), 0.5 or 0.7",
    )
    p.add_argument("--det-thresh", type=float, default=0.5, help="drop detections below this score")
    p.add_argument("--cws", action="store_true", help="confidence-weighted similarity (PRW paper)")
    p.add_argument(
        "--min-visibility", type=float, default=0.25, help="MOT: labeled visibility floor"
    )
    p.add_argument(
        "--query-frame", default="first", choices=["first", "most-visible"], help="MOT query choice"
    )
    p.add_argument("--reid-weights", help="checkpoint for embedders that take one (torchreid:ARCH)")
    p.add_argument("--data-dir", type=Path, help="where the detection/embedding cache lives")
    p.add_argument("--config", type=Path)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "eval", help="PRW-style detection and search metrics of one detector × re-ID pair"
    )
    _dataset_args(p)
    p.add_argument("--detector", help="a detector, gt or gt-jitter[:SIGMA] (default: the config's)")
    p.add_argument("--reid", help="embedder (default: the config's)")
    p.add_argument("--json", help="write the metrics as JSON to FILE (- for stdout)")
    p.add_argument(
        "--tracks",
        action="store_true",
        help="also track (as ingest does): MOTA/IDF1/ID switches, and search mAP with "
        "track-pooled features (all crops, and only those the embedding cadence keeps)",
    )
    p.add_argument(
        "--every-frames",
        help="comma-separated detector intervals (detector.every_frames), e.g. 1,2,3,5: "
        "detection recall, MOTA/IDF1 and track-pooled search mAP of what ingest would store "
        "with the detector on every Nth frame and the tracker's predictions between",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="the detector × re-ID matrix: tables and plots")
    _dataset_args(p, several=True)
    p.add_argument(
        "--detectors",
        required=True,
        help="comma-separated detectors, each NAME[@OPT+...]: OPT an input size (1280), "
        "tileN, int8, fixed (no size adaptation) or a backend; e.g. yolov8n,yolov8n@1280+int8",
    )
    p.add_argument("--reids", required=True, help="comma-separated embedder names")
    p.add_argument(
        "--out", type=Path, required=True, help="folder for results.csv, results.md, *.png"
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("eval-reid", help="re-ID benchmark: CMC rank-1/5/10 and mAP of an embedder")
    p.add_argument("dataset", type=Path, help="dataset root folder")
    p.add_argument(
        "--format",
        required=True,
        choices=["market1501", "dukemtmc", "cuhk03-np", "msmt17", "mars", "prw"],
        help="layout (mars: tracklets, mean-pooled; prw: its labeled boxes cropped)",
    )
    p.add_argument("--reid", help="embedder (see `prowl models`; default: the config's)")
    p.add_argument("--reid-weights", help="checkpoint for embedders that take one (torchreid:ARCH)")
    p.add_argument(
        "--rerank",
        action="store_true",
        help="k-reciprocal re-ranking of each query's best 100, as `prowl query --rerank`",
    )
    p.add_argument(
        "--qe", type=int, default=0, help="α-query expansion with the N best hits (0: off)"
    )
    p.add_argument(
        "--distractors",
        metavar="N|DIR",
        help="grow the gallery with distractor people: the crops of DIR, or N (up to 1M) from "
        "drawn figures and perturbed copies; prints mAP, rank-1 and search latency per size",
    )
    p.add_argument("--plot", type=Path, help="with --distractors: the curve as a PNG")
    p.add_argument("--json", help="write the metrics as JSON to FILE (- for stdout)")
    p.add_argument("--config", type=Path)
    p.set_defaults(func=cmd_eval_reid)

    p = sub.add_parser(
        "make-synthetic", help="write a synthetic dataset (PRW, MOT or a re-ID layout)"
    )
    p.add_argument("out", type=Path)
    p.add_argument(
        "--format", required=True, choices=["prw", "mot", "market1501", "msmt17", "mars"]
    )
    p.add_argument("--identities", type=int, default=10)
    p.add_argument("--cameras", type=int, default=3)
    p.add_argument("--frames", type=int, default=16, help="frames per camera")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_synthetic)

    p = sub.add_parser(
        "make-crowd",
        help="a crowded-footage benchmark (MOT layout): a mosaic of a real video, "
        "pseudo-labelled, or of a labelled MOT sequence with its ground truth moved exactly",
    )
    p.add_argument("out", type=Path)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--video", type=Path, help="source video (default: the sample vtest.avi)")
    src.add_argument(
        "--from-mot",
        type=Path,
        metavar="SEQ",
        help="a labelled MOT sequence (SEQ/gt/gt.txt with img1/ or video.*): real labels",
    )
    p.add_argument("--grid", type=int, default=4, help="tiles per side (people 1/GRID size)")
    p.add_argument("--frames", type=int, default=40, help="mosaic frames")
    p.add_argument("--stride", type=int, default=4, help="source frames between mosaic frames")
    p.add_argument(
        "--label-detector",
        default="yolov8s-person",
        help="detector whose tracked boxes (at native resolution) are the labels",
    )
    p.add_argument("--config", type=Path)
    p.set_defaults(func=cmd_make_crowd)


def _setup(args: argparse.Namespace) -> tuple[Any, Any, Any, Path]:
    from evaluation.datasets import load_dataset
    from evaluation.scoring import EvalOptions

    if not 0 <= args.det_thresh <= 1:
        raise ProwlError("--det-thresh must be within 0..1")
    if getattr(args, "json", None) not in (None, "-"):
        check_writable(Path(args.json))
    cfg = load_cfg(args, reid={"weights": args.reid_weights})
    ds = load_dataset(args.dataset, args.format, args.min_visibility, args.query_frame)
    if not ds.queries:
        raise ProwlError(f"{args.dataset}: the dataset has no queries")
    opts = EvalOptions(args.protocol, args.iou, args.det_thresh, args.cws)
    return cfg, ds, opts, cfg.data_dir / "eval-cache"


def cmd_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evaluation.runner import build_embedder_checked, evaluate_pair, sized_detector

    everys = None
    if args.every_frames:
        try:
            everys = [int(v) for v in args.every_frames.split(",")]
        except ValueError:
            everys = []
        if not everys or any(not 1 <= v <= 100 for v in everys):
            raise ConfigError(
                f"--every-frames {args.every_frames!r}: give intervals within 1..100, e.g. 1,2,3"
            )
    cfg, ds, opts, cache = _setup(args)
    args.detector = args.detector or cfg.detector.name
    args.reid = args.reid or cfg.reid.name
    # bad names fail before any progress bar
    cfg, detector = sized_detector(args.detector, cfg, ds)
    embedder = build_embedder_checked(args.reid, cfg)
    with tqdm(
        total=2 * len(ds.frames),
        desc=f"eval {args.detector} × {args.reid}",
        unit="frame",
        file=sys.stderr,
    ) as bar:
        r = evaluate_pair(ds, detector, embedder, cfg, cache, opts, bar.update, args.tracks, everys)
    if args.json == "-":
        print(json.dumps(r, indent=2))
        return 0
    print(
        f"{ds.name}: {r['frames']} gallery frames, {r['queries']} queries; "
        f"{r['detector']} × {r['reid']}; "
        f"protocol {r['protocol']}, IoU {r['iou']}, det-thresh {r['det_thresh']}"
        f"{', CWS' if r['cws'] else ''}"
    )
    print(
        f"  detection  recall@0.5 {r['det_recall@0.5']:.3f}  AP@0.5 {r['det_ap@0.5']:.3f}  "
        f"recall@0.7 {r['det_recall@0.7']:.3f}  AP@0.7 {r['det_ap@0.7']:.3f}  "
        f"({r['boxes_per_frame']:.2f} boxes/frame)"
    )
    print(
        f"  search     mAP {r['mAP']:.3f}  top-1 {r['top1']:.3f}  top-5 {r['top5']:.3f}  "
        f"top-10 {r['top10']:.3f}"
    )
    if "MOTA" in r:
        for label, suffix, what in (
            ("tracking", "", "the online tracker"),
            ("stitched", "_stitched", "fragments joined offline by look, time and distance"),
            ("folded", "_folded", "+ stray boxes folded in: what ingest stores"),
        ):
            print(
                f"  {label:<10} MOTA {r['MOTA' + suffix]:.3f}  IDF1 {r['IDF1' + suffix]:.3f}  "
                f"HOTA {r['HOTA' + suffix]:.3f}  ID switches {r['ID_switches' + suffix]}; "
                f"{r['tracks' + suffix]} tracks for {r['identities']} identities "
                f"({r['tracks_per_identity' + suffix]:.2f} per person); "
                f"{r['single_box_rows' + suffix]:.1f} of a --by track --strays top 20 are single "
                f"boxes ({what})"
            )
        print(
            f"  {'':<10} labelled people seen only as single boxes (left out of --by track "
            f"answers unless --strays): {r['stray_only_identities_folded']}"
        )
        print(
            f"  pooled     mAP {r['mAP_pooled']:.3f}  top-1 {r['top1_pooled']:.3f} (track-pooled); "
            f"cadence: mAP {r['mAP_pooled_cadence']:.3f}  "
            f"top-1 {r['top1_pooled_cadence']:.3f} with "
            f"{r['embedded_fraction_cadence']:.0%} of crops embedded"
        )
    if everys:
        print("  detector interval: what ingest stores with the detector on every Nth frame")
        print("    N  detected  recall@0.5  MOTA    IDF1    HOTA    mAP (95% CI)           top-1")
        for row in r["interval"]:
            lo, hi = row["mAP_ci95"]
            print(
                f"  {row['every_frames']:3d}  {row['detected_fraction']:7.0%}  "
                f"{row['det_recall@0.5']:10.3f}  {row['MOTA']:.3f}  {row['IDF1']:.3f}  "
                f"{row['HOTA']:.3f}  {row['mAP']:.3f} [{lo:.3f}, {hi:.3f}]  {row['top1']:.3f}"
            )
    if args.json:
        write_text(Path(args.json), json.dumps(r, indent=2) + "\n")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """One dataset: its table and plots in --out. Several: each in --out/NAME, and
    --out/summary.md over all of them (the first detector is each table's baseline)."""
    from evaluation.bench import run_bench, write_summary

    roots = list(args.dataset)
    detectors = [d for d in args.detectors.split(",") if d]
    reids = [r for r in args.reids.split(",") if r]
    if not detectors or not reids:
        raise ProwlError("--detectors and --reids each need at least one name")
    if len({r.name for r in roots}) != len(roots):
        raise ProwlError("each dataset folder needs its own name (they become --out/NAME)")
    setups = []
    for root in roots:  # every dataset loads before any is benched: a bad one fails first
        args.dataset = root
        setups.append(_setup(args))
    cfg = setups[0][0]
    from evaluation.runner import variant

    for spec in detectors:  # a bad option fails before any progress bar
        variant(spec, cfg)
    from reid import EMBEDDER_NAMES

    for name in reids:
        if name not in EMBEDDER_NAMES and not name.startswith(("prowl:", "torchreid:")):
            raise ProwlError(
                f"unknown re-ID embedder '{name}'; valid names: {', '.join(EMBEDDER_NAMES)}"
            )
    created = not args.out.exists()
    results: dict[str, list[Any]] = {}
    try:
        for root, (cfg, ds, opts, cache) in zip(roots, setups, strict=True):
            out = args.out if len(roots) == 1 else args.out / root.name
            results[root.name] = run_bench(ds, detectors, reids, cfg, out, cache, opts)
            print((out / "results.md").read_text())
    except BaseException:
        if created:  # a refused or failed bench leaves no folder behind
            shutil.rmtree(args.out, ignore_errors=True)
        raise
    if len(roots) > 1:
        print(f"summary: {write_summary(results, args.out)}")
    print(
        f"wrote results.csv, results.md, map_vs_recall.png, map_vs_speed.png and "
        f"threshold_sweep.png under {args.out}"
    )
    return 0
