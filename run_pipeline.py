"""prowl command line: ``prowl SUBCOMMAND ...`` or ``python run_pipeline.py SUBCOMMAND ...``.

Library code raises; this module is the only place that prints for the user and chooses
exit codes: 0 done, 2 a user-fixable error (one line on stderr), 130 stopped by a signal.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from pipeline.errors import ProwlError

log = logging.getLogger("prowl")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _common_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", help="SQLAlchemy URL of the gallery (default sqlite:///DATA_DIR/gallery.db)"
    )
    p.add_argument("--data-dir", type=Path, help="folder of the embedded gallery and index files")
    p.add_argument("--config", type=Path, help="YAML file overriding configs/default.yaml")


def _load_cfg(args: argparse.Namespace, **sections: dict[str, Any]) -> Any:
    from pipeline.config import load_config

    data_dir = getattr(args, "data_dir", None)
    overrides: dict[str, Any] = {
        "db": getattr(args, "db", None),
        "data_dir": str(data_dir) if data_dir else None,
    }
    overrides.update(sections)
    return load_config(getattr(args, "config", None), overrides)


def _open_gallery(cfg: Any, must_exist: bool) -> Any:
    from storage.gallery import Gallery

    return Gallery(cfg.db_url, cfg.data_dir, must_exist=must_exist)


# --------------------------------------------------------------------------- ingest
class _StopOnSignal:
    """First SIGINT/SIGTERM asks the ingest to stop after committing; a second one aborts."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._old: dict[int, Any] = {}

    def __enter__(self) -> threading.Event:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self.event

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        print(
            f"\nprowl: {signal.Signals(signum).name} received; committing what is processed "
            "(again to abort)",
            file=sys.stderr,
        )

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from detectors import build_detector
    from pipeline.ingest import ingest_video
    from pipeline.video import probe
    from reid import build_embedder

    cfg = _load_cfg(
        args,
        video={"stride": args.stride, "start_s": args.start, "end_s": args.end},
        detector={"name": args.detector},
        reid={"name": args.reid, "weights": args.reid_weights},
    )
    infos = [probe(Path(v)) for v in args.videos]  # fail on a bad path before loading models
    if args.camera and len(args.videos) > 1 and len(args.camera) not in (1, len(args.videos)):
        raise ProwlError("give one --camera for all videos or one per video")
    gallery = _open_gallery(cfg, must_exist=False)
    try:
        detector = _build(build_detector, cfg.detector)
        embedder = _build(build_embedder, cfg.reid)
        exit_code = 0
        with _StopOnSignal() as stop:
            for i, (video, info) in enumerate(zip(args.videos, infos, strict=True)):
                camera = None
                if args.camera:
                    camera = args.camera[0] if len(args.camera) == 1 else args.camera[i]
                first = int((cfg.video.start_s or 0) * info.fps)
                last = (
                    int(cfg.video.end_s * info.fps) + 1
                    if cfg.video.end_s is not None
                    else info.frame_count
                )
                total = max(
                    0,
                    (min(last, info.frame_count) - first + cfg.video.stride - 1)
                    // cfg.video.stride,
                )
                with tqdm(
                    total=total,
                    desc=Path(video).name,
                    unit="frame",
                    file=sys.stderr,
                    disable=args.quiet,
                    dynamic_ncols=True,
                ) as bar:
                    people = 0

                    def progress(frames: int, found: int, bar: Any = bar) -> None:
                        nonlocal people
                        people += found
                        bar.update(frames)
                        bar.set_postfix(people=people, refresh=False)

                    summary = ingest_video(
                        Path(video),
                        cfg,
                        gallery,
                        detector,
                        embedder,
                        camera_id=camera,
                        force=args.force,
                        progress=progress,
                        stop=stop,
                    )
                _print_ingest_summary(summary, cfg)
                if summary.status == "interrupted":
                    cmd = " ".join(sys.argv[1:]) if sys.argv[1:] else "ingest VIDEO"
                    print(
                        f"stopped: everything processed is stored; run `prowl {cmd}` "
                        "again to resume from the last committed frame",
                        file=sys.stderr,
                    )
                    return EXIT_INTERRUPTED
                if summary.status == "complete" and summary.detections == 0:
                    print(
                        f"prowl: note: {video}: no people found in {summary.frames_processed} "
                        "frames; the video is recorded as processed",
                        file=sys.stderr,
                    )
                if summary.frames_lost:
                    exit_code = EXIT_USER_ERROR
                    print(
                        f"prowl: {video}: decoding stopped before the end the file announces; "
                        "what was decoded is stored",
                        file=sys.stderr,
                    )
        print(f"gallery: {cfg.db_url}  (index files under {cfg.data_dir / 'index'})")
        print(
            f"next: prowl query CROP.jpg --data-dir {cfg.data_dir}"
            + (f" --db '{cfg.db}'" if cfg.db else "")
        )
        return exit_code
    finally:
        gallery.close()


