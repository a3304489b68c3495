"""The GAN recipes (CamStyle, LSRO, SPGAN): the losses against independent references, a
translator that really learns a camera's colour cast, runs that resume exactly, and the CLI
end to end at a toy size (real networks and optimisers, a few steps on the CPU)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import run_pipeline
from evaluation.reid_synthetic import write_reid_synthetic
from reid.gan_training import GanSettings, train_dcgan, train_translator, translate
from reid.train_parts import GeneratedData, TrainSample, mixed_batch, soft_cross_entropy
from reid.training import Recipe
from tests.conftest import where


def test_soft_cross_entropy_is_torchs_label_smoothing_and_lsros_uniform() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    reference = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(logits, y)
    assert float(soft_cross_entropy(logits, y, torch.full((6,), 0.1))) == pytest.approx(
        float(reference), abs=1e-6
    )
    # eps = 1 is the uniform target: with equal logits every class is as likely, loss log(K)
    flat = soft_cross_entropy(torch.zeros(3, 5), torch.tensor([0, 2, 4]), torch.ones(3))
    assert float(flat) == pytest.approx(np.log(5), abs=1e-6)
    # and the label no longer matters
    other = soft_cross_entropy(logits[:1], torch.tensor([3]), torch.ones(1))
    assert float(other) == pytest.approx(
        float(soft_cross_entropy(logits[:1], torch.tensor([0]), torch.ones(1))), abs=1e-6
    )


def _const(value: int, shape: tuple[int, int] = (40, 20)) -> TrainSample:
    img = np.full((*shape, 3), value, np.uint8)
    return TrainSample(lambda: img, value, 0)


def test_mixed_batches_swap_in_style_copies_and_add_nobodys_samples() -> None:
    samples = [_const(10), _const(20)]
    copy = np.full((40, 20, 3), 99, np.uint8)
    gan = np.full((40, 20, 3), 200, np.uint8)
    extra = GeneratedData(
        styled=[[lambda: copy], []],
        style_p=1.0,
        style_smoothing=0.3,
        unlabelled=[lambda: gan],
        per_batch=2,
    )
    rng = np.random.default_rng(0)
    images, labels, eps = mixed_batch([0, 1, 0], samples, extra, Recipe(), rng)
    values = [int(im[0, 0, 0]) for im in images]
    # sample 0 has a copy (always taken at p=1) and keeps its label; sample 1 has none
    assert values == [99, 20, 99, 200, 200]
    assert labels == [10, 20, 10, -1, -1]
    assert eps == [0.3, Recipe().label_smoothing, 0.3, 1.0, 1.0]


def _cast_crops(cast: str, n: int, seed: int) -> list[np.ndarray]:
    """Blurred random textures with a red or a blue colour cast: two 'cameras'."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        im = cv2.GaussianBlur(rng.integers(60, 200, size=(96, 48, 3)).astype(np.float32), (0, 0), 3)
        im[..., 2 if cast == "red" else 0] += 50
        out.append(np.clip(im, 0, 255).astype(np.uint8))
    return out


def _blue_minus_red(images: list[np.ndarray]) -> float:
    return float(np.mean([im[..., 0].mean() - im[..., 2].mean() for im in images]))


@pytest.mark.slow
def test_the_translator_learns_a_cameras_colour_cast(tmp_path: Path) -> None:
    """Camera A's crops translated to camera B take B's cast; translated to their own camera
    they keep theirs; every copy keeps its crop's size."""
    red, blue = _cast_crops("red", 40, 0), _cast_crops("blue", 40, 1)
    s = GanSettings(iters=150, batch=4, channels=8, blocks=1, save_every=1000)
    g = train_translator(
        [[lambda im=im: im for im in red], [lambda im=im: im for im in blue]], s, tmp_path
    )
    to_b, to_a = translate(g, red[:10], 1, s), translate(g, red[:10], 0, s)
    assert _blue_minus_red(red[:10]) < -40 < 40 < _blue_minus_red(blue[:10])
    assert _blue_minus_red(to_b) > _blue_minus_red(to_a) + 30
    assert _blue_minus_red(to_b) > 0 > _blue_minus_red(to_a)
    assert all(t.shape == r.shape for t, r in zip(to_b, red, strict=False))
    grid = cv2.imread(str(tmp_path / "samples.png"))
    assert grid is not None and grid.shape[0] == 4 * (s.height + 2)  # 2 cameras x (input, to other)


