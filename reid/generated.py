"""The three GAN recipes of the re-ID literature, as training data for ``reid.training``:
CamStyle (each image in every other camera's style), LSRO (GAN samples of nobody) and SPGAN
(labelled source images in the target footage's style). They know images, identities and
cameras, never files or galleries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.core.errors import ProwlError
from reid.gan import Translator
from reid.gan_training import (
    GanSettings,
    Progress,
    generate,
    train_dcgan,
    train_translator,
    translate,
)
from reid.train_parts import GeneratedData, TrainSample

Loader = Callable[[], NDArray[np.uint8]]


def _encoded(image: NDArray[np.uint8]) -> Loader:
    """An image kept as JPEG bytes (a tenth of the memory), decoded when a batch wants it."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise ProwlError("could not encode a generated image")
    data = buf.tobytes()
    return lambda: np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


def _translated(
    g: Translator, loaders: Sequence[Loader], target: int, settings: GanSettings, chunk: int = 256
) -> list[Loader]:
    out: list[Loader] = []
    for start in range(0, len(loaders), chunk):
        images = [load() for load in loaders[start : start + chunk]]
        out.extend(_encoded(im) for im in translate(g, images, target, settings))
    return out


def cameras_of(samples: Sequence[TrainSample]) -> list[int]:
    return sorted({s.camid for s in samples})


def camstyle_data(
    samples: Sequence[TrainSample],
    settings: GanSettings,
    out_dir: Path,
    progress: Progress | None = None,
) -> GeneratedData:
    """Train one translator over the training cameras (CycleGAN losses, a domain per camera),
    then give every training image a copy in each other camera's style."""
    cams = cameras_of(samples)
    if len(cams) < 2:
        raise ProwlError(
            f"--camstyle: the training set has {len(cams)} camera; camera-style transfer "
            "needs images of at least two cameras"
        )
    domain = {c: i for i, c in enumerate(cams)}
    members = [[i for i, s in enumerate(samples) if s.camid == c] for c in cams]
    g = train_translator(
        [[samples[i].load for i in m] for m in members], settings, out_dir, progress=progress
    )
    styled: list[list[Loader]] = [[] for _ in samples]
    for target in range(len(cams)):
        others = [i for i, s in enumerate(samples) if domain[s.camid] != target]
        for i, copy in zip(
            others, _translated(g, [samples[i].load for i in others], target, settings), strict=True
        ):
            styled[i].append(copy)
    return GeneratedData(styled=styled)


def lsro_data(
    samples: Sequence[TrainSample],
    count: int,
    batch_size: int,
    settings: GanSettings,
    out_dir: Path,
    progress: Progress | None = None,
) -> GeneratedData:
    """A DCGAN of the training crops and ``count`` samples of it. Each batch takes generated
    images in proportion to their share of all images (as drawing from the union would),
    at most half the batch."""
    if count < 1:
        raise ProwlError("--lsro N: N generated images must be at least 1")
    g = train_dcgan([s.load for s in samples], settings, out_dir, progress)
    images = [_encoded(im) for im in generate(g, count, settings.seed)]
    share = count / (count + len(samples))
    per_batch = max(1, min(batch_size // 2, round(batch_size * share / (1 - share))))
    return GeneratedData(unlabelled=images, per_batch=per_batch)


def spgan_samples(
    source: Sequence[TrainSample],
    target: Sequence[Loader],
    settings: GanSettings,
    out_dir: Path,
    progress: Progress | None = None,
) -> list[TrainSample]:
    """Train SPGAN (source = domain 0, target = domain 1, with the Siamese identity loss) and
    return the source samples, labels kept, in the target's style."""
    if len(target) < 2 or len(source) < 2:
        raise ProwlError("SPGAN needs images of both the source and the target footage")
    g = train_translator(
        [[s.load for s in source], list(target)],
        settings,
        out_dir,
        siamese=True,
        progress=progress,
    )
    styled = _translated(g, [s.load for s in source], 1, settings)
    return [replace(s, load=load) for s, load in zip(source, styled, strict=True)]


def gan_settings(
    size: tuple[int, int], iters: int, batch: int, seed: int, device: str
) -> GanSettings:
    if iters < 1 or batch < 1:
        raise ProwlError("--gan-iters and --gan-batch must be at least 1")
    return GanSettings(
        height=size[0],
        width=size[1],
        iters=iters,
        batch=batch,
        seed=seed,
        device=device,
        save_every=max(1, min(200, iters)),
    )
