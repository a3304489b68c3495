"""Opening a gallery database: URL checks, the engine (SQLite in WAL mode or PostgreSQL),
schema creation and the small in-place upgrades older galleries need."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, inspect, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from pipeline.core.errors import GalleryError
from pipeline.core.redact import redact_url
from storage.models import Base, GalleryStateRow

_SCHEMA_LOCK = 0x70726F776C  # 'prowl'

# Columns added after the first release: (table, column, SQL type). Added in place on open.
_ADDED_COLUMNS = (
    ("embedders", "weights", "VARCHAR(4096)"),
    ("embedders", "weights_sha256", "VARCHAR(64)"),
    ("ingest_runs", "tracker_state", "TEXT"),
    ("ingest_runs", "error", "TEXT"),
    ("ingest_runs", "done_ranges", "TEXT"),
    ("videos", "start_time", "VARCHAR(64)"),
    ("detections", "raw_track_id", "BIGINT"),
    ("tracks", "fragments", "INTEGER"),
    ("subjects", "case_name", "VARCHAR(200)"),
    ("detections", "upper_colours", "VARCHAR(40)"),
    ("detections", "lower_colours", "VARCHAR(40)"),
    ("subjects", "analyst", "VARCHAR(200)"),
    ("detections", "predicted", "BOOLEAN"),
)


def safe_url(url: str) -> str:
    """The URL with its password (and secret query parameters) hidden, for messages."""
    try:
        return redact_url(make_url(url).render_as_string(hide_password=True))
    except Exception:
        return redact_url(url)


def index_key(url: str) -> str:
    """A file-name-safe key of the database, so that index files of two galleries sharing a
    data directory never collide."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database or "memory").stem
    readable = re.sub(r"[^A-Za-z0-9]+", "_", f"{parsed.host}_{parsed.port}_{parsed.database}")
    digest = hashlib.sha1(safe_url(url).encode()).hexdigest()[:8]
    return f"{parsed.get_backend_name()}_{readable}_{digest}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, and vice versa
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint; safe with WAL
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def ensure_writable_dir(path: Path, read_only_ok: bool) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GalleryError(
            f"cannot create data directory {path}: {exc.strerror}; choose a writable --data-dir"
        ) from None
    if not read_only_ok and not os.access(path, os.W_OK):
        raise GalleryError(f"data directory {path} is read-only; choose a writable --data-dir")


def open_engine(url: str, data_dir: Path, must_exist: bool) -> tuple[Engine, str]:
    """(engine, backend name) of the gallery at ``url``; creates its tables unless
    ``must_exist``. Every failure a user can cause is a one-line GalleryError."""
    try:
        parsed = make_url(url)
    except Exception:
        raise GalleryError(
            f"'{url}' is not a database URL; use sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database:
        db_file = Path(parsed.database)
        if must_exist and not db_file.is_file():
            raise GalleryError(
                f"no gallery at {db_file}; run `prowl ingest VIDEO` first "
                "or pass --data-dir/--db of an existing gallery"
            )
        ensure_writable_dir(db_file.parent, read_only_ok=must_exist)
    if not must_exist:
        ensure_writable_dir(data_dir, read_only_ok=False)
    try:
        connect_args: dict[str, Any] = {}
        if backend == "postgresql":
            connect_args["connect_timeout"] = 5
        engine = create_engine(url, connect_args=connect_args)
    except Exception as exc:
        raise GalleryError(
            f"cannot use database URL {safe_url(url)}: {exc}".splitlines()[0]
        ) from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if not must_exist:
            with engine.begin() as conn:
                if backend == "postgresql":
                    # Two ingests starting at once on a fresh database would both CREATE
                    # TABLE and one would fail: the lock makes the second wait and see them.
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
                Base.metadata.create_all(conn)
                if conn.scalar(select(GalleryStateRow.id).where(GalleryStateRow.id == 1)) is None:
                    conn.execute(insert(GalleryStateRow).values(id=1, version=0))
        else:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise GalleryError(
            f"cannot open database {safe_url(url)}: {reason}; "
            "check the URL and that the server is running"
        ) from None
    except DatabaseError as exc:  # SQLite: "file is not a database", "malformed"
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise GalleryError(
            f"database {safe_url(url)} is damaged or not a gallery ({reason}); restore it from "
            "a backup, or choose another --data-dir/--db"
        ) from None
    if must_exist and not inspect(engine).has_table("detections"):
        raise GalleryError(
            f"database {safe_url(url)} holds no prowl gallery; "
            "run `prowl ingest VIDEO` with this --db first"
        )
    _upgrade(engine, backend)
    return engine, backend


def _upgrade(engine: Engine, backend: str) -> None:
    """Add the columns a gallery made by an older prowl lacks (nullable, so old rows stay
    valid)."""
    insp = inspect(engine)
    todo = [
        (t, c, sql_type)
        for t, c, sql_type in _ADDED_COLUMNS
        if insp.has_table(t) and c not in {col["name"] for col in insp.get_columns(t)}
    ]
    if not todo:
        return
    with engine.begin() as conn:
        if backend == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
        for table, column, sql_type in todo:
            exists = any(c["name"] == column for c in inspect(conn).get_columns(table))
            if not exists:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")


def wipe(url: str) -> None:
    """Drop every prowl table (tests and `--force`-style resets of a whole gallery)."""
    engine = create_engine(url)
    try:
        Base.metadata.drop_all(engine)
    except SQLAlchemyError as exc:  # pragma: no cover
        raise GalleryError(f"cannot reset {safe_url(url)}: {exc}") from None
    finally:
        engine.dispose()


def bump_version(s: Session) -> None:
    """Inside a write transaction: the gallery changed (see GalleryStateRow)."""
    s.execute(
        update(GalleryStateRow)
        .where(GalleryStateRow.id == 1)
        .values(version=GalleryStateRow.version + 1)
    )


def read_version(engine: Engine) -> int | None:
    """The gallery's change counter; None for a gallery no current prowl has written to."""
    try:
        with engine.connect() as conn:
            value = conn.scalar(select(GalleryStateRow.version).where(GalleryStateRow.id == 1))
    except SQLAlchemyError:  # no such table yet
        return None
    return None if value is None else int(value)
