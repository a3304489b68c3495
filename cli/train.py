"""`prowl train`: a re-ID embedder trained with the field's baseline recipe, on a re-ID
layout's training split or on a gallery's own tracks; writes weights and a model card."""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.common import load_cfg, open_gallery, storage_args
from cli.train_gan import add_gan_args, check_gan_flags, describe, generated_data
from pipeline.config import DEVICE
from pipeline.errors import ProwlError
from pipeline.outputs import write_text
from pipeline.redact import redact_text
from storage.database import safe_url


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not HxW (e.g. 256x128)") from None
    if h < 32 or w < 32 or h % 32 or w % 32:
        raise argparse.ArgumentTypeError(f"'{text}': both sides multiples of 32, at least 32")
    return h, w


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
    p.add_argument("--size", type=_size, default=(d.height, d.width), help="HxW, e.g. 256x128")
    p.add_argument("--iters-per-epoch", type=int, default=0, help="0: one pass over the images")
    p.add_argument("--val-fraction", type=float, default=0.2, help="identities held out")
    p.add_argument("--patience", type=int, default=d.patience)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
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
    add_gan_args(p, _size)
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
    p.add_argument("--size", type=_size, default=(d.height, d.width))
    p.add_argument("--iters-per-epoch", type=int, default=0)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
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
    add_gan_args(p, _size)
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


def check_device(device: str) -> None:
    """``--device``: cpu, cuda[:N] or mps, and present on this machine; said before any work."""
    if not DEVICE.match(device):
        raise ProwlError(f"--device {device!r} is not a device; use cpu, cuda, cuda:N or mps")
    if device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= count:
            raise ProwlError(f"--device {device}: this machine has {count} CUDA devices; use cpu")


def _check_training_flags(args: argparse.Namespace) -> None:
    """The flags train and adapt share, checked before any data is read or file written."""
    check_device(args.device)
    if not (math.isfinite(args.lr) and 0 < args.lr <= 1):
        raise ProwlError(f"--lr {args.lr} must be a learning rate within (0, 1]")
    if args.iters_per_epoch < 0:
        raise ProwlError("--iters-per-epoch must be 0 (one pass over the images) or more")
    if getattr(args, "patience", 1) < 1:
        raise ProwlError("--patience must be at least 1 (epochs without improvement)")
    if args.min_sightings < 2:
        raise ProwlError("--min-sightings must be at least 2")
    if args.out.exists() and not args.out.is_dir():
        raise ProwlError(f"--out {args.out} is a file; give a folder")


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    _check_training_flags(args)
    check_gan_flags(args)

    from evaluation.train_data import (
        gallery_training_set,
        layout_training_set,
        split,
        validator,
    )
    from reid.training import Recipe, save_model, train

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
    init = _resolve_init(args.init)
    recipe = Recipe(
        arch=args.arch,
        init=init,
        epochs=args.epochs,
        p_identities=args.p_identities,
        k_images=args.k_images,
        lr=args.lr,
        warmup_epochs=args.warmup_epochs,
        height=args.size[0],
        width=args.size[1],
        iters_per_epoch=args.iters_per_epoch,
        patience=args.patience,
        seed=args.seed,
        device=args.device,
    )
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
    card = _card(args, recipe, data, logs, wall_s)
    if extra is not None:
        card["generated"] = describe(args, extra)
    save_model(model, recipe, card, args.out / "model.pt")
    write_text(args.out / "card.json", json.dumps(card, indent=2) + "\n")
    write_text(args.out / "MODEL_CARD.md", _card_markdown(card))
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


def best_of(logs: list[Any]) -> tuple[float | None, int | None]:
    """(best validation mAP, its epoch); (None, last epoch) when there was no validation."""
    if not logs:
        return None, None
    scored = [e for e in logs if not math.isnan(e.val_mAP)]
    if not scored:
        return None, logs[-1].epoch
    best = max(scored, key=lambda e: e.val_mAP)
    return best.val_mAP, best.epoch


def _resolve_init(init: str) -> str:
    if init in ("imagenet", "none") or Path(init).is_file():
        return init if init in ("imagenet", "none") else str(Path(init).resolve())
    from pipeline.assets import known_assets, resolve

    if f"{init}.pth" in known_assets():
        return str(resolve(f"{init}.pth"))
    raise ProwlError(
        f"--init '{init}' is not imagenet, none, a file, or a named checkpoint "
        "(e.g. osnet_x0_25_msmt17)"
    )


def _card(
    args: argparse.Namespace, recipe: Any, data: Any, logs: list[Any], wall_s: float
) -> dict[str, Any]:
    best_map, best_epoch = best_of(logs)
    epochs = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(e).items()}
        for e in logs
    ]
    return {
        "model": f"prowl:{args.out / 'model.pt'}",
        "architecture": f"{recipe.arch} + BNNeck (embedding: the BNNeck feature)",
        "initialisation": recipe.init,
        "data": {
            "source": data.source,
            "train_images": len(data.train),
            "train_identities": data.num_classes,
            "validation_images": len(data.val),
            "validation": "held-out identities; query = first image per identity, gallery = "
            "the rest; same identity + same camera removed",
        },
        "recipe": {
            **asdict(recipe),
            "loss": "cross-entropy with label smoothing + batch-hard triplet",
            "sampler": "PK",
            "augmentation": "flip, pad 10 + crop, random erasing",
            "schedule": "linear warm-up, cosine decay",
            "optimiser": "Adam",
        },
        "metrics": {
            "best_validation_mAP": best_map,
            "best_epoch": best_epoch,
            "epochs": epochs,
        },
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "wall_time_s": round(wall_s, 1),
        "command": "prowl " + redact_text(" ".join(sys.argv[1:])),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "licences": "code MIT (prowl); OSNet architecture after torchreid (MIT); the weights "
        "inherit the terms of their initialisation and training data",
    }