def _states(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["g"]


def test_gan_runs_resume_exactly_and_a_finished_run_is_not_redone(tmp_path: Path) -> None:
    crops = [lambda im=im: im for im in _cast_crops("red", 6, 2)]
    small = GanSettings(iters=4, batch=2, channels=4, blocks=1, save_every=2)
    runs = {
        "translator": lambda s, d, p=None: train_translator(
            [crops[:3], crops[3:]], s, d, progress=p
        ),
        "dcgan": lambda s, d, p=None: train_dcgan(crops, s, d, progress=p),
    }
    for name, run in runs.items():
        whole, parts = tmp_path / f"{name}-whole", tmp_path / f"{name}-parts"
        run(small, whole)
        run(replace(small, iters=2), parts)  # stopped half way ...
        run(small, parts)  # ... and resumed
        a, b = _states(whole / "state.pt"), _states(parts / "state.pt")
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
        before = (whole / "state.pt").stat().st_mtime_ns
        calls: list[int] = []
        run(small, whole, lambda i, _losses, seen=calls: seen.append(i))
        assert calls == [], name  # nothing retrained, nothing saved again
        assert (whole / "state.pt").stat().st_mtime_ns == before


def _market_with_train(root: Path, cameras: int) -> Path:
    write_reid_synthetic(root, "market1501", identities=6, cameras=cameras, per_camera=3, seed=4)
    shutil.copytree(root / "bounding_box_test", root / "bounding_box_train")
    return root


TOY = ["--arch", "osnet_x0_25", "--init", "none", "--size", "64x32", "--p", "3", "--k", "2"]
TOY += ["--epochs", "1", "--iters-per-epoch", "2", "--gan-iters", "3", "--gan-batch", "2"]


@pytest.mark.slow
def test_train_with_camstyle_and_lsro_writes_its_grids_and_says_so_in_the_card(
    tmp_path: Path,
) -> None:
    data, out = _market_with_train(tmp_path / "m", cameras=3), tmp_path / "run"
    argv = ["train", "--dataset", str(data), "--format", "market1501", *TOY]
    assert run_pipeline.main([*argv, "--camstyle", "--lsro", "12", "--out", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert set(card["generated"]) == {"camstyle", "lsro"}
    assert card["generated"]["lsro"]["generated_images"] == 12
    for sub in ("camstyle", "dcgan"):
        assert cv2.imread(str(out / sub / "samples.png")) is not None
        assert (out / sub / "state.pt").is_file()
    # three cameras: each camera's row of inputs, then a row per other camera
    grid = cv2.imread(str(out / "camstyle" / "samples.png"))
    assert grid.shape[0] == 3 * 3 * (64 + 2)


@pytest.mark.slow
def test_spgan_adapts_from_a_labelled_source_to_the_gallerys_footage(
    vtest_gallery, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cfg, _g, _s, data_dir = vtest_gallery
    source, out = _market_with_train(tmp_path / "m", cameras=2), tmp_path / "spgan"
    argv = ["adapt", "--spgan", "--source", str(source), "--source-format", "market1501"]
    argv += [*TOY, "--min-sightings", "5", "--out", str(out), *where(cfg, data_dir)]
    assert run_pipeline.main(argv) == 0
    card = json.loads((out / "card.json").read_text())
    assert "Siamese" in card["spgan"]["method"] and "crops" in card["spgan"]["target"]
    assert cv2.imread(str(out / "spgan" / "samples.png")) is not None
    assert (out / "model.pt").is_file()
