"""What `prowl train`, `prowl adapt` and the GAN recipes share: argument types, the checks
made before any data is read, the initialisation resolver and the model card."""

from __future__ import annotations

import argparse
import math
import platform
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.core.config import DEVICE
from pipeline.core.errors import ProwlError
from pipeline.core.redact import redact_text


def size_arg(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not HxW (e.g. 256x128)") from None
    if h < 32 or w < 32 or h % 32 or w % 32:
        raise argparse.ArgumentTypeError(f"'{text}': both sides multiples of 32, at least 32")
    return h, w


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


def check_training_flags(args: argparse.Namespace) -> None:
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


def best_of(logs: list[Any]) -> tuple[float | None, int | None]:
    """(best validation mAP, its epoch); (None, last epoch) when there was no validation."""
    if not logs:
        return None, None
    scored = [e for e in logs if not math.isnan(e.val_mAP)]
    if not scored:
        return None, logs[-1].epoch
    best = max(scored, key=lambda e: e.val_mAP)
    return best.val_mAP, best.epoch


def resolve_init(init: str) -> str:
    if init in ("imagenet", "none") or Path(init).is_file():
        return init if init in ("imagenet", "none") else str(Path(init).resolve())
    from pipeline.core.asset_table import known_assets
    from pipeline.core.assets import resolve

    if f"{init}.pth" in known_assets():
        return str(resolve(f"{init}.pth"))
    raise ProwlError(
        f"--init '{init}' is not imagenet, none, a file, or a named checkpoint "
        "(e.g. osnet_x0_25_msmt17)"
    )


def model_card(
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


def card_markdown(card: dict[str, Any]) -> str:
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


def recipe_from_args(args: argparse.Namespace, **overrides: Any) -> Any:
    """The training recipe the train/adapt flags describe (``--init`` resolved); flags a
    command lacks (adapt has no ``--patience``) keep the recipe's defaults."""
    from reid.recipe import Recipe

    given = {
        "arch": args.arch,
        "init": resolve_init(args.init),
        "epochs": args.epochs,
        "p_identities": args.p_identities,
        "k_images": args.k_images,
        "lr": args.lr,
        "warmup_epochs": args.warmup_epochs,
        "height": args.size[0],
        "width": args.size[1],
        "iters_per_epoch": args.iters_per_epoch,
        "seed": args.seed,
        "device": args.device,
        "freeze_bn": args.freeze_bn,
    }
    if hasattr(args, "patience"):
        given["patience"] = args.patience
    return Recipe(**{**given, **overrides})
