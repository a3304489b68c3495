"""`prowl train`: a re-ID embedder trained with the field's baseline recipe, on a re-ID
layout's training split or on a gallery's own tracks; writes weights and a model card."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from cli.adapt import cmd_adapt
from cli.common import load_cfg, open_gallery, storage_args
from cli.import_onnx import cmd_import_onnx
from cli.train_common import (
    best_of,
    card_markdown,
    check_training_flags,
    model_card,
    recipe_from_args,
    size_arg,
)
from cli.train_gan import add_gan_args, check_gan_flags, describe, generated_data
from pipeline.core.errors import ProwlError
from pipeline.core.outputs import write_text
from storage.database import safe_url


def add_parsers(sub: Any) -> None:
    from reid.recipe import BACKBONES, Recipe

    d = Recipe()
    p = sub.add_parser("train", help="train a re-ID embedder (ID + triplet loss, BNNeck, PK)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", type=Path, help="a re-ID layout's root (its training split)")
    src.add_argument(
        "--from-gallery", action="store_true", help="learn from the gallery's own long tracks"
    )
    p.add_argument("--format", choices=["market1501", "dukemtmc", "cuhk03-np", "msmt17", "mars"])
    p.add_argument("--min-sightings", type=int, default=20, help="--from-gallery: track length")
    p.add_argument("--arch", default=d.arch, choices=BACKBONES)
    p.add_argument(
        "--init",
        default=d.init,
        help="imagenet, none, a checkpoint file, or a named one (e.g. osnet_x0_25_msmt17)",
    )
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--p", dest="p_identities", type=int, default=d.p_identities, help="P ids/batch")
    p.add_argument("--k", dest="k_images", type=int, default=d.k_images, help="K images/identity")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--warmup-epochs", type=int, default=d.warmup_epochs)
    p.add_argument("--size", type=size_arg, default=(d.height, d.width), help="HxW, e.g. 256x128")
    p.add_argument("--iters-per-epoch", type=int, default=0, help="0: one pass over the images")
    p.add_argument("--val-fraction", type=float, default=0.2, help="identities held out")
    p.add_argument("--patience", type=int, default=d.patience)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
    p.add_argument(
        "--freeze-bn",
        action="store_true",
        help="keep the backbone's batch-norm statistics (fine-tuning a re-ID model on few people)",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for model.pt and the card")
    p.add_argument("--resume", action="store_true", help="continue from --out/last.pt")
    p.add_argument(
        "--camstyle",
        action="store_true",
        help="camera-style augmentation: a CycleGAN over the training cameras copies every "
        "image into each other camera's style (Zhong et al. 2018)",
    )
    p.add_argument(
        "--lsro",
        type=int,
        default=0,
        metavar="N",
        help="N DCGAN samples trained with a uniform label distribution (Zheng et al. 2017)",
    )
    add_gan_args(p, size_arg)
    storage_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "adapt", help="fine-tune an embedder on the gallery's own tracks, without labels"
    )
    p.add_argument("--arch", default="osnet_x0_25", choices=BACKBONES)
    p.add_argument(
        "--init", default="osnet_x0_25_msmt17", help="the embedder to start from (as for train)"
    )
    p.add_argument("--rounds", type=int, default=3, help="associate-then-train rounds")
    p.add_argument("--epochs", type=int, default=2, help="epochs per round")
    p.add_argument(
        "--threshold",
        type=float,
        nargs=2,
        default=(0.9, 0.8),
        metavar=("FIRST", "LAST"),
        help="track-merge similarity of the first and last round (loosened as it learns)",
    )
    p.add_argument("--min-sightings", type=int, default=10, help="shortest track to use")
    p.add_argument("--p", dest="p_identities", type=int, default=8)
    p.add_argument("--k", dest="k_images", type=int, default=4)
    p.add_argument("--lr", type=float, default=3.5e-5, help="small: adapt, do not relearn")
    p.add_argument("--warmup-epochs", type=int, default=0)
    p.add_argument("--size", type=size_arg, default=(d.height, d.width))
    p.add_argument("--iters-per-epoch", type=int, default=0)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
    p.add_argument(
        "--freeze-bn",
        action="store_true",
        help="keep the backbone's batch-norm statistics (fine-tuning a re-ID model on few people)",
    )
    p.add_argument("--out", type=Path, required=True, help="a new folder for model.pt and the card")
    p.add_argument(
        "--spgan",
        action="store_true",
        help="instead of pseudo-identities: translate a labelled --source into this gallery's "
        "footage style (SPGAN, Deng et al. 2018) and train on it",
    )
    p.add_argument("--source", type=Path, help="--spgan: a labelled re-ID layout's root")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="--spgan: source identities held out for validation (0: keep the last epoch)",
    )
    p.add_argument(
        "--source-format",
        choices=["market1501", "dukemtmc", "cuhk03-np", "msmt17", "mars"],
        help="--spgan: the layout of --source",
    )
    add_gan_args(p, size_arg)
    storage_args(p)
    p.set_defaults(func=cmd_adapt)

    p = sub.add_parser(
        "import-onnx",
        help="an OSNet exported to ONNX as a checkpoint of prowl's own OSNet (checked against "
        "ONNX Runtime)",
    )
    p.add_argument("onnx", type=Path, help="the .onnx file (torchreid OSNet export)")
    p.add_argument("--arch", default="osnet_x0_5", help="its OSNet architecture")
    p.add_argument("--out", type=Path, required=True, help="the .pth file to write (new)")
    p.add_argument(
        "--min-cosine",
        type=float,
        default=0.9999,
        help="refuse unless prowl's OSNet and ONNX Runtime agree this well on every test input",
    )
    p.set_defaults(func=cmd_import_onnx)


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    check_training_flags(args)
    check_gan_flags(args)

    from reid.train_data import (
        gallery_training_set,
        layout_training_set,
        split,
        validator,
    )
    from reid.training import save_model, train

    for name, value, low in [
        ("--epochs", args.epochs, 1),
        ("--p", args.p_identities, 2),
        ("--k", args.k_images, 2),
    ]:
        if value < low:
            raise ProwlError(f"{name} must be at least {low}")
    if not 0 <= args.val_fraction < 1:
        raise ProwlError("--val-fraction must be within [0, 1)")
    if args.out.exists() and any(args.out.iterdir()) and not args.resume:
        raise ProwlError(f"{args.out} is not empty; choose a new folder or pass --resume")
    recipe = recipe_from_args(args)
    if args.from_gallery:
        from storage.tracks import track_crops

        cfg = load_cfg(args)
        with open_gallery(cfg, must_exist=True) as gallery, gallery.session() as s:
            tracks = track_crops(s, args.min_sightings)
        samples = gallery_training_set(tracks)
        source = f"gallery {safe_url(cfg.db_url)} (tracks with >= {args.min_sightings} sightings)"
    else:
        if args.format is None:
            raise ProwlError("--dataset needs --format (market1501, dukemtmc, ...)")
        samples = layout_training_set(args.dataset, args.format)
        source = f"{args.dataset} ({args.format} training split)"
    data = split(samples, args.val_fraction, args.seed, source)
    started = time.perf_counter()
    extra = generated_data(args, data.train, recipe)
    bars: list[Any] = []  # drawn at the first step: bad input before it prints only its line

    def progress(kind: str, values: dict[str, float]) -> None:
        if not bars:
            bars.append(tqdm(total=None, desc=f"train {args.arch}", unit="batch", file=sys.stderr))
        bar = bars[0]
        if kind == "step":
            bar.update(1)
            bar.set_postfix(
                epoch=int(values["epoch"]),
                loss=f"{values['loss']:.3f}",
                img_s=f"{values['img/s']:.1f}",
                refresh=False,
            )
        else:
            val = values["val_mAP"]
            bar.write(
                f"epoch {int(values['epoch'])}: id {values['loss_id']:.3f} triplet "
                f"{values['loss_triplet']:.3f} val mAP {'-' if math.isnan(val) else f'{val:.3f}'} "
                f"({values['images_per_s']:.1f} img/s)"
            )

    try:
        model, logs = train(
            data.train,
            data.num_classes,
            recipe,
            args.out,
            validator(data.val, recipe),
            progress,
            resume=args.resume,
            extra=extra,
        )
    finally:
        for bar in bars:
            bar.close()
    wall_s = time.perf_counter() - started
    card = model_card(args, recipe, data, logs, wall_s)
    if extra is not None:
        card["generated"] = describe(args, extra)
    save_model(model, recipe, card, args.out / "model.pt")
    write_text(args.out / "card.json", json.dumps(card, indent=2) + "\n")
    write_text(args.out / "MODEL_CARD.md", card_markdown(card))
    best_map, best_epoch = best_of(logs)
    kept = (
        f"best validation mAP {best_map:.3f} (epoch {best_epoch})"
        if best_map is not None
        else f"no validation identities: kept the last epoch ({best_epoch})"
    )
    print(
        f"trained {args.arch} on {len(data.train)} images of {data.num_classes} identities in "
        f"{wall_s:.0f} s; {kept}"
    )
    print(f"use it: --reid prowl:{args.out / 'model.pt'}   (card: {args.out / 'MODEL_CARD.md'})")
    return 0
