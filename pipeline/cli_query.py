"""The `prowl query` subcommand: parse, run, print, export."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import QueryError


def _box(text: str) -> tuple[float, float, float, float]:
    parts = re.split(r"[,\s]+", text.strip())
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a box; use x1,y1,x2,y2 in pixels"
        ) from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"'{text}' is not a box; use x1,y1,x2,y2 in pixels")
    return values


def _frame_ref(text: str) -> tuple[Path, int]:
    video, sep, frame = text.rpartition(":")
    if not sep or not frame.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not VIDEO:FRAME (e.g. cam1.avi:120)")
    return Path(video), int(frame)


def add_query_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    from run_pipeline import _parse_time

    p = sub.add_parser("query", help="find where a person appears: crops in, ranked hits out")
    p.add_argument("images", nargs="*", type=Path, help="crop(s) of one person (JPEG/PNG); fused")
    p.add_argument("--detection", type=int, help="query with a detection already in the gallery")
    p.add_argument(
        "--frame", type=_frame_ref, help="VIDEO:FRAME to cut the query from (with --box)"
    )
    p.add_argument("--box", type=_box, help="x1,y1,x2,y2 of the person in --frame")
    p.add_argument("--k", type=int, help="number of hits (default from config: 20)")
    p.add_argument("--camera", action="append", default=[], help="only this camera (repeatable)")
    p.add_argument("--video", action="append", default=[], help="only this video (repeatable)")
    p.add_argument("--from", dest="from_s", type=_parse_time, help="only at/after this time")
    p.add_argument("--to", dest="to_s", type=_parse_time, help="only at/before this time")
    p.add_argument("--min-similarity", type=float, help="drop hits below this cosine similarity")
    p.add_argument("--reid", help="embedder to search (only when the gallery holds several)")
    p.add_argument(
        "--rerank",
        action="store_true",
        default=None,
        help="k-reciprocal re-ranking of the top max(100, 4k) candidates",
    )
    p.add_argument("--report", type=Path, help="write a self-contained HTML page of the hits")
    p.add_argument("--json", help="write hits as JSON to FILE, or - for stdout")
    p.add_argument("--csv", type=Path, help="write hits as CSV to FILE")
    common(p)
    p.set_defaults(func=cmd_query)


def cmd_query(args: argparse.Namespace) -> int:
    from pipeline.query import crop_from_frame, read_query_image, run_query
    from pipeline.report import clock, table, write_csv, write_html, write_json
    from run_pipeline import _load_cfg, _open_gallery
    from storage.gallery import SearchFilters

    cfg = _load_cfg(args, query={"k": args.k, "rerank": args.rerank})
    if (args.frame is None) != (args.box is None):
        raise QueryError("--frame VIDEO:FRAME and --box x1,y1,x2,y2 go together")
    if not args.images and args.detection is None and args.frame is None:
        raise QueryError(
            "nothing to query; give IMAGE, --detection ID or --frame VIDEO:FRAME --box"
        )
    if args.min_similarity is not None and not -1.0 <= args.min_similarity <= 1.0:
        raise QueryError("--min-similarity is a cosine similarity within -1..1")
    if args.from_s is not None and args.to_s is not None and args.to_s < args.from_s:
        raise QueryError("--to is before --from")
    crops = [read_query_image(p) for p in args.images]  # bad input fails before the gallery opens
    if args.frame is not None:
        crops.append(crop_from_frame(args.frame[0], args.frame[1], args.box))
    filters = SearchFilters(
        cameras=tuple(args.camera),
        videos=tuple(args.video),
        from_s=args.from_s,
        to_s=args.to_s,
        min_similarity=args.min_similarity,
    )
    gallery = _open_gallery(cfg, must_exist=True)
    try:
        result = run_query(
            gallery,
            crops,
            cfg.query.k,
            filters,
            reid=args.reid,
            detection_id=args.detection,
            rerank=cfg.query.rerank,
        )
        if args.json != "-":
            print(table(result.hits) if result.hits else "no hits pass the filters")
            timing = ", ".join(
                f"{k.removesuffix('_s')} {v * 1000:.1f} ms" for k, v in result.timings_s.items()
            )
            print(f"{len(result.hits)} hits · embedder {result.embedder} · {timing}")
            cams = sorted({h.camera_id for h in result.hits})
            if result.hits:
                first = min(result.hits, key=lambda h: h.timestamp_s)
                last = max(result.hits, key=lambda h: h.timestamp_s)
                print(
                    f"seen on camera(s) {', '.join(cams)} between {clock(first.timestamp_s)} "
                    f"and {clock(last.timestamp_s)}"
                )
        if args.json:
            write_json(result, args.json)
        if args.csv:
            write_csv(result, args.csv)
        if args.report:
            path = write_html(result, args.report)
            print(f"report: {path.resolve()}", file=sys.stderr if args.json == "-" else sys.stdout)
        return 0
    finally:
        gallery.close()
