"""The training recipe's pieces against hand-worked cases, and `prowl train` end to end on
small data (real OSNet, real optimiser, a handful of steps on the CPU)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import run_pipeline
from evaluation.reid_synthetic import write_reid_synthetic
from reid.train_parts import batch_hard_triplet, pk_batches
from reid.training import Recipe, lr_factor
from tests.conftest import where


def test_batch_hard_triplet_by_hand() -> None:
    # 1-D features: identity 0 at 0 and 1, identity 1 at 3 and 7.
    f = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    y = torch.tensor([0, 0, 1, 1])
    # hardest positive / nearest negative per anchor: (1, 3), (1, 2), (4, 2), (4, 6)
    expected = (max(0, 1 - 3 + 0.3) + max(0, 1 - 2 + 0.3) + max(0, 4 - 2 + 0.3) + 0) / 4
    assert float(batch_hard_triplet(f, y, 0.3)) == pytest.approx(expected, abs=1e-4)


def test_pk_batches_hold_p_identities_with_k_images_each() -> None:
    pids = [0] * 5 + [1] * 2 + [2] * 9 + [3] * 4
    rng = np.random.default_rng(0)
    for batch in pk_batches(pids, p=3, k=4, batches=20, rng=rng):
        got = [pids[i] for i in batch]
        assert len(batch) == 12 and len(set(got)) == 3
        assert all(got.count(pid) == 4 for pid in set(got))


def test_warm_up_then_cosine() -> None:
    r = Recipe(epochs=30, warmup_epochs=5)
    assert lr_factor(0, r) == pytest.approx(0.1)
    assert lr_factor(5, r) == pytest.approx(1.0)
    assert lr_factor(17.5, r) == pytest.approx(0.505)
    assert lr_factor(30, r) == pytest.approx(0.01)


def _market_with_train(root: Path) -> Path:
    write_reid_synthetic(root, "market1501", identities=10, cameras=3, per_camera=3, seed=4)
    shutil.copytree(root / "bounding_box_test", root / "bounding_box_train")
    return root


@pytest.mark.slow
def test_train_resume_and_use_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, out = _market_with_train(tmp_path / "m"), tmp_path / "run"
    base = ["train", "--dataset", str(data), "--format", "market1501", "--arch", "osnet_x0_25"]
    small = ["--init", "none", "--size", "64x32", "--p", "4", "--k", "2", "--iters-per-epoch", "3"]
    assert run_pipeline.main([*base, *small, "--epochs", "2", "--out", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert [e["epoch"] for e in card["metrics"]["epochs"]] == [0, 1]
    assert card["data"]["train_identities"] == 8  # 2 of 10 held out for validation
    assert card["recipe"]["arch"] == "osnet_x0_25" and card["wall_time_s"] > 0
    assert "| 1 |" in (out / "MODEL_CARD.md").read_text()
    # resumed: the run continues where it stopped, it does not start over
    assert run_pipeline.main([*base, *small, "--epochs", "3", "--out", str(out), "--resume"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert [e["epoch"] for e in card["metrics"]["epochs"]] == [0, 1, 2]
    capsys.readouterr()
    # the trained model is an embedder like any other
    code = run_pipeline.main(
        [
            "eval-reid",
            str(data),
            "--format",
            "market1501",
            "--reid",
            f"prowl:{out / 'model.pt'}",
            "--json",
            "-",
        ]
    )
    assert code == 0 and json.loads(capsys.readouterr().out)["valid_queries"] == 10
    # bad input: one line, exit 2
    for argv, needle in [
        ([*base, *small, "--epochs", "1", "--out", str(out)], "not empty"),
        ([*base, "--init", "imagenet", "--out", str(tmp_path / "x")], "no ImageNet weights"),
        ([*base, "--init", "nope.pth", "--out", str(tmp_path / "y")], "--init 'nope.pth'"),
        (["train", "--dataset", str(data), "--out", str(tmp_path / "z")], "needs --format"),
    ]:
        assert run_pipeline.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err


@pytest.mark.slow
def test_adapt_the_msmt17_osnet_on_the_gallerys_tracks(
    vtest_gallery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """Training data taken from a gallery: its long tracks as identities, starting from the
    OSNet re-ID checkpoint (resolved by name)."""
    cfg, _g, _s, data_dir = vtest_gallery
    out = tmp_path / "adapted"
    argv = ["train", "--from-gallery", "--min-sightings", "30", "--init", "osnet_x0_25_msmt17"]
    argv += ["--epochs", "1", "--size", "128x64", "--p", "4", "--k", "2", "--iters-per-epoch", "2"]
    assert run_pipeline.main([*argv, "--out", str(out), *where(cfg, data_dir)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert "gallery" in card["data"]["source"] and card["data"]["train_identities"] >= 3
    assert card["initialisation"].endswith("osnet_x0_25_msmt17.pth")
    assert card["metrics"]["best_validation_mAP"] is not None


@pytest.mark.slow
def test_without_validation_identities_the_last_epoch_is_kept(tmp_path: Path) -> None:
    """--val-fraction 0 (every identity trains): nothing to pick a best epoch by, so the whole
    schedule runs and model.pt is the last epoch, not the first."""
    data, out = _market_with_train(tmp_path / "m"), tmp_path / "run"
    argv = ["train", "--dataset", str(data), "--format", "market1501", "--arch", "osnet_x0_25"]
    argv += ["--init", "none", "--size", "64x32", "--p", "4", "--k", "2", "--iters-per-epoch", "2"]
    argv += ["--epochs", "3", "--patience", "1", "--val-fraction", "0", "--out", str(out)]
    assert run_pipeline.main(argv) == 0
    card = json.loads((out / "card.json").read_text())
    assert [e["epoch"] for e in card["metrics"]["epochs"]] == [0, 1, 2]  # no early stop
    assert card["metrics"]["best_validation_mAP"] is None and card["metrics"]["best_epoch"] == 2
    last = torch.load(out / "last.pt", weights_only=False)["model"]
    kept = torch.load(out / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(kept[k], last[k]) for k in kept)


def test_freeze_bn_keeps_the_backbones_statistics_while_the_weights_learn(tmp_path: Path) -> None:
    """--freeze-bn: a fine-tune on a few people leaves every backbone batch-norm's running
    statistics as they were (they would otherwise become those few people's)."""
    from dataclasses import replace

    from reid.train_parts import TrainSample
    from reid.training import train

    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, size=(64, 32, 3), dtype=np.uint8) for _ in range(8)]
    samples = [TrainSample(lambda im=im: im, i % 4, i % 2) for i, im in enumerate(imgs)]
    base = Recipe(
        arch="osnet_x0_25", init="none", epochs=1, p_identities=2, k_images=2, height=64,
        width=32, iters_per_epoch=2, warmup_epochs=0,
    )  # fmt: skip
    changed = {}
    for freeze in (False, True):
        torch.manual_seed(0)
        model, _ = train(
            samples, 4, replace(base, freeze_bn=freeze), tmp_path / str(freeze),
            lambda _m: float("nan"),
        )  # fmt: skip
        stats = {k: v for k, v in model.backbone.state_dict().items() if "running_mean" in k}
        changed[freeze] = sum(not torch.equal(v, torch.zeros_like(v)) for v in stats.values())
    assert changed[True] == 0  # a fresh OSNet's running means are zeros, and stay so
    assert changed[False] > 10
