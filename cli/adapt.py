"""`prowl adapt`: an embedder fine-tuned on the gallery's own tracks without labels (or, with
--spgan, on a labelled source translated into the gallery footage's style)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime

from cli.common import load_cfg, open_gallery
from cli.train_common import check_training_flags, recipe_from_args
from pipeline.core.errors import ProwlError
from pipeline.core.outputs import write_text
from pipeline.core.redact import redact_text
from storage.database import safe_url


def cmd_adapt(args: argparse.Namespace) -> int:
    from reid.adapt import adapt
    from reid.training import save_model
    from storage.tracks import track_crops, track_spans

    check_training_flags(args)
    if args.rounds < 1 or args.epochs < 1:
        raise ProwlError("--rounds and --epochs must be at least 1")
    if not all(-1 <= t <= 1 for t in args.threshold):
        raise ProwlError("--threshold takes two cosine similarities within -1..1")
    if args.out.exists() and any(args.out.iterdir()):
        raise ProwlError(f"{args.out} is not empty; choose a new folder")
    if args.spgan:
        from cli.train_gan import cmd_spgan

        return cmd_spgan(args)
    if args.source is not None:
        raise ProwlError("--source is SPGAN's labelled source; add --spgan")
    recipe = recipe_from_args(args)
    cfg = load_cfg(args)
    with open_gallery(cfg, must_exist=True) as gallery, gallery.session() as s:
        tracks = track_crops(s, args.min_sightings)
        spans = track_spans(s, args.min_sightings)
    if len(tracks) < 4:
        raise ProwlError(
            f"the gallery has {len(tracks)} tracks with >= {args.min_sightings} sightings; "
            "adapting needs at least 4 (lower --min-sightings or ingest more footage)"
        )

    def progress(kind: str, values: dict[str, float]) -> None:
        if kind == "round":
            print(
                f"round {int(values['round'])}: {int(values['identities'])} pseudo-identities "
                f"from {len(tracks)} tracks (merge threshold {values['threshold']:.2f})",
                file=sys.stderr,
            )

    started = time.perf_counter()
    model, logs, sep = adapt(
        tracks, spans, recipe, args.rounds, tuple(args.threshold), args.out, progress
    )
    card = {
        "model": f"prowl:{args.out / 'model.pt'}",
        "architecture": f"{recipe.arch} + BNNeck",
        "initialisation": recipe.init,
        "data": f"gallery {safe_url(cfg.db_url)}: {len(tracks)} tracks with "
        f">= {args.min_sightings} sightings, no labels",
        "method": "rounds of tracklet association (average linkage of mean track features; "
        "tracks seen at the same time never merge) then training with the prowl train recipe",
        "rounds": [asdict(r) for r in logs],
        "separation": sep,
        "recipe": asdict(recipe),
        "wall_time_s": round(time.perf_counter() - started, 1),
        "command": "prowl " + redact_text(" ".join(sys.argv[1:])),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "licences": "the weights inherit the terms of their initialisation; the footage is yours",
    }
    save_model(model, recipe, card, args.out / "model.pt")
    write_text(args.out / "card.json", json.dumps(card, indent=2) + "\n")
    b, a = sep["before"], sep["after"]
    print(
        f"adapted {args.arch} on {len(tracks)} tracks in {card['wall_time_s']:.0f} s: "
        f"same-track similarity {b['same_track']:.3f} -> {a['same_track']:.3f}, "
        f"co-occurring tracks {b['co_occurring']:.3f} -> {a['co_occurring']:.3f}"
    )
    print(f"use it: --reid prowl:{args.out / 'model.pt'}  (or prowl reembed --reid prowl:...)")
    return 0
