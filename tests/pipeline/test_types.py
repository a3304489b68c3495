import numpy as np
import pytest

from pipeline.core.types import Detections


def _dets(n: int = 3) -> Detections:
    xyxy = np.array([[0, 0, 10, 20], [5, 5, 15, 25], [50, 60, 70, 90]], np.float32)[:n]
    return Detections(xyxy, np.array([0.9, 0.5, 0.7], np.float32)[:n])


def test_shapes_are_validated() -> None:
    with pytest.raises(ValueError, match="scores"):
        Detections(np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="track_ids"):
        Detections(np.zeros((2, 4)), np.zeros(2), track_ids=np.zeros(1))
    with pytest.raises(ValueError, match="embeddings"):
        Detections(np.zeros((2, 4)), np.zeros(2), embeddings=np.zeros((3, 8)))


def test_immutable_arrays_and_new_objects() -> None:
    d = _dets()
    with pytest.raises(ValueError):
        d.xyxy[0, 0] = 1.0
    e = d.with_embeddings(np.eye(3, 4, dtype=np.float32))
    assert d.embeddings is None and e.embeddings is not None and e.embeddings.shape == (3, 4)
    t = e.with_track_ids(np.array([7, 8, 9]))
    assert list(t.track_ids) == [7, 8, 9] and e.track_ids is None


def test_mask_and_index_selection_keep_columns_aligned() -> None:
    d = _dets().with_track_ids(np.array([1, 2, 3])).with_embeddings(np.eye(3, dtype=np.float32))
    sel = d[d.scores > 0.6]
    assert len(sel) == 2
    assert list(sel.track_ids) == [1, 3]
    assert np.allclose(sel.embeddings, np.eye(3)[[0, 2]])
    assert len(d[np.array([2])]) == 1 and d[np.array([2])].scores[0] == pytest.approx(0.7)


def test_clipped_cuts_to_frame_and_drops_boxes_outside() -> None:
    d = Detections(
        np.array([[-5, -5, 10, 10], [90, 10, 120, 30], [200, 200, 300, 300]], np.float32),
        np.array([0.9, 0.8, 0.7], np.float32),
    )
    c = d.clipped(100, 50)
    assert len(c) == 2
    assert c.xyxy.tolist() == [[0, 0, 10, 10], [90, 10, 100, 30]]
    assert c.scores.tolist() == pytest.approx([0.9, 0.8])