def _card_markdown(card: dict[str, Any]) -> str:
    m, d, r = card["metrics"], card["data"], card["recipe"]
    rows = "\n".join(
        f"| {e['epoch']} | {e['loss_id']:.3f} | {e['loss_triplet']:.3f} | "
        f"{'-' if e['val_mAP'] is None else format(e['val_mAP'], '.3f')} | "
        f"{e['images_per_s']:.1f} |"
        for e in m["epochs"]
    )
    return f"""# Model card: {card["model"]}

- Architecture: {card["architecture"]}
- Initialisation: {card["initialisation"]}
- Data: {d["source"]}: {d["train_images"]} training images of {d["train_identities"]}
  identities; validation on {d["validation_images"]} images of held-out identities
  ({d["validation"]}).
- Recipe: {r["loss"]}; {r["sampler"]} sampler (P={r["p_identities"]}, K={r["k_images"]});
  {r["augmentation"]}; {r["optimiser"]} lr {r["lr"]}, {r["schedule"]} over {r["epochs"]}
  epochs ({r["warmup_epochs"]} warm-up); input {r["height"]}×{r["width"]}; seed {r["seed"]}.
- Best validation mAP: {m["best_validation_mAP"]} (epoch {m["best_epoch"]}).
- Trained on {card["machine"]} in {card["wall_time_s"]} s: `{card["command"]}`.
- Licences: {card["licences"]}.

| epoch | ID loss | triplet loss | val mAP | images/s |
|---|---|---|---|---|
{rows}
"""


def cmd_adapt(args: argparse.Namespace) -> int:
    from evaluation.adapt import adapt
    from reid.training import Recipe, save_model
    from storage.tracks import track_crops, track_spans

    _check_training_flags(args)
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
    recipe = Recipe(
        arch=args.arch,
        init=_resolve_init(args.init),
        epochs=args.epochs,
        p_identities=args.p_identities,
        k_images=args.k_images,
        lr=args.lr,
        warmup_epochs=args.warmup_epochs,
        height=args.size[0],
        width=args.size[1],
        iters_per_epoch=args.iters_per_epoch,
        seed=args.seed,
        device=args.device,
    )
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


def cmd_import_onnx(args: argparse.Namespace) -> int:
    """Convert, check the two agree on random inputs and on real people of the sample video,
    then write the state dict (torchreid's layout: `--reid torchreid:ARCH --reid-weights`)
    and a card beside it."""
    import numpy as np
    import torch

    from pipeline.assets import resolve, sha256_of
    from pipeline.crops import crop_boxes
    from pipeline.video import read_frames
    from reid.backbones import preprocess
    from reid.onnx_import import agreement, osnet_from_onnx, state_from_onnx
    from reid.osnet import ARCHS

    if args.arch not in ARCHS:
        raise ProwlError(f"--arch {args.arch}: not an OSNet prowl knows ({', '.join(ARCHS)})")
    if not args.onnx.is_file():
        raise ProwlError(f"{args.onnx} does not exist; give the .onnx file")
    if args.out.exists():
        raise ProwlError(f"{args.out} exists; choose a new file name")
    model = osnet_from_onnx(args.onnx, args.arch)  # a file of another architecture fails here
    torch.manual_seed(0)
    noise = torch.randn(8, 3, 256, 128)
    frame = next(iter(read_frames(resolve("vtest.avi"), first_index=55, stop_index=56))).image
    people = crop_boxes(frame, np.asarray([[484, 210, 522, 299], [640, 248, 680, 361]], np.float32))
    real = torch.from_numpy(preprocess(people, (256, 128)).transpose(0, 3, 1, 2).copy())
    worst = min(agreement(model, args.onnx, noise), agreement(model, args.onnx, real))
    if worst < args.min_cosine:
        raise ProwlError(
            f"prowl's {args.arch} and ONNX Runtime agree only to cosine {worst:.6f} "
            f"(< {args.min_cosine}); not written"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_from_onnx(args.onnx, args.arch), args.out)
    card = {
        "made_by": "prowl import-onnx",
        "source": args.onnx.name,
        "source_sha256": sha256_of(args.onnx),
        "arch": args.arch,
        "weights_sha256": sha256_of(args.out),
        "min_cosine_vs_onnxruntime": round(worst, 7),
        "checked_on": "8 random inputs and 2 people of the sample video (frame 55)",
        "torch": torch.__version__,
    }
    write_text(args.out.with_suffix(".card.json"), json.dumps(card, indent=2) + "\n")
    size = args.out.stat().st_size / 1e6
    print(
        f"wrote {args.out} ({size:.1f} MB, {args.arch}); agrees with ONNX Runtime to cosine "
        f"{worst:.7f}; sha256 {card['weights_sha256']}"
    )
    return 0
