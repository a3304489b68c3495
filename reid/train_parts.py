"""The pieces of one training step: a sample, a PK batch of them (with GAN images mixed in),
its augmentation, and the two losses (identity with per-image label smoothing, batch-hard
triplet)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from reid.preprocess import IMAGENET_MEAN, IMAGENET_STD
from reid.recipe import Recipe

log = logging.getLogger(__name__)
_MEAN = np.asarray(IMAGENET_MEAN, np.float32)
_STD = np.asarray(IMAGENET_STD, np.float32)


@dataclass(frozen=True)
class TrainSample:
    """One training image: ``load()`` gives it as H×W×3 uint8 BGR."""

    load: Callable[[], NDArray[np.uint8]]
    pid: int  # 0..num_classes-1
    camid: int


@dataclass(frozen=True)
class GeneratedData:
    """GAN-made images mixed into training, and how the identity loss treats them.

    - ``styled`` (CamStyle, Zhong et al. 2018): per training sample, its copies in the other
      cameras' styles; each batch image is swapped for one of them with chance ``style_p``
      and then learned with label smoothing ``style_smoothing`` (LSR: less sure than a real
      image), keeping its identity for the triplet loss too.
    - ``unlabelled`` (LSRO, Zheng et al. 2017): GAN samples of nobody; ``per_batch`` of them
      join each batch with a uniform label distribution and no triplet term."""

    styled: Sequence[Sequence[Callable[[], NDArray[np.uint8]]]] = ()
    style_p: float = 0.25
    style_smoothing: float = 0.2
    unlabelled: Sequence[Callable[[], NDArray[np.uint8]]] = ()
    per_batch: int = 0


def soft_cross_entropy(logits: torch.Tensor, y: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against (1 - eps) one-hot + eps uniform, per sample: eps = the recipe's
    smoothing gives ``nn.CrossEntropyLoss(label_smoothing=eps)``, eps = 1 LSRO's uniform."""
    logp = torch.log_softmax(logits, dim=1)
    nll = -logp.gather(1, y[:, None]).squeeze(1)
    return ((1 - eps) * nll + eps * -logp.mean(dim=1)).mean()


def mixed_batch(
    batch: list[int],
    samples: Sequence[TrainSample],
    extra: GeneratedData,
    recipe: Recipe,
    rng: np.random.Generator,
) -> tuple[list[NDArray[np.uint8]], list[int], list[float]]:
    """(images, labels with -1 for nobody, label smoothing per image) of one PK batch."""
    images, labels, eps = [], [], []
    for i in batch:
        copies = extra.styled[i] if extra.styled else ()
        if copies and rng.random() < extra.style_p:
            images.append(copies[int(rng.integers(len(copies)))]())
            eps.append(extra.style_smoothing)
        else:
            images.append(samples[i].load())
            eps.append(recipe.label_smoothing)
        labels.append(samples[i].pid)
    if extra.unlabelled and extra.per_batch:
        for j in rng.choice(len(extra.unlabelled), size=extra.per_batch):
            images.append(extra.unlabelled[int(j)]())
            labels.append(-1)
            eps.append(1.0)
    return images, labels, eps


def batch_hard_triplet(feats: torch.Tensor, pids: torch.Tensor, margin: float) -> torch.Tensor:
    """Hermans et al. (2017): for each anchor, its farthest positive and nearest negative in
    the batch (Euclidean distance), hinge at ``margin``, averaged."""
    dist = torch.cdist(feats, feats).clamp_min(1e-12)
    same = pids[:, None] == pids[None, :]
    hardest_pos = (dist * same).max(dim=1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(dim=1).values
    return torch.relu(hardest_pos - hardest_neg + margin).mean()


def pk_batches(
    pids: Sequence[int], p: int, k: int, batches: int, rng: np.random.Generator
) -> Iterator[list[int]]:
    """``batches`` lists of sample indices: P identities with K images each (drawn with
    replacement when an identity has fewer than K)."""
    by_pid: dict[int, list[int]] = {}
    for i, pid in enumerate(pids):
        by_pid.setdefault(pid, []).append(i)
    ids = np.asarray(sorted(by_pid))
    for _ in range(batches):
        chosen = rng.choice(ids, size=min(p, len(ids)), replace=False)
        batch: list[int] = []
        for pid in chosen:
            members = by_pid[int(pid)]
            batch.extend(rng.choice(members, size=k, replace=len(members) < k).tolist())
        yield batch


def augment(
    img: NDArray[np.uint8], recipe: Recipe, rng: np.random.Generator
) -> NDArray[np.float32]:
    """Resize, random flip, 10-px pad + random crop, random erasing; CHW float, normalised."""
    h, w = recipe.height, recipe.width
    x = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        x = x[:, ::-1]
    x = cv2.copyMakeBorder(np.ascontiguousarray(x), 10, 10, 10, 10, cv2.BORDER_CONSTANT, value=0)
    top, left = int(rng.integers(0, 21)), int(rng.integers(0, 21))
    x = x[top : top + h, left : left + w]
    out = (x[..., ::-1].astype(np.float32) - _MEAN) / _STD
    if rng.random() < recipe.erasing_p:  # Zhong et al. 2020: a random rectangle of noise
        for _ in range(10):
            area = h * w * rng.uniform(0.02, 0.4)
            ratio = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
            eh, ew = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if eh < h and ew < w:
                y0, x0 = int(rng.integers(0, h - eh)), int(rng.integers(0, w - ew))
                out[y0 : y0 + eh, x0 : x0 + ew] = rng.normal(size=(eh, ew, 3))
                break
    return np.ascontiguousarray(out.transpose(2, 0, 1))
