"""`prowl reembed`: a gallery moved to another embedder from its stored crops, resumable, the
old vectors answering until the switch, and nothing ingested twice afterwards."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import pytest

import run_pipeline
from pipeline.core.config import ReidConfig
from pipeline.query import run_query
from pipeline.query_input import read_frame
from pipeline.reembed import reembed
from reid import build_embedder
from storage.gallery import Gallery

pytestmark = pytest.mark.slow


def test_reembed_resumes_then_switches(vtest_path: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    d = ["--data-dir", str(data)]
    assert (
        run_pipeline.main(["ingest", str(vtest_path), "--end", "3", "--reid", "hsv", "-q", *d]) == 0
    )
    crop = read_frame(vtest_path, 20)[170:270, 560:600]
    new = build_embedder(ReidConfig(name="mobilenetv2-imagenet", batch_crops=8, device="cpu"))

    # Stopped after its first batch: the gallery still answers with hsv; nothing switched.
    stop = threading.Event()
    with Gallery(f"sqlite:///{data / 'gallery.db'}", data, must_exist=True) as g:
        stop.set()
        first = reembed(g, new, batch=8, stop=stop)
        assert not first.switched and first.made_now == 8
        assert run_query(g, [crop], k=3).embedder == "hsv"
    # The same command finishes the rest and switches.
    capsys.readouterr()
    assert run_pipeline.main(["reembed", "--reid", "mobilenetv2-imagenet", "-q", *d]) == 0
    out = capsys.readouterr().out
    assert "hsv -> mobilenetv2-imagenet" in out and f"({first.vectors - 8} computed" in out
    with Gallery(f"sqlite:///{data / 'gallery.db'}", data, must_exist=True) as g:
        result = run_query(g, [crop], k=3, by="detection")
        assert result.embedder == "mobilenetv2-imagenet" and len(result.hits) == 3
        assert len(g.index_for(g.embedder_for_query(None).id)) == first.vectors
        assert not g.index_path("hsv").exists()
        assert g.stats()["embedders"][1]["tracks"] >= 3  # tracks pooled from the new vectors
    # The run moved with its vectors: ingesting with the new embedder does not start over.
    r = run_pipeline.main(
        ["ingest", str(vtest_path), "--end", "3", "--reid", "mobilenetv2-imagenet", *d]
    )
    assert r == 0 and "already ingested" in capsys.readouterr().out
    # The old embedder's name now points the user at the gallery's own one, or at reembed.
    cv2.imwrite(str(tmp_path / "q.jpg"), crop)
    assert run_pipeline.main(["query", str(tmp_path / "q.jpg"), "--reid", "hsv", *d]) == 2
    assert "prowl reembed --reid hsv" in capsys.readouterr().err
