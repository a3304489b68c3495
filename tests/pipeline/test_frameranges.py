"""Frame ranges against cases worked out by hand."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.core.frameranges import kept_frames, merge_ranges, missing_ranges


def test_merge_and_missing_by_hand() -> None:
    assert merge_ranges([(10, 20), (0, 5), (5, 8), (18, 30), (40, 40)]) == [(0, 8), (10, 30)]
    assert missing_ranges((0, 50), [(0, 8), (10, 30)]) == [(8, 10), (30, 50)]
    assert missing_ranges((12, 25), [(0, 8), (10, 30)]) == []
    assert missing_ranges((0, 10), []) == [(0, 10)]
    assert kept_frames(0, 10, 3) == 4  # 0, 3, 6, 9
    assert kept_frames(10, 20, 3) == 3  # 12, 15, 18
    assert kept_frames(5, 5, 2) == 0


_ranges = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=6)


@given(done=_ranges, a=st.integers(0, 60), b=st.integers(0, 60))
def test_missing_is_exactly_the_frames_not_done(
    done: list[tuple[int, int]], a: int, b: int
) -> None:
    covered = {i for x, y in done for i in range(x, y)}
    want = set(range(a, b))
    gaps = missing_ranges((a, b), done)
    assert {i for x, y in gaps for i in range(x, y)} == want - covered
    assert all(x < y for x, y in gaps)
