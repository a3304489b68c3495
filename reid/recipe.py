"""The training recipe and the backbones `prowl train` knows, as plain data: the CLI reads
them to build its options without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

BACKBONES = (
    "osnet_x1_0",
    "osnet_x0_75",
    "osnet_x0_5",
    "osnet_x0_25",
    "osnet_ibn_x1_0",
    "osnet_ain_x1_0",
    "osnet_ain_x0_25",
    "mobilenetv2",
    "resnet50",
)


@dataclass(frozen=True)
class Recipe:
    arch: str = "osnet_x0_25"
    init: str = "imagenet"  # imagenet | none | a checkpoint path (torchreid or prowl)
    epochs: int = 30
    p_identities: int = 8
    k_images: int = 4
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_epochs: int = 5
    label_smoothing: float = 0.1
    triplet_margin: float = 0.3
    erasing_p: float = 0.5
    height: int = 256
    width: int = 128
    iters_per_epoch: int = 0  # 0: one pass over the images per epoch
    patience: int = 8  # epochs without a better validation mAP before stopping
    seed: int = 0
    device: str = "cpu"
    # Fine-tuning a re-ID model on a few people: keep the backbone's batch-norm statistics
    # (and their running averages) as they were, or the batches' few people overwrite them
    freeze_bn: bool = False
