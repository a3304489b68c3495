"""The `prowl query` subcommand: parse, run, print, export."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from cli.common import load_cfg, open_gallery, storage_args
from pipeline.core.errors import ProwlError, QueryError


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


def _colours(text: str) -> tuple[str, ...]:
    from pipeline.core.colours import check_colour

    try:
        return tuple(check_colour(c) for c in text.split(",") if c.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parsers(sub: Any) -> None:
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
    when = (
        "a date-time (2026-11-25T15:45:20), a time of day (15:45:20; the gallery's footage "
        "spans one day) or seconds from each video's own start (90, +1:30)"
    )
    p.add_argument("--from", dest="from_when", metavar="WHEN", help=f"only at/after: {when}")
    p.add_argument("--to", dest="to_when", metavar="WHEN", help="only at/before (as --from)")
    p.add_argument(
        "--upper",
        type=_colours,
        default=(),
        metavar="COLOUR[,COLOUR]",
        help="upper-body clothing colour (any of; black white grey red orange yellow green "
        "blue purple pink brown); alone, without a crop, it searches by colour only. "
        "Approximate: see docs/evaluation.md for its measured accuracy",
    )
    p.add_argument(
        "--lower", type=_colours, default=(), metavar="COLOUR[,COLOUR]", help="as --upper"
    )
    p.add_argument(
        "--per-camera",
        type=int,
        default=0,
        metavar="N",
        help="at most N answers per camera (the best N of each; default: no cap)",
    )
    p.add_argument(
        "--other-cameras",
        action="store_true",
        help="leave out the camera(s) and video(s) the query comes from (with --detection, "
        "--confirmed or --subject): where else was this person?",
    )
    p.add_argument("--min-similarity", type=float, help="drop hits below this cosine similarity")
    p.add_argument("--reid", help="embedder to search (only when the gallery holds several)")
    p.add_argument(
        "--reid-weights",
        help="the checkpoint the gallery's embedder was built with, when it moved "
        "(default: the path recorded at ingest)",
    )
    p.add_argument(
        "--rerank",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="k-reciprocal re-ranking of the top max(100, 4k) candidates (config default: on)",
    )
    p.add_argument(
        "--expand",
        type=int,
        default=None,
        metavar="N",
        help="α-query expansion with the N best hits; 0 = off (config default: 3)",
    )
    p.add_argument(
        "--by",
        choices=["track", "detection"],
        default="track",
        help="one row per appearance (who appears where and when; default) or per box",
    )
    p.add_argument(
        "--strays",
        action="store_true",
        help="with --by track: also list single boxes that fit no appearance (left out by "
        "default: mostly partial or doubled boxes)",
    )
    p.add_argument(
        "--confirmed",
        type=int,
        action="append",
        default=[],
        help="a hit (detection id) that IS the person: joins the query (repeatable)",
    )
    p.add_argument(
        "--rejected",
        type=int,
        action="append",
        default=[],
        help="a hit that is NOT the person: left out, look-alikes pushed down (repeatable)",
    )
    p.add_argument("--subject", help="query with a named subject's confirmed sightings")
    p.add_argument("--report", type=Path, help="write a self-contained HTML page of the hits")
    p.add_argument("--json", help="write hits as JSON to FILE, or - for stdout")
    p.add_argument("--csv", type=Path, help="write hits as CSV to FILE")
    p.add_argument(
        "--evidence",
        type=Path,
        help="write an evidence zip: hits (CSV/JSON), crops, frames, clips, HTML summary, "
        "source video hashes",
    )
    storage_args(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("tracks", help="list the tracks of a video: who appears when")
    p.add_argument("video", help="a video in the gallery (path or file name)")
    p.add_argument("--min-sightings", type=int, default=1)
    storage_args(p)
    p.set_defaults(func=cmd_tracks)

    p = sub.add_parser(
        "export-reid-set",
        help="the gallery's long tracks (tracker labels), or labelled MOT sequences' people "
        "(--from-mot), as a re-ID set in the Market-1501 layout",
    )
    p.add_argument("--out", type=Path, required=True, help="a new folder")
    p.add_argument(
        "--from-mot",
        type=Path,
        action="append",
        default=[],
        help="a labelled MOT sequence (SEQ/gt/gt.txt and its frames; repeatable): its "
        "ground-truth people instead of the gallery's tracks",
    )
    p.add_argument(
        "--merge",
        action="append",
        default=[],
        metavar="SEQ:A=B",
        help="with --from-mot: sequence SEQ's id A is the same person as its id B (a re-entry)",
    )
    p.add_argument("--min-sightings", type=int, default=20, help="shortest track to use")
    p.add_argument(
        "--per-track",
        type=int,
        default=None,
        help="gallery images per identity (default 8); with --split train, training images "
        "per identity (default 24)",
    )
    p.add_argument(
        "--split",
        choices=["test", "train"],
        default="test",
        help="with --from-mot: test = query/ + bounding_box_test/ (early vs late in each "
        "life); train = bounding_box_train/ (each sequence a camera), for prowl train",
    )
    storage_args(p)
    p.set_defaults(func=cmd_export_reid_set)

    p = sub.add_parser("export-tracks", help="write tracks in MOT Challenge text format")
    p.add_argument("--format", choices=["mot"], default="mot")
    p.add_argument("--video", action="append", default=[], help="only this video (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="folder; one <video>.txt per video")
    storage_args(p)
    p.set_defaults(func=cmd_export_tracks)


def cmd_query(args: argparse.Namespace) -> int:
    from pipeline.journey import journey_lines
    from pipeline.query_input import crop_from_frame, read_query_image
    from pipeline.query_spec import QuerySpec
    from pipeline.report import table, track_table, write_csv, write_json
    from pipeline.report_html import write_html
    from storage.gallery import SearchFilters

    cfg = load_cfg(args, query={"k": args.k, "rerank": args.rerank, "expand": args.expand})
    if (args.frame is None) != (args.box is None):
        raise QueryError("--frame VIDEO:FRAME and --box x1,y1,x2,y2 go together")
    spec = QuerySpec(
        k=cfg.query.k,
        by=args.by,
        filters=SearchFilters(
            cameras=tuple(args.camera),
            videos=tuple(args.video),
            min_similarity=args.min_similarity,
            upper=args.upper,
            lower=args.lower,
        ),
        window=(args.from_when, args.to_when),
        per_camera=args.per_camera,
        other_cameras=args.other_cameras,
        detection_id=args.detection,
        confirmed=tuple(args.confirmed),
        rejected=tuple(args.rejected),
        subject=args.subject,
        strays=args.strays,
        rerank=cfg.query.rerank,
        expand=cfg.query.expand,
        images=len(args.images) + (args.frame is not None),
    ).check()
    from pipeline.core.outputs import check_writable

    for target in (args.json, args.csv, args.report, args.evidence):
        if target and target != "-":  # an unwritable output fails before the search, not after
            check_writable(Path(target))
    crops = [read_query_image(p) for p in args.images]  # bad input fails before the gallery opens
    if args.frame is not None:
        crops.append(crop_from_frame(args.frame[0], args.frame[1], args.box))
    with open_gallery(cfg, must_exist=True) as gallery:
        confirmed = list(spec.confirmed)
        case = None
        if args.subject:
            from storage.subjects import subject_named

            named = subject_named(gallery, args.subject)
            confirmed += list(named.detection_ids)
            case = named.case()
        result = spec.run(gallery, crops, args.reid, args.reid_weights, confirmed=confirmed)
        out = sys.stderr if args.json == "-" else sys.stdout
        if args.json != "-":
            if args.by == "track":
                print(track_table(result.tracks) if result.tracks else "no hits pass the filters")
            else:
                print(table(result.hits) if result.hits else "no hits pass the filters")
            timing = ", ".join(
                f"{k.removesuffix('_s')} {v * 1000:.1f} ms" for k, v in result.timings_s.items()
            )
            n = len(result.tracks) if args.by == "track" else len(result.hits)
            print(f"{n} {args.by} hits · embedder {result.embedder} · {timing}")
            for line in journey_lines(result):
                print(line)
        for note in result.notes:
            print(f"prowl: note: {note}", file=sys.stderr)
        if args.json:
            write_json(result, args.json)
        if args.csv:
            write_csv(result, args.csv)
        if args.report:
            path = write_html(result, args.report)
            print(f"report: {path.resolve()}", file=out)
        if args.evidence:
            from pipeline.evidence import write_evidence

            asked = {
                "k": cfg.query.k,
                "by": args.by,
                "filters": vars(spec.filters),
                "detection": args.detection,
                "confirmed": confirmed,
                "rejected": args.rejected,
                "subject": args.subject,
                "images": [str(p) for p in args.images],
            }
            path = write_evidence(gallery, result, args.evidence, asked, case=case)
            print(f"evidence: {path.resolve()}", file=out)
        return 0


def cmd_export_reid_set(args: argparse.Namespace) -> int:
    from pipeline.export import export_reid_set

    cfg = load_cfg(args)
    if args.per_track is None:
        args.per_track = 24 if args.split == "train" else 8
    if args.min_sightings < 2 or args.per_track < 1:
        raise QueryError("--min-sightings must be at least 2 and --per-track at least 1")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise QueryError(f"{args.out} is not an empty folder; choose a new folder")
    created = not args.out.exists()
    if args.merge and not args.from_mot:
        raise QueryError("--merge names ids of --from-mot sequences; give --from-mot SEQ")
    if args.split == "train" and not args.from_mot:
        raise QueryError("--split train writes labelled people of --from-mot sequences; give one")
    if args.from_mot:
        from evaluation.mot_reid import parse_merges, write_mot_reid_set, write_mot_train_set

        merges = parse_merges(args.merge)
        unknown = sorted({seq for seq, _a in merges} - {Path(p).name for p in args.from_mot})
        if unknown:
            raise QueryError(f"--merge names {unknown[0]}, which is not a --from-mot sequence")
        try:
            if args.split == "train":
                ids, n, cams = write_mot_train_set(
                    args.from_mot, args.out, merges, args.per_track, args.min_sightings
                )
                print(
                    f"wrote {n} training images of {ids} identities from {cams} camera(s) to "
                    f"{args.out}/bounding_box_train; try: prowl train --dataset {args.out} "
                    "--format market1501"
                )
                return 0
            ids, nq, ng = write_mot_reid_set(
                args.from_mot, args.out, merges, args.per_track, args.min_sightings
            )
        except ProwlError:
            if created:
                shutil.rmtree(args.out, ignore_errors=True)
            raise
    else:
        with open_gallery(cfg, must_exist=True) as gallery:
            ids, nq, ng = export_reid_set(gallery, args.out, args.min_sightings, args.per_track)
    if ids < 2:
        if created:  # nothing half-made is left behind
            shutil.rmtree(args.out, ignore_errors=True)
        raise QueryError(
            f"only {ids} track(s) with >= {args.min_sightings} sightings; lower --min-sightings "
            "or ingest more footage"
        )
    print(
        f"wrote {ids} identities ({nq} query, {ng} gallery images) to {args.out} in the "
        f"Market-1501 layout; try: prowl eval-reid {args.out} --format market1501"
    )
    return 0


def cmd_tracks(args: argparse.Namespace) -> int:
    from pipeline.core.timeline import shown
    from pipeline.query import tracks_of_videos

    cfg = load_cfg(args)
    with open_gallery(cfg, must_exist=True) as gallery:
        tracks, notes = tracks_of_videos(gallery, [args.video])
    rows = [(t, v) for t, v in tracks if t.detections >= args.min_sightings]
    for note in notes:
        print(f"prowl: note: {note}", file=sys.stderr)
    print(
        f"{'track':>10}  {'enter':12}  {'leave':12}  {'frames':>11}  {'sightings':>9}  "
        f"{'embedded':>8}  camera"
    )
    for t, v in rows:
        print(
            f"{t.id:>10}  {shown(v.start_time, t.first_s):>12}  "
            f"{shown(v.start_time, t.last_s):>12}  "
            f"{t.first_frame:>5}-{t.last_frame:<5}  "
            f"{t.detections:>9}  {t.embedded:>8}  {v.camera_id}"
        )
    print(f"{len(rows)} tracks")
    return 0


def cmd_export_tracks(args: argparse.Namespace) -> int:
    """MOT Challenge results format: frame (1-based), id, x, y, w, h, conf, -1, -1, -1."""
    from pipeline.export import export_mot

    cfg = load_cfg(args)
    with open_gallery(cfg, must_exist=True) as gallery:
        written = export_mot(gallery, args.video, args.out)
    for path, boxes, tracks in written:
        print(f"{path}: {boxes} boxes in {tracks} tracks")
    return 0
