"""Re-identification embedders: crops in, L2-normalised float32 vectors out.
``build_embedder(cfg)`` picks one by name; heavy imports stay inside each branch."""

from __future__ import annotations

from pipeline.core.config import ReidConfig
from pipeline.core.vectors import l2_normalise
from pipeline.core.zoo import OSNET_ZOO, names
from reid.base import FLIP_SUFFIX, Embedder, FlipAveraged, validate_crops

__all__ = ["EMBEDDER_NAMES", "Embedder", "build_embedder", "l2_normalise", "validate_crops"]

EMBEDDER_NAMES = names("embedder")


def build_embedder(cfg: ReidConfig) -> Embedder:
    """The embedder ``cfg.name`` names; ``NAME+flip`` is NAME with flip averaging."""
    if cfg.name.endswith(FLIP_SUFFIX):
        from dataclasses import replace

        return FlipAveraged(build_embedder(replace(cfg, name=cfg.name.removesuffix(FLIP_SUFFIX))))
    match cfg.name:
        case "mobilenetv2-imagenet":
            from reid.backbones import mobilenetv2_imagenet

            return mobilenetv2_imagenet(cfg)
        case "efficientnet-lite0-imagenet":
            from reid.backbones import efficientnet_lite0_imagenet

            return efficientnet_lite0_imagenet(cfg)
        case "resnet50-imagenet":
            from reid.backbones import resnet50_imagenet

            return resnet50_imagenet(cfg)
        case "hsv":
            from reid.hsv import HSVHistogramEmbedder

            return HSVHistogramEmbedder()
        case _ if cfg.name.endswith("_msmt17") and cfg.name.removesuffix("_msmt17") in OSNET_ZOO:
            from dataclasses import replace

            from pipeline.core.assets import resolve
            from reid.backbones import osnet_checkpoint

            arch = cfg.name.removesuffix("_msmt17")
            named = osnet_checkpoint(arch, replace(cfg, weights=str(resolve(f"{cfg.name}.pth"))))
            named.name = cfg.name
            named.weights = None  # pinned by the asset resolver: the name is the identity
            return named
        case "osnet-x0_5-prowl":
            from dataclasses import replace

            from pipeline.core.assets import resolve
            from reid.backbones import osnet_checkpoint

            weights = str(resolve("osnet-x0_5-prowl.pth"))
            converted = osnet_checkpoint("osnet_x0_5", replace(cfg, weights=weights))
            converted.name = cfg.name
            converted.weights = None  # pinned by the asset resolver: the name is the identity
            return converted
        case "osnet-x0_25-prowl":
            from pipeline.core.assets import resolve
            from reid.backbones import trained_checkpoint

            default = trained_checkpoint(str(resolve("osnet-x0_25-prowl.pt")), cfg)
            default.name = cfg.name
            default.weights = None  # pinned by the asset resolver: the name is the identity
            return default
        case _ if cfg.name.startswith("prowl:"):
            from reid.backbones import trained_checkpoint

            return trained_checkpoint(cfg.weights or cfg.name.split(":", 1)[1], cfg)
        case _ if cfg.name.startswith("torchreid:"):
            from reid.osnet import ARCHS

            arch = cfg.name.split(":", 1)[1]
            if arch in ARCHS:  # written here: no torchreid install needed
                from reid.backbones import osnet_checkpoint

                return osnet_checkpoint(arch, cfg)
            from reid.torchreid_embedder import TorchreidEmbedder

            return TorchreidEmbedder(arch, cfg)
        case _:
            raise ValueError(
                f"unknown re-ID embedder '{cfg.name}'; valid names: {', '.join(EMBEDDER_NAMES)}"
            )
