"""`prowl adapt`: an embedder fine-tuned on a gallery's own footage without labels. Each
round embeds every long track, associates tracks into pseudo-identities (alike tracks merge;
tracks seen at the same time never do), then trains on them with the same recipe as
`prowl train`, starting from the previous round's weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.core.vectors import l2_normalise
from reid.association import associate, cannot_link
from reid.train_data import Labeled, decoder, split, validator
from reid.training import Recipe, ReidNet, build_backbone, net_features, save_model, train


@dataclass
class RoundLog:
    round: int
    threshold: float
    tracks: int
    identities: int
    same_track_sim: float  # first half vs second half of a track: the same person
    co_occurring_sim: float  # tracks seen together: certainly two people
    best_val_mAP: float


def separation(
    per_track: list[NDArray[np.float32]], forbidden: NDArray[np.bool_]
) -> tuple[float, float, NDArray[np.float32]]:
    """(mean similarity of a track's two halves, mean similarity of co-occurring tracks, the
    tracks' mean features). A good embedder pushes the first up and the second down."""
    halves = [
        float(l2_normalise(f[: len(f) // 2].mean(0)) @ l2_normalise(f[len(f) // 2 :].mean(0)))
        for f in per_track
        if len(f) >= 2
    ]
    means = np.stack([l2_normalise(f.mean(0)) for f in per_track])
    sims = means @ means.T
    iu = np.triu_indices(len(per_track), 1)
    co = sims[iu][forbidden[iu]]
    return float(np.mean(halves)), float(co.mean()) if len(co) else float("nan"), means


def adapt(
    tracks: list[list[tuple[int, bytes]]],
    spans: list[tuple[int, int, int]],
    recipe: Recipe,
    rounds: int,
    thresholds: tuple[float, float],
    out_dir: Path,
    progress: Callable[[str, dict[str, float]], None] | None = None,
) -> tuple[ReidNet, list[RoundLog], dict[str, Any]]:
    """Returns the final model, a log per round, and the separation before and after."""
    forbidden = cannot_link(spans)
    images = [[decoder(j)() for _f, j in t] for t in tracks]
    logs: list[RoundLog] = []
    current = recipe
    model: ReidNet | None = None
    before: tuple[float, float] | None = None
    for r in range(rounds):
        backbone, dim = build_backbone(current.arch, current.init)
        net = ReidNet(backbone, dim, 0).eval() if model is None else model.eval()
        per_track = [net_features(net, imgs, current) for imgs in images]
        same, co, means = separation(per_track, forbidden)
        if before is None:
            before = (same, co)
        t = thresholds[0] + (thresholds[1] - thresholds[0]) * (r / max(rounds - 1, 1))
        labels = associate(means, forbidden, t)
        samples = [
            Labeled(decoder(jpeg), int(labels[k]), int(i >= len(crops) // 2))
            for k, crops in enumerate(tracks)
            for i, (_f, jpeg) in enumerate(crops)
        ]
        data = split(samples, 0.2, current.seed + r, f"round {r} pseudo-identities")
        model, epochs = train(
            data.train,
            data.num_classes,
            current,
            out_dir / f"round{r}",
            validator(data.val, current),
            progress,
        )
        path = out_dir / f"round{r}" / "model.pt"
        save_model(model, current, {"round": r}, path)
        current = replace(current, init=str(path))
        logs.append(
            RoundLog(
                r,
                t,
                len(tracks),
                int(labels.max()) + 1,
                same,
                co,
                max((e.val_mAP for e in epochs), default=0.0),
            )
        )
        if progress is not None:
            progress("round", {"round": r, "identities": int(labels.max()) + 1, "threshold": t})
    assert model is not None and before is not None
    same, co, _ = separation(
        [net_features(model.eval(), imgs, current) for imgs in images], forbidden
    )
    return (
        model,
        logs,
        {
            "before": {"same_track": before[0], "co_occurring": before[1]},
            "after": {"same_track": same, "co_occurring": co},
        },
    )
