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


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "reid":
        print("usage: python -m evaluation.summaries reid FOLDER_OF_JSON", file=sys.stderr)
        return 2
    paths = sorted(Path(argv[1]).glob("*.json"))
    print(reid_table([json.loads(p.read_text()) for p in paths]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
