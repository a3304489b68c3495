"""Gallery tables (SQLAlchemy 2 typed ORM). The rows are the truth, embeddings included;
the FAISS index beside the database is a cache rebuilt from them when they disagree."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY, not a BIGINT one.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class EmbedderRow(Base):
    """An embedder a gallery holds vectors of; each has its own FAISS index."""

    __tablename__ = "embedders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    dim: Mapped[int] = mapped_column(Integer)
    # A checkpoint-taking embedder is its name plus the exact weights file: the query rebuilds
    # exactly this embedder, or says which file it needs.
    weights: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    weights_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class VideoRow(Base):
    __tablename__ = "videos"
    __table_args__ = (UniqueConstraint("content_hash", "camera_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(4096))
    content_hash: Mapped[str] = mapped_column(String(80))
    camera_id: Mapped[str] = mapped_column(String(200), index=True)
    fps: Mapped[float] = mapped_column(Float)
    width_px: Mapped[int] = mapped_column(Integer)
    height_px: Mapped[int] = mapped_column(Integer)
    frame_count: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # ISO 8601 wall-clock time of frame 0 (file name, container or the user), as known
    start_time: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class RunRow(Base):
    """One ingest of one video with the settings that shape its detections. Frames with an
    index below ``next_frame`` are committed; a run resumes from there."""

    __tablename__ = "ingest_runs"
    __table_args__ = (UniqueConstraint("video_id", "settings_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    embedder_id: Mapped[int] = mapped_column(ForeignKey("embedders.id"))
    detector: Mapped[str] = mapped_column(String(500))
    settings_key: Mapped[str] = mapped_column(String(1000))
    stride: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # running | complete (its last window)
    next_frame: Mapped[int] = mapped_column(Integer, default=0)
    frames_processed: Mapped[int] = mapped_column(Integer, default=0)
    detections_count: Mapped[int] = mapped_column(Integer, default=0)
    embedded_count: Mapped[int] = mapped_column(Integer, default=0)
    next_track_id: Mapped[int] = mapped_column(Integer, default=1)  # resumed runs continue it
    # JSON of the tracker and embedding cadence after frame next_frame - 1, committed with it
    tracker_state: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why the last attempt failed
    # JSON [[first, stop), ...] of frame indices whose work is committed: a later window of the
    # same settings only processes what is not done yet, so no frame is ever stored twice.
    done_ranges: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DetectionRow(Base):
    __tablename__ = "detections"
    __table_args__ = (
        Index("ix_detections_video_frame", "video_id", "frame_index"),
        Index("ix_detections_embedder_time", "embedder_id", "timestamp_s"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="CASCADE"), index=True
    )
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    embedder_id: Mapped[int] = mapped_column(ForeignKey("embedders.id"))
    frame_index: Mapped[int] = mapped_column(Integer)
    timestamp_s: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    # The appearance this box belongs to: its track once a run's fragments are stitched and
    # its stray boxes folded in (storage/tracks.py); NULL for a box that fits no one.
    track_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    # The online tracker's own id (run-scoped like track_id), 0 for a box it took into no
    # track; what stitching is recomputed from. NULL only in galleries made before it.
    raw_track_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # float32, L2-normalised; NULL when the tracking cadence skipped this crop
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    thumbnail: Mapped[bytes] = mapped_column(LargeBinary)  # JPEG of the crop
    # clothing colours named from pipeline.core.colours.PALETTE, most-voted first, comma-joined
    # ("blue,black"); None: not computed (rows stored before colours existed)
    upper_colours: Mapped[str | None] = mapped_column(String(40), nullable=True)
    lower_colours: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # True: the tracker's predicted box on a frame the detector skipped (detector.every_frames;
    # never embedded); NULL: a detection
    predicted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


TRACK_ID_STRIDE = 10_000_000  # detections.track_id = run id * stride + the tracker's own id


class TrackRow(Base):
    """One appearance: a person's continuous presence in one video (the tracker's fragments
    stitched, stray boxes folded in), derived from its detections when the run finishes (so
    it is always consistent with them)."""

    __tablename__ = "tracks"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # = track_id
    run_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="CASCADE"), index=True
    )
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    embedder_id: Mapped[int] = mapped_column(ForeignKey("embedders.id"))
    first_frame: Mapped[int] = mapped_column(Integer)
    last_frame: Mapped[int] = mapped_column(Integer)
    first_s: Mapped[float] = mapped_column(Float)
    last_s: Mapped[float] = mapped_column(Float)
    detections: Mapped[int] = mapped_column(Integer)
    embedded: Mapped[int] = mapped_column(Integer)
    fragments: Mapped[int | None] = mapped_column(Integer, nullable=True)  # tracker tracks joined
    # mean of the L2-normalised embeddings, re-normalised (temporal pooling, as for MARS)
    pooled: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    best_detection_id: Mapped[int] = mapped_column(BigInteger)  # largest, most confident box
    thumbnail: Mapped[bytes] = mapped_column(LargeBinary)


class PendingVectorRow(Base):
    """A detection's vector from another embedder, computed by `prowl reembed` while the
    gallery keeps answering with the old one; moved into ``detections`` when all are done."""

    __tablename__ = "reembed_vectors"
    detection_id: Mapped[int] = mapped_column(
        ForeignKey("detections.id", ondelete="CASCADE"), primary_key=True
    )
    embedder_id: Mapped[int] = mapped_column(ForeignKey("embedders.id"), primary_key=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)


class SubjectRow(Base):
    """A person an analyst has named, made of the sightings they confirmed."""

    __tablename__ = "subjects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    case_name: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the investigation
    analyst: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SubjectSightingRow(Base):
    __tablename__ = "subject_sightings"
    subject_id: Mapped[int] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True
    )
    detection_id: Mapped[int] = mapped_column(
        ForeignKey("detections.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class SegmentRow(Base):
    """One committed segment of a distributed ingest run (frames [first, stop)); written in
    the transaction that stores its detections, so it exists exactly when they do."""

    __tablename__ = "ingest_segments"
    __table_args__ = (UniqueConstraint("run_id", "first_frame"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="CASCADE"), index=True
    )
    first_frame: Mapped[int] = mapped_column(Integer)
    stop_frame: Mapped[int] = mapped_column(Integer)
    detections: Mapped[int] = mapped_column(Integer)
    # JSON {track id: [[frame, x1, y1, x2, y2], ...]}: the segment's tracks in its lead-in
    # frames (stored by the previous segment), used to join tracks across the cut
    lead_in: Mapped[str | None] = mapped_column(Text, nullable=True)
    committed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class RunLeaseRow(Base):
    """The process ingesting a run right now (storage/leases.py): one row per held run,
    renewed by a heartbeat, deleted when the ingest ends."""

    __tablename__ = "run_leases"
    run_id: Mapped[int] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch
    heartbeat_at: Mapped[float] = mapped_column(Float)


class GalleryStateRow(Base):
    """One row: a counter bumped by every transaction that adds, removes or re-vectors
    sightings, so a long-lived reader (`prowl serve`) knows when to catch its indexes up."""

    __tablename__ = "gallery_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
