"""`prowl eval-colours`: clothing-colour naming scored against hand labels of real people."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.core.errors import ProwlError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "eval-colours",
        help="clothing colour (upper/lower) against hand labels of MOT-format sequences",
    )
    p.add_argument("root", type=Path, help="a folder of MOT-format sequences (e.g. build/real-mot)")
    p.add_argument("--labels", type=Path, required=True, help="CSV: sequence,identity,upper,lower")
    p.add_argument("--out", type=Path, required=True, help="folder for study.json, study.html")
    p.add_argument(
        "--dev",
        action="append",
        default=None,
        help="a sequence the thresholds were chosen on (repeatable; default PETS09-S2L1); the "
        "others are reported as held out",
    )
    p.set_defaults(func=cmd_eval_colours)


def cmd_eval_colours(args: argparse.Namespace) -> int:
    from evaluation.colour_study import read_labels, study

    if not args.labels.is_file():
        raise ProwlError(f"--labels {args.labels}: no such file")
    read_labels(args.labels)  # a bad label fails before any video is decoded
    if not args.root.is_dir():
        raise ProwlError(f"{args.root}: no such folder of sequences")
    if args.out.exists() and not args.out.is_dir():
        raise ProwlError(f"--out {args.out} is a file; give a folder")
    result = study(args.root, args.labels, args.out, tuple(args.dev or ["PETS09-S2L1"]))
    for name, r in result["groups"].items():
        print(f"{name}: {r['identities']} people, {r['crops']} crops")
        for part in ("upper", "lower"):
            p = r[part]
            lo, hi = p["ci95"] or (float("nan"), float("nan"))
            print(
                f"  {part}: accuracy {p['accuracy']:.3f} [{lo:.3f}, {hi:.3f}], filter recall "
                f"{p['filter_recall']:.3f} ({p['colours_per_crop']:.2f} colours/crop), "
                f"always-commonest {r['majority_class_accuracy'][part]:.3f}"
            )
    if result["unlabelled_identities"]:
        print("not labelled (left out): " + ", ".join(result["unlabelled_identities"]))
    print(f"report: {(args.out / 'study.html').resolve()}")
    print(json.dumps({"sheets": result["sheets"][:1]}))
    return 0
