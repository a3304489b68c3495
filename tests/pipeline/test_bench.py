"""The benchmark commands a user runs to check speed: they run, measure what they say on the
same frames, and report consistent numbers (never a wall-clock threshold)."""

from __future__ import annotations

import json

import pytest


def test_bench_search_exact_small_gallery(capsys) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    assert main(["bench-search", "--n", "3000", "--dim", "64", "--queries", "30", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 3000 and r["index_type"].startswith("IDMap2,Flat")
    assert r["recall_at_10"] == 1.0  # below the approximate threshold the scan is exact
    assert r["p99_ms"] >= r["p50_ms"] > 0


@pytest.mark.slow
def test_bench_ingest_reports_the_baseline_and_stages(capsys) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    assert main(["bench-ingest", "--frames", "12", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    # the three loops ran on the same frames: ingest stored exactly the people the bare
    # detector found there (a dropped or doubled frame, or a filter one side applies and the
    # other does not, shows here)
    assert r["frames"] == 12 and r["people"] > 0
    assert r["stored"] == r["people"]
    assert r["ultralytics_torch_predict_fps"] > 0 and r["ingest_fps"] > 0
    # the stage breakdown accounts for ingest's time and never more than all of it
    assert {"decode", "detect", "embed", "store"} <= set(r["stage_s"])
    assert 0 < sum(r["stage_s"].values()) <= r["frames"] / r["ingest_fps"]
