"""Small generative networks for re-ID training data, sized to train on a CPU at reduced
resolution (128×64 by default) and on a GPU unchanged.

- ``Translator``: one image-to-image generator for every target domain (the target chosen
  by conditional instance normalisation). Trained with cycle consistency
  against a ``PatchCritic`` it is a CycleGAN whose generators share weights: camera-style
  transfer (Zhong et al., CVPR 2018) with a domain per camera, SPGAN (Deng et al., CVPR 2018)
  with a source and a target domain.
- ``PatchCritic``: a PatchGAN with one real/fake map per domain ("a real image of domain d").
- ``DCGenerator`` / ``DCCritic``: a DCGAN of person crops, whose samples LSRO (Zheng et al.,
  ICCV 2017) trains with a uniform label distribution.
- ``SiameseNet``: SPGAN's identity-preserving embedding (contrastive loss).

Images cross the boundary as H×W×3 uint8 BGR, like every crop in prowl."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn


def to_tensor(images: Sequence[NDArray[np.uint8]], height: int, width: int) -> torch.Tensor:
    """BGR uint8 crops -> (N, 3, height, width) RGB in [-1, 1]."""
    x = np.stack([cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA) for im in images])
    t = torch.from_numpy(np.ascontiguousarray(x[..., ::-1].transpose(0, 3, 1, 2)))
    return t.float() / 127.5 - 1.0


def to_images(t: torch.Tensor) -> list[NDArray[np.uint8]]:
    """(N, 3, H, W) RGB in [-1, 1] -> BGR uint8 crops."""
    x = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    return [np.ascontiguousarray(im.transpose(1, 2, 0)[..., ::-1]) for im in x]


def grid(rows: Sequence[Sequence[NDArray[np.uint8]]], height: int, width: int) -> NDArray[np.uint8]:
    """Rows of crops as one picture (each crop resized to height×width, 2-px white gaps)."""
    cols = max(len(r) for r in rows)
    out = np.full(((height + 2) * len(rows), (width + 2) * cols, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            y, x = i * (height + 2), j * (width + 2)
            out[y : y + height, x : x + width] = cv2.resize(im, (width, height))
    return out


class CondNorm(nn.Module):
    """Conditional instance normalisation (Dumoulin et al., ICLR 2017): instance norm, then a
    scale and shift of the target domain's own. The domain lives in the normalisation
    because a code concatenated to the input as constant planes is a constant per channel
    after a convolution, which the next instance norm subtracts: the generator never sees it."""

    def __init__(self, ch: int, domains: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(ch, affine=False)
        self.scale = nn.Embedding(domains, ch)
        self.shift = nn.Embedding(domains, ch)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        return (
            self.norm(x) * self.scale(domain)[:, :, None, None]
            + self.shift(domain)[:, :, None, None]
        )


class _ConvNorm(nn.Module):
    """convolution (or transposed) -> conditional norm -> ReLU."""

    def __init__(self, conv: nn.Module, ch: int, domains: int) -> None:
        super().__init__()
        self.conv, self.norm = conv, CondNorm(ch, domains)

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x), domain))


class ResBlock(nn.Module):
    def __init__(self, ch: int, domains: int) -> None:
        super().__init__()
        self.a = _ConvNorm(nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3)), ch, domains)
        self.conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3))
        self.norm = CondNorm(ch, domains)

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        return x + self.norm(self.conv(self.a(x, domain)), domain)


class Translator(nn.Module):
    """CycleGAN's ResNet generator (7×7 conv, two stride-2 convolutions, residual blocks, two
    transposed convolutions, 7×7 conv, tanh), every normalisation conditioned on the target
    domain: one network for every camera pair."""

    def __init__(self, domains: int, width: int = 32, blocks: int = 4) -> None:
        super().__init__()
        self.domains = domains
        w = width
        self.stages = nn.ModuleList(
            [
                _ConvNorm(nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, w, 7)), w, domains),
                _ConvNorm(nn.Conv2d(w, 2 * w, 4, 2, 1), 2 * w, domains),
                _ConvNorm(nn.Conv2d(2 * w, 4 * w, 4, 2, 1), 4 * w, domains),
                *[ResBlock(4 * w, domains) for _ in range(blocks)],
                _ConvNorm(nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), 2 * w, domains),
                _ConvNorm(nn.ConvTranspose2d(2 * w, w, 4, 2, 1), w, domains),
            ]
        )
        self.out = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(w, 3, 7), nn.Tanh())

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x, target)
        return self.out(x)


class PatchCritic(nn.Module):
    """PatchGAN: a grid of real/fake scores per image, one map per domain."""

    def __init__(self, domains: int, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            nn.InstanceNorm2d(2 * w, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1),
            nn.InstanceNorm2d(4 * w, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * w, 8 * w, 4, 1, 1),
            nn.InstanceNorm2d(8 * w, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(8 * w, domains, 4, 1, 1),
        )

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        maps = self.net(x)
        return maps[torch.arange(len(x), device=x.device), domain]


class DCGenerator(nn.Module):
    """Noise (z_dim) -> a crop of height×width (both divisible by 16) in [-1, 1]."""

    def __init__(self, height: int, width: int, z_dim: int = 100, base: int = 64) -> None:
        super().__init__()
        self.z_dim, self.h0, self.w0, self.base = z_dim, height // 16, width // 16, base
        self.fc = nn.Sequential(
            nn.Linear(z_dim, 8 * base * self.h0 * self.w0, bias=False),
            nn.BatchNorm1d(8 * base * self.h0 * self.w0),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for m in (8, 4, 2):
            layers += [
                nn.ConvTranspose2d(base * m, base * m // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(base * m // 2),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(base, 3, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(len(z), 8 * self.base, self.h0, self.w0)
        return self.net(x)


class DCCritic(nn.Module):
    """A crop of height×width -> one real/fake logit."""

    def __init__(self, height: int, width: int, base: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, base, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for m in (1, 2, 4):
            layers += [
                nn.Conv2d(base * m, base * m * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(base * m * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out = nn.Linear(8 * base * (height // 16) * (width // 16), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(x)).squeeze(1)


class SiameseNet(nn.Module):
    """SPGAN's SiaNet: four convolution + pooling stages and a 128-d embedding."""

    def __init__(self, base: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = 3
        for m in (1, 2, 4, 8):
            layers += [
                nn.Conv2d(ch, base * m, 3, 1, 1),
                nn.BatchNorm2d(base * m),
                nn.LeakyReLU(0.2, inplace=True),
                nn.MaxPool2d(2),
            ]
            ch = base * m
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(ch, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net(x))


def contrastive(a: torch.Tensor, b: torch.Tensor, same: bool, margin: float) -> torch.Tensor:
    """Hadsell et al. (2006), as SPGAN uses it: d² for pairs of one person, max(0, m - d)² for
    pairs of two."""
    d = torch.linalg.vector_norm(a - b, dim=1)
    return (d.pow(2) if same else torch.relu(margin - d).pow(2)).mean()