def _build(factory: Callable[[Any], Any], section: Any) -> Any:
    try:
        return factory(section)
    except ValueError as exc:
        raise ProwlError(str(exc)) from None


def _print_ingest_summary(s: Any, cfg: Any) -> None:
    if s.status == "skipped":
        print(
            f"{s.video}: already ingested with these settings ({s.frames_processed} frames, "
            f"{s.detections} people); nothing to do (use --force to re-ingest)"
        )
        return
    resumed = f", resumed at frame {s.resumed_from_frame}" if s.resumed_from_frame else ""
    print(
        f"{Path(s.video).name} [camera {s.camera_id}]: {s.frames_read} frames read, "
        f"{s.frames_processed} processed{resumed}, {s.detections} people detected "
        f"in {s.tracks} tracks ({s.embedded} crops embedded), "
        f"{s.frames_per_s:.1f} frames/s ({s.elapsed_s:.1f} s)"
    )
    if s.stage_s:
        parts = ", ".join(
            f"{k} {v:.1f}s" for k, v in sorted(s.stage_s.items(), key=lambda kv: -kv[1])
        )
        print(f"  time by stage: {parts}")


# --------------------------------------------------------------------------- stats
def cmd_stats(args: argparse.Namespace) -> int:
    cfg = _load_cfg(args)
    gallery = _open_gallery(cfg, must_exist=True)
    try:
        stats = gallery.stats()
    finally:
        gallery.close()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"database: {stats['database']}")
    print(f"videos: {len(stats['videos'])}")
    for v in stats["videos"]:
        print(
            f"  {v['path']}  camera={v['camera']}  duration={v['duration_s']:.1f}s  "
            f"frames={v['frames']}  processed={v['frames_processed']}  people={v['detections']}  "
            f"runs={','.join(v['runs'])}"
        )
    print(f"detections: {stats['detections']}")
    for e in stats["embedders"]:
        print(
            f"embedder: {e['name']} dim={e['dim']} detections={e['detections']} "
            f"embedded={e['embedded']} tracks={e['tracks']}  "
            f"index: {e['index_type']} size={e['index_size']} at {e['index_path']}"
        )
    return 0


# --------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    """The sample video through the whole pipeline into ./prowl-data (or --data-dir)."""
    from pipeline.assets import resolve

    video = resolve("vtest.avi")
    print(f"sample video: {video}")
    ingest_args = build_parser().parse_args(
        ["ingest", str(video), "--camera", "campus"]
        + (["--data-dir", str(args.data_dir)] if args.data_dir else [])
        + (["--end", str(args.end)] if args.end is not None else [])
    )
    code = cmd_ingest(ingest_args)
    if code != 0:
        return code
    return demo_query(args)


