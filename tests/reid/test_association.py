"""Tracklet association by hand, and `prowl adapt` end to end on a real gallery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import run_pipeline
from reid.association import associate, cannot_link
from tests.conftest import where


def test_cannot_link_is_overlap_in_time_within_one_video() -> None:
    spans = [(1, 0, 10), (1, 5, 20), (1, 21, 30), (2, 0, 10)]
    f = cannot_link(spans)
    assert f[0, 1] and f[1, 0] and not f[0, 2] and not f[1, 2] and not f[0, 3]


def test_alike_tracks_merge_unless_they_were_seen_together() -> None:
    e = np.eye(3, dtype=np.float32)
    # tracks 0 and 1 look alike, 2 looks like 0 too but co-occurs with 0; 3 is someone else
    feats = np.stack([e[0], e[0] * 0.99 + e[1] * 0.14, e[0] * 0.95 - e[1] * 0.31, e[2]])
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    forbidden = cannot_link([(1, 0, 10), (1, 20, 30), (1, 5, 15), (1, 0, 30)])
    labels = associate(feats, forbidden, threshold=0.9)
    assert labels[0] == labels[1]  # alike, never seen together
    assert labels[2] != labels[0]  # alike, but seen with track 0 at the same time
    assert labels[3] not in (labels[0], labels[2])
    assert list(associate(feats, forbidden, threshold=1.01)) == [0, 1, 2, 3]  # nothing merges


@pytest.mark.slow
def test_adapt_on_the_gallerys_tracks(vtest_gallery, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg, _g, _s, data_dir = vtest_gallery
    out = tmp_path / "adapted"
    argv = ["adapt", "--rounds", "2", "--epochs", "1", "--iters-per-epoch", "2", "--min-sightings"]
    argv += ["20", "--size", "128x64", "--p", "4", "--k", "2", "--out", str(out)]
    assert run_pipeline.main([*argv, *where(cfg, data_dir)]) == 0
    assert "same-track similarity" in capsys.readouterr().out
    card = json.loads((out / "card.json").read_text())
    assert [r["round"] for r in card["rounds"]] == [0, 1]
    assert all(r["identities"] <= r["tracks"] for r in card["rounds"])
    assert set(card["separation"]) == {"before", "after"}
    # the adapted model is an embedder; too few tracks is one line
    assert (out / "model.pt").is_file() and (out / "round1" / "model.pt").is_file()
    code = run_pipeline.main(
        ["adapt", "--min-sightings", "100000", "--out", str(tmp_path / "x"), *where(cfg, data_dir)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "adapting needs at least 4" in err
