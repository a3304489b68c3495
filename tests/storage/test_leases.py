"""Run leases on SQLite and PostgreSQL: one live owner at a time, a dead or silent owner's
run taken over, a run shown ``running`` only while someone works on it, and the gallery's
change counter moving with every commit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from storage.gallery import Gallery
from storage.leases import STALE_S, Owner, RunBusy, claim, live_runs, release, take
from storage.models import RunLeaseRow


def _run(gallery: Gallery) -> int:
    emb = gallery.embedder_row("fake", 4)
    video = gallery.upsert_video(Path("/footage/a.avi"), "hash-a", "a", 10.0, 64, 48, 100)
    return gallery.start_run(video, emb, "det", "key", 1).id


def test_one_live_owner_at_a_time(db_url: str, tmp_path: Path) -> None:
    with Gallery(db_url, tmp_path) as g:
        run_id = _run(g)
        run, lease = take(g, run_id)
        assert run.id == run_id and live_runs(g) == {run_id}
        with pytest.raises(RunBusy, match="another prowl process"):
            take(g, run_id)
        assert [r.status for r, _v in g.runs()] == ["running"]
        lease.close()
        assert live_runs(g) == set()
        assert [r.status for r, _v in g.runs()] == ["interrupted"]  # resumable, nobody on it
        run, again = take(g, run_id)  # free again
        again.close()


def test_a_dead_process_lease_is_taken_over_at_once(db_url: str, tmp_path: Path) -> None:
    with Gallery(db_url, tmp_path) as g:
        run_id = _run(g)
        gone = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        dead = Owner(Owner.me().host, int(gone.stdout), "t" * 32)  # this host, pid exited
        claim(g, run_id, dead)
        assert live_runs(g) == set()  # its owner is gone: the run is not being worked on
        _run_row, lease = take(g, run_id)
        assert live_runs(g) == {run_id}
        lease.close()


def test_a_silent_lease_goes_stale(db_url: str, tmp_path: Path) -> None:
    with Gallery(db_url, tmp_path) as g:
        run_id = _run(g)
        elsewhere = Owner("another-host", 1, "e" * 32)
        claim(g, run_id, elsewhere)
        with pytest.raises(RunBusy, match="pid 1 on another-host"):
            take(g, run_id)
        with g.session() as s, s.begin():  # its heartbeat stopped long ago
            s.execute(update(RunLeaseRow).values(heartbeat_at=time.time() - STALE_S - 1))
        _run_row, lease = take(g, run_id)
        lease.close()
        release(g, run_id, elsewhere)  # a late release of the old owner changes nothing


def test_the_change_counter_moves_with_each_commit(db_url: str, tmp_path: Path) -> None:
    import numpy as np

    from storage.gallery import NewDetection

    with Gallery(db_url, tmp_path) as g:
        run_id = _run(g)
        run = next(r for r, _v in g.runs() if r.id == run_id)
        before = g.version()
        assert before is not None
        vec = np.ones(4, np.float32) / 2
        g.commit_frames(run, [NewDetection(0, 0.0, (0, 0, 8, 8), 0.9, vec, b"j")], 1, 1)
        after_commit = g.version()
        assert after_commit is not None and after_commit > before
        g.finish_run(run)
        assert (g.version() or 0) > after_commit
