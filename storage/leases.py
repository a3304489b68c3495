"""Who is ingesting a run right now: a lease per run, so that a run is written by one process
at a time and a run whose process died is seen as interrupted, not "running" forever.

A lease row names its owner (host, pid, a random token) and is renewed by a heartbeat thread
while the owner works. Taking a lease is a compare-and-set on that row, in the same
transaction that reads the run's resume point, so two ingests started at once never both
resume from the same frame. A lease is stale, and taken over, when its heartbeat is older than
``STALE_S`` or its owner was on this host and that process is gone (a SIGKILL, a power loss).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pipeline.core.errors import ProwlError
from storage.models import RunLeaseRow, RunRow

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
STALE_S = 90.0  # three missed heartbeats and then some: the owner is gone


class RunBusy(ProwlError):
    """Another live process is ingesting this run."""


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    token: str

    @classmethod
    def me(cls) -> Owner:
        return cls(socket.gethostname()[:200], os.getpid(), uuid.uuid4().hex)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def is_live(row: RunLeaseRow | None, now: float | None = None) -> bool:
    """Whether the lease ``row`` still belongs to a working process."""
    if row is None:
        return False
    now = time.time() if now is None else now
    if now - row.heartbeat_at > STALE_S:
        return False
    return not (row.host == socket.gethostname()[:200] and not _pid_alive(row.pid))


def claim(gallery: Any, run_id: int, owner: Owner) -> RunRow:
    """Take the run's lease for ``owner`` and return the run as it is now (its resume point
    read under the lease). RunBusy, naming the holder, when a live process holds it."""
    for _attempt in range(3):
        with gallery.session() as s, s.begin():
            held = s.get(RunLeaseRow, run_id)
            now = time.time()
            values = dict(host=owner.host, pid=owner.pid, token=owner.token, heartbeat_at=now)
            if held is None:
                try:
                    with s.begin_nested():
                        s.execute(insert(RunLeaseRow).values(run_id=run_id, taken_at=now, **values))
                except IntegrityError:  # another process took it between our read and insert
                    continue
            elif held.token == owner.token:
                s.execute(update(RunLeaseRow).where(RunLeaseRow.run_id == run_id).values(**values))
            elif is_live(held, now):
                since = time.strftime("%H:%M:%S", time.localtime(held.taken_at))
                raise RunBusy(
                    f"another prowl process (pid {held.pid} on {held.host}, since {since}) is "
                    "ingesting this video with these settings; wait for it to finish, or stop "
                    "it (a run whose process died is taken over automatically)"
                )
            else:  # stale: taken over, but only if nobody else took it over first
                took = s.execute(
                    update(RunLeaseRow)
                    .where(RunLeaseRow.run_id == run_id, RunLeaseRow.token == held.token)
                    .values(taken_at=now, **values)
                )
                if took.rowcount != 1:
                    continue
                log.info("run %d: took over the lease of pid %d on %s", run_id, held.pid, held.host)
            run = s.get(RunRow, run_id, populate_existing=True)
            if run is None:
                raise ProwlError(f"run {run_id} was removed meanwhile; run the command again")
            s.expunge(run)
            return run
    raise RunBusy("another prowl process is starting this run right now; try again")


def renew(gallery: Any, run_id: int, owner: Owner) -> bool:
    """Refresh the heartbeat; False when the lease is no longer ours (taken over)."""
    with gallery.session() as s, s.begin():
        done = s.execute(
            update(RunLeaseRow)
            .where(RunLeaseRow.run_id == run_id, RunLeaseRow.token == owner.token)
            .values(heartbeat_at=time.time())
        )
        return bool(done.rowcount)


def release(gallery: Any, run_id: int, owner: Owner) -> None:
    try:
        with gallery.session() as s, s.begin():
            s.execute(
                delete(RunLeaseRow).where(
                    RunLeaseRow.run_id == run_id, RunLeaseRow.token == owner.token
                )
            )
    except Exception as exc:  # the database itself may be what failed; the lease goes stale
        log.debug("could not release the lease of run %d: %s", run_id, exc)


def live_runs(gallery: Any, run_ids: Sequence[int] | None = None) -> set[int]:
    """The runs among ``run_ids`` (all when None) that a working process holds."""
    with gallery.session() as s:
        q = select(RunLeaseRow)
        if run_ids is not None:
            q = q.where(RunLeaseRow.run_id.in_(list(run_ids)))
        now = time.time()
        return {row.run_id for row in s.scalars(q) if is_live(row, now)}


class Lease:
    """A held lease with its heartbeat thread; ``close()`` releases it (idempotent)."""

    def __init__(self, gallery: Any, run_id: int, owner: Owner) -> None:
        self.gallery, self.run_id, self.owner = gallery, run_id, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="prowl-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if not renew(self.gallery, self.run_id, self.owner):
                    log.warning("run %d: the lease was taken over by another process", self.run_id)
                    return
            except Exception as exc:  # a database hiccup: try again at the next beat
                log.debug("lease heartbeat of run %d failed: %s", self.run_id, exc)

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=5)
        release(self.gallery, self.run_id, self.owner)


def take(gallery: Any, run_id: int) -> tuple[RunRow, Lease]:
    """Claim the run for this process: (the run as it is now, its lease to close when done)."""
    owner = Owner.me()
    run = claim(gallery, run_id, owner)
    return run, Lease(gallery, run_id, owner)
