from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.core.errors import SourceError
from pipeline.core.files import content_hash
from pipeline.core.video import DecodeReport, probe, read_frames
from tests.conftest import write_video


def _marker(image: np.ndarray) -> int:
    """The frame number write_video burnt into the picture (the white column)."""
    return int(np.argmax(image[:, :, 0].mean(axis=0)))


def test_all_frames_with_timestamps_and_camera(tmp_path: Path) -> None:
    video = write_video(tmp_path / "gate-3.avi", frames=30, fps=10)
    frames = list(read_frames(video))
    assert [f.index for f in frames] == list(range(30))
    assert [_marker(f.image) for f in frames] == list(range(30))
    assert frames[12].timestamp_s == pytest.approx(1.2)
    assert frames[0].source_id == "gate-3"
    assert frames[0].image.shape == (64, 96, 3) and frames[0].image.dtype == np.uint8


def test_stride_start_end_and_resume(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.avi", frames=40, fps=10)
    # [1 s, 3 s) at 10 fps: frames 10-29, of which stride 3 (counted from frame 0) keeps these
    kept = list(read_frames(video, camera_id="cam9", stride=3, start_s=1.0, end_s=3.0))
    assert [f.index for f in kept] == [12, 15, 18, 21, 24, 27]
    assert [_marker(f.image) for f in kept] == [12, 15, 18, 21, 24, 27]
    nxt = list(read_frames(video, stride=3, start_s=3.0, end_s=4.0))  # windows that meet
    assert [f.index for f in nxt] == [30, 33, 36, 39]
    assert {f.source_id for f in kept} == {"cam9"}
    resumed = list(read_frames(video, stride=3, first_index=20))
    assert [f.index for f in resumed] == [21, 24, 27, 30, 33, 36, 39]
    assert [_marker(f.image) for f in resumed] == [21, 24, 27, 30, 33, 36, 39]


def test_image_folder_is_a_source(tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in (3, 1, 2):
        cv2.imwrite(str(folder / f"{i:06d}.jpg"), np.full((20, 30, 3), i * 40, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    frames = list(read_frames(folder, image_fps=5))
    assert [f.index for f in frames] == [0, 1, 2]
    assert [int(f.image.mean()) // 40 for f in frames] == [1, 2, 3]  # sorted by name
    assert frames[2].timestamp_s == pytest.approx(0.4)
    assert probe(folder).frame_count == 3


def test_grey_and_16bit_images_become_bgr(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((10, 12), 100, np.uint8))
    cv2.imwrite(str(folder / "b.png"), np.full((10, 12), 65535, np.uint16))
    a, b = (f.image for f in read_frames(folder))
    assert a.shape == b.shape == (10, 12, 3) and a.dtype == b.dtype == np.uint8
    assert a[0, 0].tolist() == [100, 100, 100] and b[0, 0].tolist() == [255, 255, 255]


def test_bad_sources_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        probe(tmp_path / "missing.avi")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no images"):
        probe(tmp_path / "empty")
    notvideo = tmp_path / "notes.avi"
    notvideo.write_text("hello, this is not a video " * 50)
    with pytest.raises(SourceError, match="not a video"):
        probe(notvideo)
    (tmp_path / "zero.avi").write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        probe(tmp_path / "zero.avi")


def test_truncated_video_reports_lost_frames(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.avi", frames=40)
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    report = DecodeReport()
    frames = list(read_frames(cut, report=report))
    assert 0 < len(frames) < 40
    assert report.stopped_early


def test_content_hash_follows_content_not_name(tmp_path: Path) -> None:
    a = write_video(tmp_path / "a.avi", frames=10)
    b = tmp_path / "b.avi"
    b.write_bytes(a.read_bytes())
    c = write_video(tmp_path / "c.avi", frames=11)
    assert content_hash(a) == content_hash(b) != content_hash(c)
