"""`prowl frame`: a stored frame with its boxes and detection ids drawn, to pick a query; and
`prowl colours`: clothing colours for sightings stored before prowl named them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.common import load_cfg, open_gallery, storage_args


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "frame",
        help="a stored frame with its boxes and detection ids drawn (pick one for "
        "`prowl query --detection ID`)",
    )
    p.add_argument("video", help="a stored video (path or file name)")
    p.add_argument(
        "when",
        nargs="?",
        help="a date-time (2026-11-25T15:44:05), a time of day (15:44:05) or seconds from the "
        "video's start (12.5, +0:12)",
    )
    p.add_argument("--frame", type=int, help="the frame index instead of a time")
    p.add_argument("--out", type=Path, required=True, help="JPEG or PNG to write")
    storage_args(p)
    p.set_defaults(func=cmd_frame)
    add_colour_parser(sub)


def cmd_frame(args: argparse.Namespace) -> int:
    import cv2

    from pipeline.core.errors import QueryError
    from pipeline.core.outputs import check_writable
    from pipeline.frame_view import frame_view

    if args.out.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        raise QueryError(f"--out {args.out}: write a .jpg or .png")
    if args.frame is not None and args.frame < 0:
        raise QueryError(f"--frame {args.frame}: frames count from 0")
    check_writable(args.out)
    cfg = load_cfg(args)
    with open_gallery(cfg, must_exist=True) as gallery:
        view = frame_view(gallery, args.video, args.when, args.frame)
    ok, data = cv2.imencode(args.out.suffix.lower(), view.image)
    if not ok:
        raise QueryError(f"could not encode {args.out}")
    args.out.write_bytes(data.tobytes())
    print(f"{view.video} frame {view.frame_index} ({view.time}): {len(view.boxes)} people")
    for det_id, track, (x1, y1, x2, y2), score in view.boxes:
        where = f"{round(x1)},{round(y1)},{round(x2)},{round(y2)}"
        on = f"track {track}" if track is not None else "no track"
        print(f"  #{det_id}  {on}  box {where}  score {score:.2f}")
    print(f"frame: {args.out.resolve()}  (query one: prowl query --detection ID)")
    return 0


def add_colour_parser(sub: Any) -> None:
    p = sub.add_parser(
        "colours",
        help="name the clothing colours of sightings stored before prowl named them (for "
        "--upper/--lower searches); resumable",
    )
    storage_args(p)
    p.set_defaults(func=cmd_colours)


def cmd_colours(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipeline.colour_fill import fill_colours, uncoloured

    cfg = load_cfg(args)
    with open_gallery(cfg, must_exist=True) as gallery:
        todo = uncoloured(gallery)
        if not todo:
            print("every sighting already has its colours")
            return 0
        with tqdm(total=todo, unit="sighting", desc="colours") as bar:

            def advance(n: int) -> None:
                bar.update(n)

            done = fill_colours(gallery, advance)
    print(f"named the clothing colours of {done} sightings")
    return 0
