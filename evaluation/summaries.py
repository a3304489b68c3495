"""Markdown tables of saved evaluation results (the JSON `prowl eval-reid --json` writes),
for the README's tables: ``python -m evaluation.summaries reid FOLDER``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _label(r: dict[str, Any]) -> str:
    return str(r.get("label", r["reid"]))


def labelled(files: list[Path]) -> list[dict[str, Any]]:
    """The saved results, each labelled by its embedder, or by its file name as well where
    several files name the same embedder (models trained by different recipes are all
    ``prowl:model.pt`` to eval-reid)."""
    results = [{**json.loads(p.read_text()), "file": p.stem} for p in files]
    names = [r["reid"] for r in results]
    for r in results:
        if names.count(r["reid"]) > 1 and not (r.get("rerank") or r.get("query_expansion")):
            r["label"] = f"{r['file']} ({r['reid']})"
    return results


def reid_table(results: list[dict[str, Any]]) -> str:
    """One row per result: embedder, query-time method, mAP with its interval, rank-1."""
    lines = ["| embedder | query-time | mAP [95% CI] | rank-1 |", "|---|---|---|---|"]
    for r in results:
        method = "cosine"
        if r.get("rerank") or r.get("query_expansion"):
            parts = []
            if r.get("query_expansion"):
                parts.append(f"expand {r['query_expansion']}")
            if r.get("rerank"):
                parts.append("re-rank")
            method = " + ".join(parts)
        lo, hi = r["mAP_ci95"]
        lines.append(
            f"| {_label(r)} | {method} | {r['mAP']:.3f} [{lo:.3f}, {hi:.3f}] | {r['rank1']:.3f} |"
        )
    return "\n".join(lines)


def paired_table(results: list[dict[str, Any]], reference: str) -> str:
    """Each result's mAP minus the ``reference`` embedder's plain (cosine) mAP on the same
    queries, with a paired bootstrap interval."""
    import numpy as np

    from evaluation.metrics import paired_difference_ci

    base = next(
        (
            r
            for r in results
            if reference in (r["reid"], _label(r), r.get("file"))
            and not r.get("rerank")
            and not r.get("query_expansion")
        ),
        None,
    )
    if base is None or not base.get("per_query_ap"):
        return ""
    lines = [
        f"| embedder | query-time | mAP − {reference} (cosine) [95% CI, paired] |",
        "|---|---|---|",
    ]
    for r in results:
        if r is base or len(r.get("per_query_ap", [])) != len(base["per_query_ap"]):
            continue
        mean, lo, hi = paired_difference_ci(
            np.asarray(r["per_query_ap"]), np.asarray(base["per_query_ap"])
        )
        method = reid_table([r]).splitlines()[-1].split("|")[2].strip()
        lines.append(f"| {_label(r)} | {method} | {mean:+.3f} [{lo:+.3f}, {hi:+.3f}] |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "reid":
        print(
            "usage: python -m evaluation.summaries reid FOLDER_OF_JSON [REFERENCE ...]",
            file=sys.stderr,
        )
        return 2
    results = labelled(sorted(Path(argv[1]).glob("*.json")))
    print(reid_table(results))
    for reference in argv[2:]:  # an embedder, or a result's file name
        paired = paired_table(results, reference)
        if paired:
            print()
            print(paired)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
