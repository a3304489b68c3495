"""Training the generative networks of ``reid.gan`` and drawing images from them.

- ``train_translator``: unpaired image-to-image translation between domains (cameras for
  CamStyle, source/target footage for SPGAN): least-squares adversarial loss, cycle
  consistency (weight 10) and identity mapping (weight 5), as CycleGAN; with ``siamese`` the
  SPGAN identity-preserving contrastive loss is added (a translated image stays its source's
  person, and is not the other domain's person).
- ``train_dcgan``: a DCGAN of person crops (LSRO's generator).

Both save ``state.pt`` every ``save_every`` iterations and at the end, so a stopped run
resumes where it was; a finished one is loaded, not retrained. Both write ``samples.png``,
a grid a person can look at to judge the images before they are trained on."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from pipeline.core.errors import ProwlError
from reid.gan import (
    DCCritic,
    DCGenerator,
    PatchCritic,
    SiameseNet,
    Translator,
    contrastive,
    grid,
    to_images,
    to_tensor,
)

log = logging.getLogger(__name__)

Image = NDArray[np.uint8]
Progress = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class GanSettings:
    height: int = 64
    width: int = 32
    iters: int = 2000
    batch: int = 8  # images per domain and iteration (translator) or per iteration (DCGAN)
    channels: int = 32  # the translator's first layer (doubling twice) and its critic's
    blocks: int = 4  # the translator's residual blocks
    lr: float = 2e-4
    cycle: float = 10.0
    identity: float = 5.0
    siamese: float = 2.0
    margin: float = 2.0
    seed: int = 0
    device: str = "cpu"
    save_every: int = 200


def _load_all(loaders: Sequence[Callable[[], Image]], s: GanSettings) -> torch.Tensor:
    """Every image of a domain at the GAN's size, once (uint8 CHW; small at 128×64)."""
    out = torch.empty((len(loaders), 3, s.height, s.width), dtype=torch.uint8)
    for i, load in enumerate(loaders):
        out[i] = ((to_tensor([load()], s.height, s.width)[0] + 1) * 127.5).round().byte()
    return out


def _batch(images: torch.Tensor, n: int, rng: np.random.Generator, device: Any) -> torch.Tensor:
    idx = rng.choice(len(images), size=n, replace=len(images) < n)
    return images[torch.as_tensor(idx)].to(device).float() / 127.5 - 1.0


