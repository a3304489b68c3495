"""`prowl ingest`, `prowl stats` and `prowl demo`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    StopOnSignal,
    load_cfg,
    open_gallery,
    parse_time,
    storage_args,
)
from pipeline.core.errors import ProwlError
from pipeline.core.redact import redact_text, redact_url
from storage.database import safe_url


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("ingest", help="detect, embed and store the people in videos")
    p.add_argument("videos", nargs="+", help="video files or folders of frames")
    p.add_argument(
        "--camera", action="append", help="camera id (default: file name); once, or once per video"
    )
    p.add_argument("--stride", type=int, help="keep every Nth frame")
    p.add_argument("--start", type=parse_time, help="window start, seconds or hh:mm:ss (inclusive)")
    p.add_argument("--end", type=parse_time, help="window end, seconds or hh:mm:ss (exclusive)")
    p.add_argument(
        "--fps",
        type=float,
        help="image folders: frames per second (default: times in file names or EXIF, else 25)",
    )
    p.add_argument(
        "--start-time",
        help="wall-clock time of the first frame, ISO 8601 (default: from the file name, "
        "else an MP4/MOV's creation time)",
    )
    p.add_argument("--detector", help="detector name (see `prowl models`)")
    p.add_argument("--reid", help="re-ID embedder name (see `prowl models`)")
    p.add_argument("--reid-weights", help="checkpoint for embedders that take one (torchreid:ARCH)")
    p.add_argument(
        "--force", action="store_true", help="re-ingest videos already done (replaces their rows)"
    )
    p.add_argument(
        "--reattach-subjects",
        action="store_true",
        help="with --force: attach saved subjects' sightings of the video to the new boxes "
        "(same frame, IoU >= 0.5); without it --force refuses to touch a video with such "
        "sightings",
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="read the video files as they grow (a recorder still writing); they end after "
        "live.idle_s seconds without new frames",
    )
    p.add_argument(
        "--executor",
        choices=["inprocess", "ray"],
        help="inprocess (default) or ray: segments of each video run on Ray actors "
        "(needs a PostgreSQL --db and `pip install 'prowl[ray]'`)",
    )
    p.add_argument(
        "--ray-address", help="a running Ray cluster, host:port (default: Ray on this machine)"
    )
    p.add_argument("--workers", type=int, help="Ray actors (default: the cluster's CPUs)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    storage_args(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("stats", help="what the gallery holds")
    p.add_argument("--json", action="store_true")
    storage_args(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("demo", help="ingest (and query) the sample video end to end")
    p.add_argument("--data-dir", type=Path, help="where the demo gallery goes (default prowl-data)")
    p.add_argument("--end", type=float, help="only the first END seconds of the sample")
    p.set_defaults(func=cmd_demo)


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipeline.context import RunContext, build_models
    from pipeline.core.video import probe
    from pipeline.ingest import ingest_video

    cfg = load_cfg(
        args,
        video={
            "stride": args.stride,
            "start_s": args.start,
            "end_s": args.end,
            "fps": args.fps,
            "start_time": args.start_time,
        },
        detector={"name": args.detector},
        reid={"name": args.reid, "weights": args.reid_weights},
        executor={"name": args.executor, "address": args.ray_address, "workers": args.workers},
    )
    from pipeline.live import is_live

    live = [v for v in args.videos if is_live(v) or args.follow]
    for v in args.videos:  # fail on a bad path before loading models
        if not is_live(v):
            probe(Path(v))
    distributed = cfg.executor.name == "ray"
    if distributed and live:
        raise ProwlError(
            "live sources and --follow run in-process (one reader per camera); leave out "
            "--executor ray for them"
        )
    if args.reattach_subjects and (distributed or not args.force):
        raise ProwlError("--reattach-subjects goes with --force and the in-process executor")
    if distributed:  # a wrong database or an unreachable cluster: said before anything runs
        from pipeline.distributed import check_shared_database, connect

        check_shared_database(cfg)
        connect(cfg.executor.address)
    if args.camera and len(args.videos) > 1 and len(args.camera) not in (1, len(args.videos)):
        raise ProwlError("give one --camera for all videos or one per video")
    # Models before the gallery: a bad model name or file changes nothing stored.
    int8 = cfg.detector.precision == "int8"
    if int8 and live:
        raise ProwlError(
            "detector precision int8 is calibrated on the video being ingested; a live source "
            "has no frames to calibrate on beforehand: use precision fp32 for it"
        )
    models = build_models(cfg, args.videos[0])
    with open_gallery(cfg, must_exist=False) as gallery:
        exit_code = 0
        with StopOnSignal() as stop:
            for i, video in enumerate(args.videos):
                shown = redact_url(video)  # what is printed: no password, no secret parameter
                camera = None
                if args.camera:
                    camera = args.camera[0] if len(args.camera) == 1 else args.camera[i]
                # The bar appears once the ingest knows which frames are not done yet, so
                # input refused before that prints nothing but its error line.
                bars: list[Any] = []
                people = 0

                def planned(
                    total: int, name: str = Path(shown).name, bars: list[Any] = bars
                ) -> None:
                    bars.append(
                        tqdm(
                            total=total,
                            desc=name,
                            unit="frame",
                            file=sys.stderr,
                            disable=args.quiet,
                            dynamic_ncols=True,
                        )
                    )

                def progress(frames: int, found: int, bars: list[Any] = bars) -> None:
                    nonlocal people
                    people += found
                    if bars:
                        bars[0].update(frames)
                        bars[0].set_postfix(people=people, refresh=False)

                # one context per video (its own bar); the models go on to the next video
                ctx = RunContext(cfg, gallery, models, progress, stop, planned)
                try:
                    if video in live:
                        from pipeline.live import ingest_live

                        def connected(planned: Any = planned, bars: list[Any] = bars) -> None:
                            planned(0)  # the bar appears once the source answers
                            bars[0].total = None

                        summary = ingest_live(
                            ctx,
                            video,
                            camera_id=camera,
                            follow_file=not is_live(video),
                            connected=connected,
                        )
                        _print_summary(summary, cfg)
                        continue
                    if distributed:
                        from pipeline.distributed import ingest_distributed

                        run_one: Any = ingest_distributed
                    else:
                        run_one = ingest_video
                    extra = {"reattach_subjects": True} if args.reattach_subjects else {}
                    summary = run_one(ctx, Path(video), camera, args.force, **extra)
                finally:
                    models = ctx.models  # an int8 detector stays calibrated on its last video
                    for bar in bars:
                        bar.close()
                _print_summary(summary, cfg)
                if summary.status == "interrupted":
                    cmd = redact_text(" ".join(sys.argv[1:])) if sys.argv[1:] else "ingest VIDEO"
                    print(
                        f"stopped: everything processed is stored; run `prowl {cmd}` "
                        "again to resume from the last committed frame",
                        file=sys.stderr,
                    )
                    return EXIT_INTERRUPTED
                if summary.status == "complete" and summary.detections == 0:
                    print(
                        f"prowl: note: {shown}: no people found in {summary.frames_processed} "
                        "frames; the video is recorded as processed",
                        file=sys.stderr,
                    )
                if summary.unreadable:
                    exit_code = EXIT_USER_ERROR
                    n = len(summary.unreadable)
                    print(
                        f"prowl: {shown}: {n} image{'s' if n > 1 else ''} could not be read "
                        f"({', '.join(summary.unreadable[:3])}{', ...' if n > 3 else ''}); the "
                        "other frames are stored",
                        file=sys.stderr,
                    )
                if summary.frames_lost:
                    exit_code = EXIT_USER_ERROR
                    print(
                        f"prowl: {shown}: decoding stopped at frame {summary.lost_from_frame} "
                        f"of the {summary.frames_announced} the file announces (damaged or "
                        "truncated); what was decoded is stored",
                        file=sys.stderr,
                    )
        print(f"gallery: {safe_url(cfg.db_url)}  (index files under {cfg.data_dir / 'index'})")
        print(
            f"next: prowl query CROP.jpg --data-dir {cfg.data_dir}"
            + (f" --db '{safe_url(cfg.db)}'" if cfg.db else "")
        )
        return exit_code


def _print_summary(s: Any, cfg: Any) -> None:
    if s.status == "skipped":
        print(
            f"{s.video}: already ingested with these settings ({s.frames_processed} frames, "
            f"{s.detections} people); nothing to do (use --force to re-ingest)"
        )
        return
    resumed = f", resumed at frame {s.resumed_from_frame}" if s.resumed_from_frame else ""
    print(
        f"{Path(s.video).name} [camera {s.camera_id}]: {s.frames_read} frames read, "
        f"{s.frames_new} processed"
        + (f" ({s.frames_processed} in all)" if s.frames_processed != s.frames_new else "")
        + f"{resumed}, {s.detections} people detected "
        f"in {s.tracks} tracks ({s.embedded} crops embedded), "
        f"{s.frames_per_s:.1f} frames/s ({s.elapsed_s:.1f} s)"
    )
    if s.subjects_reattached or s.subjects_lost:
        print(
            f"  subjects: {s.subjects_reattached} sightings re-attached to the new boxes"
            + (
                f", {s.subjects_lost} not found again (no box on their frame with IoU >= 0.5)"
                if s.subjects_lost
                else ""
            )
        )
    if s.live is not None:
        print(
            f"  live: {s.live.received} frames received, {s.live.dropped} dropped while the "
            f"pipeline was behind, {s.live.reconnects} reconnections"
            + (f"; ended: {s.live.gave_up}" if s.live.gave_up else "")
        )
    if s.segments:
        print(
            f"  Ray: {s.segments} segments on {s.workers} workers on {s.nodes} "
            f"node{'s' if s.nodes != 1 else ''}; stage times below are summed over workers"
        )
    if s.frames_gated:
        print(
            f"  motion gating: {s.frames_gated} of {s.frames_new} frames had nothing moving and "
            "nobody in them; the detector skipped them (detector.motion)"
        )
    if s.stage_s:
        parts = ", ".join(
            f"{k} {v:.1f}s" for k, v in sorted(s.stage_s.items(), key=lambda kv: -kv[1])
        )
        print(f"  time by stage: {parts}")


def cmd_stats(args: argparse.Namespace) -> int:
    cfg = load_cfg(args)
    with open_gallery(cfg, must_exist=True) as gallery:
        stats = gallery.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"database: {stats['database']}")
    print(f"videos: {len(stats['videos'])}")
    for v in stats["videos"]:
        print(
            f"  {v['path']}  camera={v['camera']}  duration={v['duration_s']:.1f}s  "
            + (f"start={v['start_time']}  " if v.get("start_time") else "")
            + f"frames={v['frames']}  processed={v['frames_processed']}  people={v['detections']}  "
            f"runs={','.join(v['runs'])}"
        )
    print(f"detections: {stats['detections']}")
    for e in stats["embedders"]:
        print(
            f"embedder: {e['name']} dim={e['dim']} detections={e['detections']} "
            f"embedded={e['embedded']} tracks={e['tracks']}  "
            f"index: {e['index_type']} size={e['index_size']} at {e['index_path']}"
        )
        if e["weights"]:
            print(f"  weights: {e['weights']} (sha256 {e['weights_sha256']})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The sample video through the whole pipeline into ./prowl-data (or --data-dir), as two
    cameras on one time axis: the sample itself and a mirrored, recoloured copy recorded 30 s
    later (pipeline/demo.py), then a search from one camera across both."""
    from pipeline.core.assets import resolve
    from pipeline.demo import DEMO_START, SECOND_DELAY_S, second_camera, shifted

    if args.end is not None and not args.end > 0:
        raise ProwlError("--end must be a positive number of seconds")
    video = resolve("vtest.avi")
    cfg = load_cfg(args)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    other = second_camera(video, cfg.data_dir / "demo-camera-b.avi", args.end)
    print(f"sample video: {video}\nsecond camera (mirrored, recoloured, 30 s later): {other}")
    common = (["--data-dir", str(args.data_dir)] if args.data_dir else []) + (
        ["--end", str(args.end)] if args.end is not None else []
    )
    for path, camera, start in (
        (video, "campus", DEMO_START),
        (other, "campus-b", shifted(DEMO_START, SECOND_DELAY_S)),
    ):
        ingest_args = _parser(args).parse_args(
            ["ingest", str(path), "--camera", camera, "--start-time", start, *common]
        )
        code = cmd_ingest(ingest_args)
        if code != 0:
            return code
    return demo_query(args)


