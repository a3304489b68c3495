"""OSNet (Zhou, Yang, Cavallaro, Xiang: "Omni-Scale Feature Learning for Person
Re-Identification", ICCV 2019), written here with the parameter names of torchreid's
``torchreid/models/osnet.py`` so that its model-zoo checkpoints load unchanged.

Omni-scale residual blocks: four streams of 1-4 stacked "lite" 3×3 convolutions (pointwise
then depthwise), fused by one shared channel gate; 512-d ``fc`` after global pooling is the
embedding. Widths x1.0 / x0.75 / x0.5 / x0.25; ``ibn`` adds instance normalisation to the
first layers (``osnet_ibn_x1_0``).

OSNet-AIN (Zhou et al., "Learning Generalisable Omni-Scale Representations for Person
Re-Identification", TPAMI 2021; torchreid's ``osnet_ain.py``, whose parameter names differ:
streams in a ``ModuleList``, pooling in ``pool2``/``pool3``): instance normalisation in the
first convolution and inside the residual branch of the blocks its architecture search chose,
for better cross-domain results (``osnet_ain_x1_0`` and the narrower widths).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.core.errors import AssetError

WIDTHS = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
    "osnet_ibn_x1_0": (64, 256, 384, 512),
}
AIN_WIDTHS = {
    "osnet_ain_x1_0": (64, 256, 384, 512),
    "osnet_ain_x0_75": (48, 192, 288, 384),
    "osnet_ain_x0_5": (32, 128, 192, 256),
    "osnet_ain_x0_25": (16, 64, 96, 128),
}
# Which blocks of stages conv2, conv3, conv4 carry instance normalisation (torchreid's choice)
AIN_BLOCKS = ((True, True), (False, True), (True, False))
ARCHS = (*WIDTHS, *AIN_WIDTHS)


class ConvLayer(nn.Module):
    """Convolution + batch (or instance) norm + ReLU."""

    def __init__(
        self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0, IN: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False)
        self.bn: nn.Module = nn.InstanceNorm2d(c_out, affine=True) if IN else nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Conv1x1(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, stride=stride, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Conv1x1Linear(nn.Module):
    """1×1 convolution + batch norm, no activation."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, stride=stride, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class LightConv3x3(nn.Module):
    """Pointwise 1×1, then depthwise 3×3, batch norm, ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False, groups=c_out)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """Unified aggregation gate: a per-channel sigmoid weight from globally pooled input."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=True, padding=0)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=True, padding=0)
        self.gate_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.gate_activation(self.fc2(self.relu(self.fc1(self.global_avgpool(x)))))
        return x * w


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck."""

    def __init__(self, c_in: int, c_out: int, IN: bool = False, reduction: int = 4) -> None:
        super().__init__()
        mid = c_out // reduction
        self.conv1 = Conv1x1(c_in, mid)
        self.conv2a = LightConv3x3(mid, mid)
        self.conv2b = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(2)))
        self.conv2c = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(3)))
        self.conv2d = nn.Sequential(*(LightConv3x3(mid, mid) for _ in range(4)))
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1Linear(mid, c_out)
        self.downsample = Conv1x1Linear(c_in, c_out) if c_in != c_out else None
        self.IN = nn.InstanceNorm2d(c_out, affine=True) if IN else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = (
            self.gate(self.conv2a(x1))
            + self.gate(self.conv2b(x1))
            + self.gate(self.conv2c(x1))
            + self.gate(self.conv2d(x1))
        )
        identity = self.downsample(x) if self.downsample is not None else x
        out = self.conv3(x2) + identity
        if self.IN is not None:
            out = self.IN(out)
        return self.relu(out)


class Conv1x1Plain(nn.Module):
    """1×1 convolution, with batch norm unless ``bn`` is False (AIN's normalised blocks put
    instance norm after it instead)."""

    def __init__(self, c_in: int, c_out: int, bn: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bn(x) if self.bn is not None else x


class LightConvStream(nn.Module):
    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(LightConv3x3(channels, channels) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OSBlockAIN(nn.Module):
    """The AIN file's omni-scale block; with ``IN`` the residual branch ends in instance norm
    (no batch norm), before the identity is added."""

    def __init__(self, c_in: int, c_out: int, IN: bool, reduction: int = 4) -> None:
        super().__init__()
        mid = c_out // reduction
        self.conv1 = Conv1x1(c_in, mid)
        self.conv2 = nn.ModuleList(LightConvStream(mid, t) for t in range(1, 5))
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1Plain(mid, c_out, bn=not IN)
        self.downsample = Conv1x1Plain(c_in, c_out) if c_in != c_out else None
        self.IN = nn.InstanceNorm2d(c_out, affine=True) if IN else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = sum(self.gate(stream(x1)) for stream in self.conv2)
        x3 = self.conv3(x2)
        if self.IN is not None:
            x3 = self.IN(x3)
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(x3 + identity)


class OSNet(nn.Module):
    """Eval mode returns the ``feature_dim`` embedding (``fc``'s output); train mode returns
    (logits, embedding) when a classifier is present."""

    def __init__(
        self,
        channels: tuple[int, int, int, int],
        num_classes: int = 0,
        feature_dim: int = 512,
        ibn: bool = False,
    ) -> None:
        super().__init__()
        c = channels
        self.conv1 = ConvLayer(3, c[0], 7, stride=2, padding=3, IN=ibn)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = self._stage(c[0], c[1], reduce=True, IN=ibn)
        self.conv3 = self._stage(c[1], c[2], reduce=True)
        self.conv4 = self._stage(c[2], c[3], reduce=False)
        self.conv5 = Conv1x1(c[3], c[3])
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(c[3], feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True)
        )
        self.feature_dim = feature_dim
        self.classifier = nn.Linear(feature_dim, num_classes) if num_classes else None

    @staticmethod
    def _stage(c_in: int, c_out: int, reduce: bool, IN: bool = False) -> nn.Sequential:
        layers: list[nn.Module] = [OSBlock(c_in, c_out, IN=IN), OSBlock(c_out, c_out, IN=IN)]
        if reduce:
            layers.append(nn.Sequential(Conv1x1(c_out, c_out), nn.AvgPool2d(2, stride=2)))
        return nn.Sequential(*layers)

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))

    def forward(self, x: torch.Tensor) -> Any:
        v = self.fc(self.global_avgpool(self.featuremaps(x)).flatten(1))
        if not self.training or self.classifier is None:
            return v
        return self.classifier(v), v


class OSNetAIN(OSNet):
    """OSNet-AIN with torchreid's ``osnet_ain.py`` parameter names."""

    def __init__(
        self, channels: tuple[int, int, int, int], num_classes: int = 0, feature_dim: int = 512
    ) -> None:
        super().__init__(channels, num_classes, feature_dim)
        c = channels
        self.conv1 = ConvLayer(3, c[0], 7, stride=2, padding=3, IN=True)
        stages = []
        for (first, second), (c_in, c_out) in zip(
            AIN_BLOCKS, ((c[0], c[1]), (c[1], c[2]), (c[2], c[3])), strict=True
        ):
            stages.append(
                nn.Sequential(OSBlockAIN(c_in, c_out, first), OSBlockAIN(c_out, c_out, second))
            )
        self.conv2, self.conv3, self.conv4 = stages
        self.pool2 = nn.Sequential(Conv1x1(c[1], c[1]), nn.AvgPool2d(2, stride=2))
        self.pool3 = nn.Sequential(Conv1x1(c[2], c[2]), nn.AvgPool2d(2, stride=2))

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.pool3(self.conv3(x))
        return self.conv5(self.conv4(x))


def build_osnet(arch: str, num_classes: int = 0) -> OSNet:
    if arch in AIN_WIDTHS:
        return OSNetAIN(AIN_WIDTHS[arch], num_classes=num_classes)
    if arch not in WIDTHS:
        raise AssetError(f"unknown OSNet architecture '{arch}'; known: {', '.join(ARCHS)}")
    return OSNet(WIDTHS[arch], num_classes=num_classes, ibn="ibn" in arch)


def read_checkpoint(path: Path) -> OrderedDict[str, torch.Tensor]:
    """A state dict from any form torchreid writes: an old (pre-1.6) pickle or a zip archive,
    bare or wrapped in ``{"state_dict": ...}``, with or without DataParallel's ``module.``."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"re-ID checkpoint {path} does not exist; pass --reid-weights FILE")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any unpickling failure: torch raises many kinds for a foreign file
        try:  # torchreid's old checkpoints hold numpy scalars beside the weights
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise AssetError(
                f"{path} is not a PyTorch checkpoint ({str(exc).splitlines()[0][:120]}); "
                "pass a torchreid .pth file"
            ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise AssetError(f"{path} holds no state dict of tensors; pass a torchreid checkpoint")
    return OrderedDict((k.removeprefix("module."), v) for k, v in obj.items())


def load_osnet(arch: str, path: Path) -> OSNet:
    """``arch`` with the weights of ``path``; the classifier is dropped. A checkpoint of another
    architecture is an AssetError listing a few missing and unexpected keys."""
    state = read_checkpoint(path)
    state = OrderedDict((k, v) for k, v in state.items() if not k.startswith("classifier."))
    model = build_osnet(arch)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} of another shape (e.g. {wrong[0]})")
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:2])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:2])})")
        raise AssetError(
            f"{Path(path).name} is not a {arch} checkpoint: keys {'; '.join(parts)}; "
            "pick the architecture it was trained as"
        )
    model.load_state_dict(state, strict=True)
    return model.eval()
