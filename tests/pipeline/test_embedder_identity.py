"""A gallery built with a checkpoint-taking embedder (torchreid:osnet_x0_25 with the real
MSMT17 checkpoint) remembers the exact weights: queries and evaluation rebuild that embedder,
and say which file they need when it is missing or different."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import run_pipeline
from evaluation.synthetic import write_synthetic
from pipeline.query_input import read_frame

pytestmark = pytest.mark.slow

SHARED_CKPT = Path(__file__).resolve().parents[3] / "shared" / "models" / "osnet_x0_25_msmt17.pth"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SHARED_CKPT.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED_CKPT} is missing; CI runs with ../shared beside the repo")
        pytest.skip("the OSNet development checkpoint (../shared/models) is not here")
    copy = tmp_path_factory.mktemp("ckpt") / "osnet_x0_25_msmt17.pth"
    shutil.copyfile(SHARED_CKPT, copy)
    return copy


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run_pipeline.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_osnet_gallery_is_queried_and_evaluated_with_its_own_weights(
    checkpoint: Path, vtest_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    reid = ["--reid", "torchreid:osnet_x0_25"]
    code, _out, err = _cli(
        capsys, "ingest", str(vtest_path), "--end", "3", *reid,
        "--reid-weights", str(checkpoint), "--data-dir", str(data), "-q",
    )  # fmt: skip
    assert code == 0, err
    crop = tmp_path / "walker.jpg"
    cv2.imwrite(str(crop), read_frame(vtest_path, 20)[170:270, 560:600])

    code, out, err = _cli(capsys, "query", str(crop), "--k", "3", "--data-dir", str(data))
    assert code == 0, err
    assert "embedder torchreid:osnet_x0_25" in out and "3 track hits" in out

    # The checkpoint moved: the query names the file it needs, and takes it from the flag.
    moved = tmp_path / "elsewhere.pth"
    checkpoint.rename(moved)
    try:
        code, _out, err = _cli(capsys, "query", str(crop), "--data-dir", str(data))
        assert code == 2 and err.count("\n") == 1
        assert str(checkpoint) in err and "--reid-weights" in err and "6f57607fed9f" in err
        code, out, err = _cli(
            capsys, "query", str(crop), "--k", "3", "--reid-weights", str(moved),
            "--data-dir", str(data),
        )  # fmt: skip
        assert code == 0 and "3 track hits" in out, err

        # Other weights of the same architecture are other vectors: refused, nothing added.
        other = tmp_path / "other.pth"
        state = torch.load(moved, map_location="cpu", weights_only=False)
        state["fc.0.weight"] = state["fc.0.weight"] * 0.5
        torch.save(state, other)
        code, _out, err = _cli(
            capsys, "query", str(crop), "--reid-weights", str(other), "--data-dir", str(data)
        )
        assert code == 2 and "is not the checkpoint the gallery was built with" in err
        code, _out, err = _cli(
            capsys, "ingest", str(vtest_path), "--end", "3", "--force", *reid,
            "--reid-weights", str(other), "--data-dir", str(data), "-q",
        )  # fmt: skip
        assert code == 2 and err.count("\n") == 1 and "--reid-weights" in err

        # Evaluation builds the same embedder from the same flags.
        ds = tmp_path / "syn"
        write_synthetic(ds, "prw", identities=4, cameras=2, frames_per_camera=4, seed=1)
        code, out, err = _cli(
            capsys, "eval", str(ds), "--format", "prw", "--detector", "gt", *reid,
            "--reid-weights", str(moved), "--data-dir", str(tmp_path / "eval"),
        )  # fmt: skip
        assert code == 0, err
        assert "gt × torchreid:osnet_x0_25" in out and "mAP" in out
    finally:
        moved.rename(checkpoint)


def test_osnet_brings_a_walker_closer_to_himself_than_to_others(
    checkpoint: Path, vtest_path: Path, vtest_gallery
) -> None:  # type: ignore[no-untyped-def]
    """Pairs a person can trust without labels: two crops of one long track 2-4 s apart (the
    same walker) against two crops of one frame (certainly two people). OSNet must rank the
    same-walker pair higher for most pairs."""
    from sqlalchemy import select

    from pipeline.core.config import ReidConfig
    from reid import build_embedder
    from storage.models import DetectionRow

    _cfg, gallery, _s, _ = vtest_gallery
    with gallery.session() as s:
        rows = list(
            s.scalars(
                select(DetectionRow).where(
                    DetectionRow.score > 0.6, DetectionRow.track_id.is_not(None)
                )
            )
        )
    by_track: dict[int, list[DetectionRow]] = {}
    for r in rows:
        by_track.setdefault(int(r.track_id or 0), []).append(r)
    frames: dict[int, np.ndarray] = {}

    def crop(r: DetectionRow) -> np.ndarray:
        if r.frame_index not in frames:
            frames[r.frame_index] = read_frame(vtest_path, r.frame_index)
        return frames[r.frame_index][round(r.y1) : round(r.y2), round(r.x1) : round(r.x2)]

    pairs = []  # (anchor, same walker later, another person in the anchor's frame)
    for dets in by_track.values():
        dets.sort(key=lambda r: r.frame_index)
        anchor = dets[0]
        later = [r for r in dets if 20 <= r.frame_index - anchor.frame_index <= 40]
        others = [
            r for r in rows if r.frame_index == anchor.frame_index and r.track_id != anchor.track_id
        ]
        if later and others:
            pairs.append((anchor, later[-1], max(others, key=lambda r: r.score)))
    assert len(pairs) >= 5
    emb = build_embedder(
        ReidConfig(
            name="torchreid:osnet_x0_25", batch_crops=16, device="cpu", weights=str(checkpoint)
        )
    )
    v = emb.embed([crop(r) for p in pairs for r in p]).reshape(len(pairs), 3, -1)
    same = (v[:, 0] * v[:, 1]).sum(-1)
    different = (v[:, 0] * v[:, 2]).sum(-1)
    assert (same > different).mean() >= 0.8, (same.round(3), different.round(3))


def test_named_osnet_is_the_checkpoint_through_the_resolver(
    checkpoint: Path, vtest_path: Path
) -> None:
    """`--reid osnet_x0_25_msmt17` resolves the pinned file (here from the development copy
    beside the repository) and embeds exactly as the same checkpoint given by path."""
    from pipeline.core.assets import resolve
    from pipeline.core.config import ReidConfig
    from pipeline.core.files import sha256_of
    from reid import build_embedder

    named = build_embedder(ReidConfig(name="osnet_x0_25_msmt17", batch_crops=8, device="cpu"))
    by_path = build_embedder(
        ReidConfig(
            name="torchreid:osnet_x0_25", batch_crops=8, device="cpu", weights=str(checkpoint)
        )
    )
    assert named.name == "osnet_x0_25_msmt17" and named.dim == 512 and named.weights is None
    assert sha256_of(resolve("osnet_x0_25_msmt17.pth")) == sha256_of(checkpoint)
    crops = [
        read_frame(vtest_path, 30)[170:270, 560:600],
        read_frame(vtest_path, 60)[100:220, 300:360],
    ]
    assert np.allclose(named.embed(crops), by_path.embed(crops), atol=1e-5)
