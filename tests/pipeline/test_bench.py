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
    assert r["alternatives"] == []  # nothing asked for, nothing built


def test_bench_search_compares_alternatives(capsys) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    args = ["bench-search", "--n", "4000", "--dim", "64", "--queries", "40", "--k", "5"]
    assert main([*args, "--compare", "hnsw,ivfpq", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    alts = {a["index"]: a for a in r["alternatives"]}
    # each alternative at each of its settings, named with what was built
    assert len(alts) == 4
    assert sum(name.startswith("HNSW32,SQ8") for name in alts) == 2
    assert sum(name.startswith("IVF") and ",PQ64x4fs" in name for name in alts) == 2
    for a in alts.values():
        # a pool of 100 of 4,000 structured vectors re-scored exactly: the true neighbours
        # are found; ids mixed up between the index and the vectors would score near 0
        assert a["recall_at_5"] >= 0.9, a
        assert a["p99_ms"] >= a["p50_ms"] > 0 and a["index_mb"] > 0


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
    # the arithmetic, against the models' published sizes: YOLOv8n is 8.7 GFLOPs at 640x640
    # (Ultralytics' model table), so 6.5 at vtest's 640x480 letterbox; OSNet x0.5 is 272.9M
    # multiply-adds at 256x128 (Zhou et al. 2019, table of OSNet widths)
    assert r["detector_input_px"] == 640
    assert r["detector_gflop_per_frame"] == pytest.approx(8.7 * 480 / 640, rel=0.03)
    assert r["embedder_gflop_per_crop"] == pytest.approx(2 * 0.2729, rel=0.02)
    assert r["bare_detector_gflops"] == pytest.approx(
        r["detector_gflop_per_frame"] * r["bare_detector_fps"]
    )
    assert 0 < r["embedded"] <= r["stored"]
    assert r["matmul_gflops"] > 0
