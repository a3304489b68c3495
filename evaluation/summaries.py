"""Markdown tables of saved evaluation results (the JSON `prowl eval-reid --json` writes),
for the README's tables: ``python -m evaluation.summaries reid FOLDER``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


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
            f"| {r['reid']} | {method} | {r['mAP']:.3f} [{lo:.3f}, {hi:.3f}] | {r['rank1']:.3f} |"
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
            if r["reid"] == reference and not r.get("rerank") and not r.get("query_expansion")
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
        lines.append(f"| {r['reid']} | {method} | {mean:+.3f} [{lo:+.3f}, {hi:+.3f}] |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] != "reid":
        print(
            "usage: python -m evaluation.summaries reid FOLDER_OF_JSON [REFERENCE_EMBEDDER]",
            file=sys.stderr,
        )
        return 2
    results = [json.loads(p.read_text()) for p in sorted(Path(argv[1]).glob("*.json"))]
    print(reid_table(results))
    if len(argv) == 3:
        paired = paired_table(results, argv[2])
        if paired:
            print()
            print(paired)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