def demo_query(args: argparse.Namespace) -> int:
    """Cut one walker out of the sample (the most confident box of a frame in the middle of
    what was ingested), save it as a JPEG and query the gallery with that file."""
    import cv2

    from pipeline.query_input import read_frame

    cfg = load_cfg(args)
    with open_gallery(cfg, must_exist=True) as gallery:
        sample = gallery.sample_person("campus", min_people=3)
    if sample is None:
        raise ProwlError("the demo gallery holds no frame with people; run `make demo` again")
    path, frame_index, box = sample
    image = read_frame(Path(path), frame_index)
    x1, y1, x2, y2 = (round(v) for v in box)
    crop_path = cfg.data_dir / "demo-query.jpg"
    cv2.imwrite(str(crop_path), image[y1:y2, x1:x2])
    report = cfg.data_dir / "demo-report.html"
    print(f"\nquerying with {crop_path} (a walker cut from frame {frame_index}):")
    query_args = _parser(args).parse_args(
        ["query", str(crop_path), "--k", "20", "--report", str(report)]
        + (["--data-dir", str(args.data_dir)] if args.data_dir else [])
    )
    code = int(query_args.func(query_args))
    print(f"\nopen {report.resolve()} in a browser to see every sighting with its frame.")
    return code


def _parser(args: argparse.Namespace) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = args.parser  # set by cli.build_parser
    return parser