def demo_query(args: argparse.Namespace) -> int:
    """Cut one walker out of the sample (the most confident box of a frame in the middle of
    what was ingested), save it as a JPEG and query the gallery with that file."""
    import cv2
    from sqlalchemy import func, select

    from pipeline.query import read_frame
    from storage.models import DetectionRow, VideoRow

    cfg = _load_cfg(args)
    gallery = _open_gallery(cfg, must_exist=True)
    try:
        with gallery.session() as s:
            video = s.scalar(select(VideoRow).where(VideoRow.camera_id == "campus"))
            if video is None:
                raise ProwlError("the demo gallery holds no sample video; run `make demo` again")
            frames = list(
                s.scalars(
                    select(DetectionRow.frame_index)
                    .where(DetectionRow.video_id == video.id)
                    .group_by(DetectionRow.frame_index)
                    .having(func.count() >= 3)
                    .order_by(DetectionRow.frame_index)
                )
            )
            if not frames:
                raise ProwlError("no frame of the sample holds people; nothing to query")
            frame_index = frames[len(frames) // 2]
            det = s.scalars(
                select(DetectionRow)
                .where(DetectionRow.video_id == video.id, DetectionRow.frame_index == frame_index)
                .order_by(DetectionRow.score.desc())
            ).first()
            assert det is not None
            box, path = (det.x1, det.y1, det.x2, det.y2), video.path
    finally:
        gallery.close()
    image = read_frame(Path(path), frame_index)
    x1, y1, x2, y2 = (round(v) for v in box)
    crop_path = cfg.data_dir / "demo-query.jpg"
    cv2.imwrite(str(crop_path), image[y1:y2, x1:x2])
    report = cfg.data_dir / "demo-report.html"
    print(f"\nquerying with {crop_path} (a walker cut from frame {frame_index}):")
    query_args = build_parser().parse_args(
        ["query", str(crop_path), "--k", "20", "--report", str(report)]
        + (["--data-dir", str(args.data_dir)] if args.data_dir else [])
    )
    code = int(query_args.func(query_args))
    print(f"\nopen {report.resolve()} in a browser to see every sighting with its frame.")
    return code


# --------------------------------------------------------------------------- benchmarks
def cmd_bench_ingest(args: argparse.Namespace) -> int:
    from pipeline.assets import resolve
    from pipeline.benchmarks import bench_ingest

    cfg = _load_cfg(args, detector={"name": args.detector}, reid={"name": args.reid})
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


# --------------------------------------------------------------------------- models
def cmd_models(args: argparse.Namespace) -> int:
    from pipeline import catalog

    if args.measure:
        from pipeline.assets import resolve

        cfg = _load_cfg(args)
        names = [n for n in args.only.split(",") if n] if args.only else None
        print(
            f"measuring on the first {args.frames} frames of the sample video ...", file=sys.stderr
        )
        catalog.measure(cfg, resolve("vtest.avi"), args.frames, names)
    print(catalog.table(markdown=args.markdown))
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prowl", description="Person retrieval in surveillance video."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="detect, embed and store the people in videos")
    p.add_argument("videos", nargs="+", help="video files or folders of frames")
    p.add_argument(
        "--camera", action="append", help="camera id (default: file name); once, or once per video"
    )
    p.add_argument("--stride", type=int, help="keep every Nth frame")
    p.add_argument("--start", type=_parse_time, help="start time (seconds or hh:mm:ss)")
    p.add_argument("--end", type=_parse_time, help="end time (seconds or hh:mm:ss)")
    p.add_argument("--detector", help="detector name (see `prowl models`)")
    p.add_argument("--reid", help="re-ID embedder name (see `prowl models`)")
    p.add_argument("--reid-weights", help="checkpoint for embedders that take one (torchreid:ARCH)")
    p.add_argument(
        "--force", action="store_true", help="re-ingest videos already done (replaces their rows)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _common_storage(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("stats", help="what the gallery holds")
    p.add_argument("--json", action="store_true")
    _common_storage(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("demo", help="ingest (and query) the sample video end to end")
    p.add_argument("--data-dir", type=Path, help="where the demo gallery goes (default prowl-data)")
    p.add_argument("--end", type=float, help="only the first END seconds of the sample")
    p.set_defaults(func=cmd_demo)

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

    from pipeline.cli_query import add_query_parsers

    add_query_parsers(sub, _common_storage)

    from evaluation.cli import add_eval_parsers

    add_eval_parsers(sub, _common_storage)
    return parser


def _parse_time(text: str) -> float:
    """Seconds ('12.5') or clock time ('1:02:03.5', '02:03')."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a time; use seconds or hh:mm:ss"
        ) from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"'{text}' is not a time; use seconds or hh:mm:ss")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    from sqlalchemy.exc import DBAPIError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="prowl: %(levelname)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except ProwlError as exc:
        print(f"prowl: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # a full or vanished disk, a permission change mid-run
        print(
            f"prowl: error: {exc.strerror or exc} ({exc.filename or 'data directory'}); "
            "free space or fix permissions, then run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        print(
            f"prowl: error: database: {reason}; what was committed is kept, run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("prowl: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
