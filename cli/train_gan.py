"""The GAN options of `prowl train` (--camstyle, --lsro N) and `prowl adapt --spgan`: the
generators train first (resumable, with a progress bar and a samples.png grid each), then
the embedder trains with the `prowl train` recipe on what they made."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from pipeline.core.errors import ProwlError


def add_gan_args(p: argparse.ArgumentParser, size_type: Any) -> None:
    g = p.add_argument_group("generated data (GANs at reduced size; a GPU with --device cuda)")
    g.add_argument("--gan-iters", type=int, default=2000, help="generator training iterations")
    g.add_argument(
        "--gan-size",
        type=size_type,
        default=(64, 32),
        help="HxW the GANs work at (CPU-sized; 128x64 or 256x128 on a GPU)",
    )
    g.add_argument("--gan-batch", type=int, default=8, help="images per domain and iteration")


@contextmanager
def gan_bar(what: str, total: int) -> Iterator[Any]:
    from tqdm import tqdm

    with tqdm(total=total, desc=what, unit="it", file=sys.stderr) as bar:

        def step(it: int, losses: dict[str, float]) -> None:
            bar.n = it + 1
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
            bar.update(0)

        yield step


def check_gan_flags(args: argparse.Namespace) -> None:
    """Before any data is read: the numbers, and camstyle's need for real camera labels."""
    if args.gan_iters < 1 or args.gan_batch < 1:
        raise ProwlError("--gan-iters and --gan-batch must be at least 1")
    if getattr(args, "lsro", 0) < 0:
        raise ProwlError("--lsro N: N generated images must be 0 (off) or more")
    if getattr(args, "camstyle", False) and getattr(args, "from_gallery", False):
        raise ProwlError(
            "--camstyle needs a dataset with camera labels (--dataset); a gallery's tracks "
            "have none"
        )


def generated_data(args: argparse.Namespace, train: list[Any], recipe: Any) -> Any:
    """``reid.training.GeneratedData`` for --camstyle / --lsro (None when neither is asked)."""
    from reid.generated import cameras_of, camstyle_data, gan_settings, lsro_data
    from reid.train_parts import GeneratedData

    if args.camstyle and len(cameras_of(train)) < 2:  # said before a progress bar is drawn
        raise ProwlError(
            f"--camstyle: the training set has {len(cameras_of(train))} camera; camera-style "
            "transfer needs images of at least two cameras"
        )
    if not args.camstyle and not args.lsro:
        return None
    settings = gan_settings(args.gan_size, args.gan_iters, args.gan_batch, args.seed, args.device)
    styled: Any = ()
    if args.camstyle:
        with gan_bar("camstyle GAN", settings.iters) as step:
            styled = camstyle_data(train, settings, args.out / "camstyle", step).styled
        print(f"camera-style copies: {args.out / 'camstyle' / 'samples.png'}", file=sys.stderr)
    if args.lsro:
        batch = recipe.p_identities * recipe.k_images
        dc = replace(settings, batch=max(16, settings.batch * 2))
        with gan_bar("LSRO DCGAN", settings.iters) as step:
            lsro = lsro_data(train, args.lsro, batch, dc, args.out / "dcgan", step)
        print(f"GAN samples: {args.out / 'dcgan' / 'samples.png'}", file=sys.stderr)
        return GeneratedData(styled=styled, unlabelled=lsro.unlabelled, per_batch=lsro.per_batch)
    return GeneratedData(styled=styled)


def describe(args: argparse.Namespace, extra: Any) -> dict[str, Any]:
    """What the model card says about the generated data."""
    out: dict[str, Any] = {}
    if args.camstyle:
        out["camstyle"] = {
            "method": "Zhong et al. CVPR 2018: one conditional CycleGAN generator over the "
            "training cameras; each image copied into every other camera's style; a batch "
            f"image swapped for a copy with p={extra.style_p}, label smoothing "
            f"{extra.style_smoothing} on copies",
            "gan_size": list(args.gan_size),
            "gan_iters": args.gan_iters,
            "samples": str(args.out / "camstyle" / "samples.png"),
        }
    if args.lsro:
        out["lsro"] = {
            "method": "Zheng et al. ICCV 2017: DCGAN samples trained with a uniform label "
            f"distribution; {extra.per_batch} per batch",
            "generated_images": args.lsro,
            "gan_size": list(args.gan_size),
            "gan_iters": args.gan_iters,
            "samples": str(args.out / "dcgan" / "samples.png"),
        }
    return out


def cmd_spgan(args: argparse.Namespace) -> int:
    """`prowl adapt --spgan`: the labelled source in the gallery footage's style, then
    the train recipe on it, starting from --init."""
    from cli.common import load_cfg, open_gallery
    from cli.train_common import best_of, model_card, recipe_from_args
    from pipeline.core.outputs import write_text
    from reid.generated import gan_settings, spgan_samples
    from reid.train_data import decoder, layout_training_set, split, validator
    from reid.training import save_model, train
    from storage.database import safe_url
    from storage.tracks import track_crops

    if args.source is None or args.source_format is None:
        raise ProwlError("--spgan needs --source DIR and --source-format (the labelled source)")
    check_gan_flags(args)
    settings = gan_settings(args.gan_size, args.gan_iters, args.gan_batch, args.seed, args.device)
    recipe = recipe_from_args(args)
    source = layout_training_set(args.source, args.source_format)
    cfg = load_cfg(args)
    with open_gallery(cfg, must_exist=True) as gallery, gallery.session() as s:
        tracks = track_crops(s, args.min_sightings)
    target = [decoder(jpeg) for t in tracks for _f, jpeg in t]
    if len(target) < 50:
        raise ProwlError(
            f"the gallery has {len(target)} crops in tracks of >= {args.min_sightings} "
            "sightings; SPGAN needs at least 50 of the target footage (ingest more)"
        )
    if not 0 <= args.val_fraction < 1:
        raise ProwlError("--val-fraction must be within [0, 1)")
    data = split(
        source, args.val_fraction, args.seed, f"{args.source} ({args.source_format}) via SPGAN"
    )
    started = time.perf_counter()
    with gan_bar("SPGAN", settings.iters) as step:
        styled = spgan_samples(data.train, target, settings, args.out / "spgan", step)
    print(f"translated source: {args.out / 'spgan' / 'samples.png'}", file=sys.stderr)
    model, logs = train(styled, data.num_classes, recipe, args.out, validator(data.val, recipe))
    card = model_card(args, recipe, data, logs, time.perf_counter() - started)
    card["spgan"] = {
        "method": "Deng et al. CVPR 2018: CycleGAN losses plus a Siamese contrastive loss "
        "(margin 2) keeping a translated image its source person; the embedder then trained "
        "on the translated labelled source",
        "target": f"gallery {safe_url(cfg.db_url)}: {len(target)} crops",
        "settings": asdict(settings),
        "samples": str(args.out / "spgan" / "samples.png"),
    }
    save_model(model, recipe, card, args.out / "model.pt")
    write_text(args.out / "card.json", json.dumps(card, indent=2) + "\n")
    best, _epoch = best_of(logs)
    print(
        f"SPGAN-adapted {args.arch} on {len(styled)} translated source images of "
        f"{data.num_classes} identities; best validation mAP "
        f"{'-' if best is None else format(best, '.3f')} (held-out source identities, as "
        "they look in the source)"
    )
    print(f"use it: --reid prowl:{Path(args.out) / 'model.pt'}")
    return 0
