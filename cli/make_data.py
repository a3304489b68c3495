"""`prowl make-synthetic` and `prowl make-crowd`: labelled data sets to score on (synthetic
layouts for tests, crowded mosaics of real labelled sequences)."""

from __future__ import annotations

import argparse
import sys

from cli.common import load_cfg
from pipeline.core.errors import ProwlError


def cmd_make_synthetic(args: argparse.Namespace) -> int:
    from evaluation.synthetic import write_synthetic

    if args.out.exists() and any(args.out.iterdir()):
        raise ProwlError(f"{args.out} is not empty; choose a new folder")
    if args.format in ("market1501", "msmt17", "mars"):
        from evaluation.reid_synthetic import write_reid_synthetic

        nq, ng = write_reid_synthetic(
            args.out, args.format, args.identities, args.cameras, seed=args.seed
        )
        print(f"wrote {nq} query and {ng} gallery samples to {args.out} ({args.format} layout)")
        return 0
    truth = write_synthetic(
        args.out, args.format, args.identities, args.cameras, args.frames, seed=args.seed
    )
    print(
        f"wrote {truth.frames} frames, {truth.labeled_boxes} labeled and {truth.unlabeled_boxes} "
        f"unlabeled boxes, {truth.queries} queries to {args.out} ({args.format} layout)"
    )
    return 0


def cmd_make_crowd(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from evaluation.crowd import write_crowd
    from pipeline.core.assets import resolve
    from pipeline.core.video import probe

    if not 2 <= args.grid <= 8 or args.frames < 2 or args.stride < 1:
        raise ProwlError("--grid must be within 2..8, --frames >= 2 and --stride >= 1")
    if args.from_mot is not None:  # one sequence folder in OUT, beside others
        made = args.out / f"{args.from_mot.resolve().name}-mosaic{args.grid}x{args.grid}"
        if made.exists():
            raise ProwlError(f"{made} exists; choose another OUT")
    elif args.out.exists() and any(args.out.iterdir()):
        raise ProwlError(f"{args.out} is not empty; choose a new folder")
    cfg = load_cfg(args)
    if args.from_mot is not None:
        from evaluation.crowd import write_crowd_from_mot
        from evaluation.datasets import load_mot

        frames = len(load_mot(args.from_mot).frames)  # a bad sequence fails before the bar
        with tqdm(total=frames, desc="mosaic", unit="frame", file=sys.stderr) as bar:
            r = write_crowd_from_mot(
                args.from_mot, args.out, args.grid, args.frames, args.stride, bar.update
            )
        print(
            f"wrote {r.frames} frames of {r.size_wh[0]}×{r.size_wh[1]}, {r.labeled_boxes} "
            f"ground-truth boxes of {r.identities} identities to {args.out} (MOT layout; "
            f"evaluate with `prowl eval {args.out} --format mot`)"
        )
        return 0
    video = args.video or resolve("vtest.avi")
    with tqdm(
        total=probe(video).frame_count, desc="labelling", unit="frame", file=sys.stderr
    ) as bar:
        r = write_crowd(
            video,
            args.out,
            cfg,
            args.grid,
            args.frames,
            args.stride,
            label_detector=args.label_detector,
            progress=bar.update,
        )
    print(
        f"wrote {r.frames} frames of {r.size_wh[0]}×{r.size_wh[1]}, {r.labeled_boxes} labelled "
        f"boxes of {r.identities} people to {args.out} (MOT layout; evaluate with "
        f"`prowl eval {args.out} --format mot`)"
    )
    return 0
