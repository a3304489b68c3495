"""`prowl reembed`: move a gallery to another embedder without re-ingesting its footage."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.common import EXIT_INTERRUPTED, StopOnSignal, build, load_cfg, open_gallery, storage_args
from pipeline.core.errors import ProwlError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "reembed", help="re-embed a gallery's stored crops with another embedder (resumable)"
    )
    p.add_argument("--reid", required=True, help="the new embedder (see `prowl models`)")
    p.add_argument("--reid-weights", help="its checkpoint, for embedders that take one")
    p.add_argument("--from", dest="source", help="the embedder to replace (if several)")
    p.add_argument("--batch", type=int, default=256, help="crops per model call and commit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    storage_args(p)
    p.set_defaults(func=cmd_reembed)


def cmd_reembed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipeline.reembed import reembed
    from reid import build_embedder

    if not 1 <= args.batch <= 65536:
        raise ProwlError("--batch must be within 1..65536 crops")
    cfg = load_cfg(args, reid={"name": args.reid, "weights": args.reid_weights})
    embedder = build(build_embedder, cfg.reid)
    with open_gallery(cfg, must_exist=True) as gallery, StopOnSignal() as stop:
        bar = tqdm(
            desc=f"reembed {embedder.name}", unit="crop", file=sys.stderr, disable=args.quiet
        )
        try:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            summary = reembed(gallery, embedder, args.source, max(1, args.batch), progress, stop)
        finally:
            bar.close()
    if not summary.switched:
        print(
            f"stopped: {summary.made_now} new vectors stored, the gallery still answers with "
            f"{summary.old}; run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(
        f"re-embedded {summary.vectors} crops from the stored thumbnails: {summary.old} -> "
        f"{summary.new} ({summary.made_now} computed in this run); queries now use {summary.new}"
    )
    return 0