def _save(obj: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _resume(
    path: Path, settings: GanSettings, parts: dict[str, Any]
) -> tuple[int, np.random.Generator]:
    """Load a saved run into ``parts`` (modules and optimisers): (next iteration, rng)."""
    rng = np.random.default_rng(settings.seed)
    if not path.is_file():
        return 0, rng
    state = torch.load(path, map_location=settings.device, weights_only=False)
    if (
        state.get("settings", {}).get("height") != settings.height
        or state.get("settings", {}).get("width") != settings.width
    ):
        raise ProwlError(
            f"{path} was trained at another size; use the same --gan-size or a new folder"
        )
    try:
        for name, part in parts.items():
            part.load_state_dict(state[name])
    except (KeyError, RuntimeError, ValueError):
        raise ProwlError(f"{path} belongs to another kind of run; use a new folder") from None
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    log.info("resuming %s at iteration %d", path.parent, state["iteration"])
    return int(state["iteration"]), rng


def _checkpoint(
    path: Path, settings: GanSettings, parts: dict[str, Any], it: int, rng: np.random.Generator
) -> None:
    state = {name: part.state_dict() for name, part in parts.items()}
    state.update(
        iteration=it,
        rng=rng.bit_generator.state,
        torch_rng=torch.get_rng_state(),
        settings=asdict(settings),
    )
    _save(state, path)


def _adam(module: nn.Module, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=lr, betas=(0.5, 0.999))


def train_translator(
    domains: Sequence[Sequence[Callable[[], Image]]],
    settings: GanSettings,
    out_dir: Path,
    siamese: bool = False,
    progress: Progress | None = None,
) -> Translator:
    """Each iteration takes a random pair of domains (a, b), ``batch`` images of each, and
    translates a->b and b->a. Returns the generator in eval mode."""
    if len(domains) < 2 or any(len(d) == 0 for d in domains):
        raise ProwlError("translation needs images of at least two domains")
    torch.manual_seed(settings.seed)
    device = torch.device(settings.device)
    data = [_load_all(d, settings) for d in domains]
    g = Translator(len(domains), settings.channels, settings.blocks).to(device)
    d = PatchCritic(len(domains), settings.channels).to(device)
    s = SiameseNet().to(device) if siamese else None
    opt_g, opt_d = _adam(g, settings.lr), _adam(d, settings.lr)
    parts: dict[str, Any] = {"g": g, "d": d, "opt_g": opt_g, "opt_d": opt_d}
    if s is not None:
        parts.update(s=s, opt_s=_adam(s, settings.lr))
    path = out_dir / "state.pt"
    start, rng = _resume(path, settings, parts)
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    n = settings.batch
    for it in range(start, settings.iters):
        a, b = (int(v) for v in rng.choice(len(domains), size=2, replace=False))
        x = torch.cat([_batch(data[a], n, rng, device), _batch(data[b], n, rng, device)])
        src = torch.as_tensor([a] * n + [b] * n, device=device)
        dst = torch.as_tensor([b] * n + [a] * n, device=device)
        fake = g(x, dst)
        # generator: fool the critic of the target domain, come back, leave own domain alone
        pred = d(fake, dst)
        loss_adv = mse(pred, torch.ones_like(pred))
        loss_cyc = l1(g(fake, src), x)
        loss_idt = l1(g(x, src), x)
        loss_g = loss_adv + settings.cycle * loss_cyc + settings.identity * loss_idt
        loss_sia = torch.zeros(())
        if s is not None:  # SPGAN: a translated image is its source's person
            s.eval()
            loss_sia = contrastive(s(x), s(fake), True, settings.margin)
            loss_g = loss_g + settings.siamese * loss_sia
            s.train()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # critic: real images of their own domain are real, translated ones are not
        fake = fake.detach()
        real_pred, fake_pred = d(x, src), d(fake, dst)
        loss_d = 0.5 * (
            mse(real_pred, torch.ones_like(real_pred)) + mse(fake_pred, torch.zeros_like(fake_pred))
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        if s is not None:  # positives: (x, G(x)); negatives: (G(x_a), x_b), the other domain
            other = torch.cat([x[n:], x[:n]])
            loss_s = contrastive(s(x), s(fake), True, settings.margin) + contrastive(
                s(fake), s(other), False, settings.margin
            )
            parts["opt_s"].zero_grad(set_to_none=True)
            loss_s.backward()
            parts["opt_s"].step()
        if progress is not None:
            progress(
                it,
                {
                    "adv": loss_adv.item(),
                    "cycle": loss_cyc.item(),
                    "critic": loss_d.item(),
                    "siamese": float(loss_sia.item()),
                },
            )
        if (it + 1) % settings.save_every == 0:
            _checkpoint(path, settings, parts, it + 1, rng)
    if start < settings.iters:  # a finished run is loaded as it was, not saved again
        _checkpoint(path, settings, parts, settings.iters, rng)
    g.eval()
    _translation_grid(g, data, settings, out_dir / "samples.png")
    return g


def _translation_grid(
    g: Translator, data: Sequence[torch.Tensor], settings: GanSettings, path: Path
) -> None:
    """Per domain, 6 of its images (first row) and, in each further row, them translated to
    every domain in order."""
    rows: list[list[Image]] = []
    device = next(g.parameters()).device
    for src, images in enumerate(data):
        x = images[: min(6, len(images))].to(device).float() / 127.5 - 1.0
        rows.append(to_images(x))
        with torch.inference_mode():
            for dst in range(len(data)):
                if dst != src:
                    rows.append(to_images(g(x, torch.full((len(x),), dst, device=device))))
    cv2.imwrite(str(path), grid(rows, settings.height, settings.width))


def translate(
    g: Translator,
    images: Sequence[Image],
    target: int,
    settings: GanSettings,
    batch: int = 32,
) -> list[Image]:
    """``images`` in domain ``target``'s style, each at its own size: the generator works at
    its reduced size, and its change (translated minus input, upsampled) is added to the
    full-resolution image. Camera style lives in the low frequencies (colour, light,
    contrast), so the detail of the original survives a CPU-sized generator."""
    device = next(g.parameters()).device
    out: list[Image] = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            x = to_tensor(chunk, settings.height, settings.width).to(device)
            delta = g(x, torch.full((len(x),), target, device=device)) - x
            for im, d in zip(chunk, delta.cpu().numpy(), strict=True):
                h, w = im.shape[:2]
                up = cv2.resize(
                    d.transpose(1, 2, 0)[..., ::-1], (w, h), interpolation=cv2.INTER_LINEAR
                )
                out.append(
                    np.clip(im.astype(np.float32) + up * 127.5, 0, 255).round().astype(np.uint8)
                )
    return out


def train_dcgan(
    images: Sequence[Callable[[], Image]],
    settings: GanSettings,
    out_dir: Path,
    progress: Progress | None = None,
) -> DCGenerator:
    """A DCGAN (Radford et al. 2016) of the crops, non-saturating loss. Returns the
    generator in eval mode."""
    if settings.height % 16 or settings.width % 16:
        raise ProwlError("the DCGAN's size must be a multiple of 16 on both sides")
    if len(images) < 2:
        raise ProwlError("a GAN of person crops needs at least 2 images")
    torch.manual_seed(settings.seed)
    device = torch.device(settings.device)
    data = _load_all(images, settings)
    g = DCGenerator(settings.height, settings.width).to(device)
    d = DCCritic(settings.height, settings.width).to(device)
    opt_g, opt_d = _adam(g, settings.lr), _adam(d, settings.lr)
    parts: dict[str, Any] = {"g": g, "d": d, "opt_g": opt_g, "opt_d": opt_d}
    path = out_dir / "state.pt"
    start, rng = _resume(path, settings, parts)
    bce = nn.BCEWithLogitsLoss()
    n = max(2, settings.batch)
    for it in range(start, settings.iters):
        real = _batch(data, n, rng, device)
        if rng.random() < 0.5:  # flips: people are left-right symmetric, the GAN needn't learn it
            real = real.flip(3)
        z = torch.randn(n, g.z_dim, device=device)
        fake = g(z)
        real_logit, fake_logit = d(real), d(fake.detach())
        loss_d = bce(real_logit, torch.full_like(real_logit, 0.9)) + bce(
            fake_logit, torch.zeros_like(fake_logit)
        )  # one-sided label smoothing (Salimans et al. 2016)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        gen_logit = d(fake)
        loss_g = bce(gen_logit, torch.ones_like(gen_logit))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if progress is not None:
            progress(it, {"generator": loss_g.item(), "critic": loss_d.item()})
        if (it + 1) % settings.save_every == 0:
            _checkpoint(path, settings, parts, it + 1, rng)
    if start < settings.iters:  # a finished run is loaded as it was, not saved again
        _checkpoint(path, settings, parts, settings.iters, rng)
    g.eval()
    sample = generate(g, 24, settings.seed)
    real_row = to_images(data[:8].float() / 127.5 - 1.0)
    rows = [real_row, sample[:8], sample[8:16], sample[16:24]]
    cv2.imwrite(str(out_dir / "samples.png"), grid(rows, settings.height, settings.width))
    return g


def generate(g: DCGenerator, n: int, seed: int, batch: int = 64) -> list[Image]:
    """``n`` crops from the generator, reproducibly for a seed."""
    device = next(g.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    out: list[Image] = []
    with torch.inference_mode():
        for start in range(0, n, batch):
            z = torch.randn(min(batch, n - start), g.z_dim, generator=gen).to(device)
            out.extend(to_images(g(z)))
    return out
