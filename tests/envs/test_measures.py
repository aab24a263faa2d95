"""Metric functions against values worked out by hand (the arithmetic is in the comments)."""

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.tasks import measures as m


def test_path_length_sums_euclidean_steps():
    # steps: (0,0,0)->(3,4,0) = 5; (3,4,0)->(3,4,0) = 0 (a turn); (3,4,0)->(3,4,2) = 2; total 7
    positions = [[0, 0, 0], [3, 4, 0], [3, 4, 0], [3, 4, 2]]
    assert m.path_length(positions) == pytest.approx(7.0)
    assert m.path_length([[1.0, 2.0, 3.0]]) == 0.0
    # planar paths work too: (0,0)->(1,1) = sqrt(2)
    assert m.path_length([[0, 0], [1, 1]]) == pytest.approx(math.sqrt(2))
    with pytest.raises(ValueError, match="positions"):
        m.path_length([1.0, 2.0, 3.0])


def test_success_needs_stop_and_strictly_inside_radius():
    assert m.success(True, 2.9) == 1.0
    assert m.success(True, 3.0) == 0.0  # strict <: exactly 3 m fails
    assert m.success(False, 0.5) == 0.0  # no STOP (timeout) fails however close
    assert m.success(True, math.inf) == 0.0
    assert m.success(True, 1.4, radius=1.5) == 1.0


def test_spl_cases():
    # detour: d0 = 6, PL = 8 -> 6 / max(6, 8) = 0.75
    assert m.spl(1.0, 6.0, 8.0) == pytest.approx(0.75)
    # Euclidean PL shorter than the geodesic d0: 6 / max(6, 5) = 1
    assert m.spl(1.0, 6.0, 5.0) == 1.0
    # failure scores 0 whatever the path
    assert m.spl(0.0, 6.0, 6.0) == 0.0
    assert m.spl(0.0, 0.0, 0.0) == 0.0
    # zero-length episode: starts on the goal and stops -> 1; starts on the goal but wanders 2 m -> 0 / 2 = 0
    assert m.spl(1.0, 0.0, 0.0) == 1.0
    assert m.spl(1.0, 0.0, 2.0) == 0.0
    # unreachable goal and infinite path: no NaN
    assert m.spl(0.0, math.inf, 3.0) == 0.0
    assert m.spl(1.0, math.inf, 3.0) == 0.0
    assert m.spl(1.0, 6.0, math.inf) == 0.0
    with pytest.raises(ValueError, match="path_length"):
        m.spl(1.0, 6.0, -1.0)
    with pytest.raises(ValueError, match="shortest_distance"):
        m.spl(1.0, math.nan, 1.0)


def test_oracle_success_and_navigation_errors():
    assert m.oracle_success([5.0, 2.9, 4.0]) == 1.0
    assert m.oracle_success([3.0, 4.0]) == 0.0  # strict <
    assert m.oracle_success([1.0, 5.0, 6.0]) == 1.0  # the reset state counts
    assert m.oracle_success([math.inf, 1.0]) == 1.0
    with pytest.raises(ValueError, match="distances_to_goal"):
        m.oracle_success([])
    assert m.navigation_error(2.5) == 2.5
    assert m.navigation_error(math.inf) == math.inf
    with pytest.raises(ValueError):
        m.navigation_error(-0.1)
    assert m.oracle_navigation_error([5.0, 2.0, 4.0]) == 2.0


def test_dtw_small_sequences():
    # 1-D: P = 0, 1, 2; R = 0, 2. Costs |p - r|: row p=0: [0, 2]; p=1: [1, 1]; p=2: [2, 0].
    # D00 = 0; D01 = 2; D10 = 1; D11 = 1 + min(2, 1, 0) = 1; D20 = 2 + 1 = 3; D21 = 0 + min(1, 3, 1) = 1
    assert m.dtw([[0.0], [1.0], [2.0]], [[0.0], [2.0]]) == pytest.approx(1.0)
    # 2-D: P = (0,0), (1,0); R = (0,1), (1,1), (2,1).
    # costs p0: 1, sqrt2, sqrt5; p1: sqrt2, 1, sqrt2.
    # D00 = 1; D01 = 1 + sqrt2; D02 = 1 + sqrt2 + sqrt5; D10 = 1 + sqrt2;
    # D11 = 1 + min(D01, D10, D00) = 2; D12 = sqrt2 + min(D02, D11, D01) = 2 + sqrt2
    p = [[0, 0], [1, 0]]
    r = [[0, 1], [1, 1], [2, 1]]
    assert m.dtw(p, r) == pytest.approx(2 + math.sqrt(2))
    assert m.dtw(r, p) == pytest.approx(2 + math.sqrt(2))  # symmetric
    assert m.dtw(r, r) == 0.0
    with pytest.raises(ValueError, match="same D"):
        m.dtw([[0, 0, 0]], [[0, 0]])


def _naive_dtw(p: np.ndarray, r: np.ndarray) -> float:
    table = np.full((len(p), len(r)), np.inf)
    for i in range(len(p)):
        for j in range(len(r)):
            prev = 0.0 if i == j == 0 else math.inf
            if i > 0:
                prev = min(prev, table[i - 1, j])
            if j > 0:
                prev = min(prev, table[i, j - 1])
            if i > 0 and j > 0:
                prev = min(prev, table[i - 1, j - 1])
            table[i, j] = math.dist(p[i], r[j]) + prev
    return float(table[-1, -1])


points = st.lists(
    st.lists(st.floats(-20, 20, allow_nan=False), min_size=3, max_size=3), min_size=1, max_size=9
)


@settings(max_examples=60, deadline=None)
@given(points, points)
def test_dtw_matches_the_textbook_recursion(p, r):
    p, r = np.array(p), np.array(r)
    assert m.dtw(p, r) == pytest.approx(_naive_dtw(p, r), rel=1e-12, abs=1e-12)


def test_dtw_is_fast_enough_for_long_paths():
    rng = np.random.default_rng(0)
    p, r = rng.normal(size=(2000, 3)), rng.normal(size=(1500, 3))
    start = time.perf_counter()
    value = m.dtw(p, r)
    elapsed = time.perf_counter() - start
    assert math.isfinite(value) and value > 0
    assert elapsed < 5.0, f"dtw of 2000 x 1500 points took {elapsed:.2f} s"


REFERENCE = np.array([[0, 0, 0], [0, 0, -5], [0, 0, -10], [0, 0, -15]], dtype=float)


def test_ndtw_of_the_reference_itself_is_one():
    assert m.ndtw(REFERENCE, REFERENCE) == 1.0
    # turning in place repeats positions; they are de-duplicated and change nothing
    assert m.ndtw(np.repeat(REFERENCE, 3, axis=0), REFERENCE) == 1.0


def test_ndtw_of_a_path_offset_by_one_metre():
    # every path point is 1 m from its reference point, the others >= sqrt(1 + 25) m away, so the best
    # alignment is the diagonal: DTW = 4 * 1 = 4, nDTW = exp(-4 / (|R| * 3)) = exp(-4 / 12)
    path = REFERENCE + [1.0, 0.0, 0.0]
    assert m.dtw(path, REFERENCE) == pytest.approx(4.0)
    assert m.ndtw(path, REFERENCE) == pytest.approx(math.exp(-4 / 12))
    # threshold 1 m: exp(-4 / (4 * 1)) = exp(-1)
    assert m.ndtw(path, REFERENCE, threshold=1.0) == pytest.approx(math.exp(-1))
    with pytest.raises(ValueError, match="threshold"):
        m.ndtw(path, REFERENCE, threshold=0.0)


def test_ndtw_deduplicates_the_path_but_not_the_reference():
    path = REFERENCE + [1.0, 0.0, 0.0]
    stuttering = np.concatenate([path[:1], path])  # first point twice, as after a turn at the start
    # without de-dup the repeated point adds one more 1 m match: DTW 5; with it DTW stays 4
    assert m.dtw(stuttering, REFERENCE) == pytest.approx(5.0)
    assert m.ndtw(stuttering, REFERENCE) == pytest.approx(math.exp(-4 / 12))
    assert len(m.deduplicate_positions(stuttering)) == 4
    # a repeated reference point is kept: |R| = 5, DTW = 5 -> exp(-5 / 15)
    reference = np.concatenate([REFERENCE[:1], REFERENCE])
    assert m.ndtw(path, reference) == pytest.approx(math.exp(-5 / 15))


def test_sdtw_is_success_times_ndtw():
    path = REFERENCE + [1.0, 0.0, 0.0]
    assert m.sdtw(1.0, path, REFERENCE) == pytest.approx(math.exp(-4 / 12))
    assert m.sdtw(0.0, path, REFERENCE) == 0.0


def test_collisions_and_explored_area():
    assert m.collision_count([False, True, True, False, True]) == 3
    assert m.collision_count([]) == 0
    mask = np.zeros((10, 10), dtype=bool)
    mask.flat[:37] = True
    # 37 cells of 0.1 m -> 37 * 0.01 = 0.37 m^2; of 0.5 m -> 37 * 0.25 = 9.25 m^2
    assert m.explored_area(mask) == pytest.approx(0.37)
    assert m.explored_area(mask, cell_size=0.5) == pytest.approx(9.25)
    with pytest.raises(ValueError, match="cell_size"):
        m.explored_area(mask, cell_size=0.0)


def test_system1_euclidean_success_and_spl():
    assert m.euclidean_success(1.49) == 1.0
    assert m.euclidean_success(1.5) == 0.0  # strict <
    # d = 4 m straight, travelled 5 m -> 4 / 5 = 0.8
    assert m.euclidean_spl(1.0, 4.0, 5.0) == pytest.approx(0.8)
    # travelled less than the straight distance (stopped inside the radius) -> clipped to 1
    assert m.euclidean_spl(1.0, 4.0, 3.0) == 1.0
    assert m.euclidean_spl(0.0, 4.0, 5.0) == 0.0
    assert m.euclidean_spl(1.0, 1.0, 0.0) == 1.0


def test_aggregate_means_and_dropped_navigation_errors():
    records = [
        {"success": 1.0, "spl": 0.5, "navigation_error": 2.0, "collisions": 2},
        {"success": 0.0, "spl": 0.0, "navigation_error": math.inf, "collisions": 0},
        {"success": True, "spl": 1.0, "navigation_error": 4.0},
    ]
    out = m.aggregate(records)
    assert list(out) == ["success", "spl", "navigation_error", "collisions"]
    assert out["success"] == pytest.approx(2 / 3)  # (1 + 0 + 1) / 3
    assert out["spl"] == pytest.approx(0.5)  # (0.5 + 0 + 1) / 3
    assert out["navigation_error"] == pytest.approx(3.0)  # inf dropped: (2 + 4) / 2
    assert out["collisions"] == pytest.approx(1.0)  # (2 + 0) / 2, the third episode has no such key
    assert math.isnan(m.aggregate([{"navigation_error": math.inf}])["navigation_error"])
    assert m.aggregate([]) == {}


def test_aggregate_rejects_non_numbers():
    with pytest.raises(TypeError, match=r"episode record 1: metric 'spl' must be a number"):
        m.aggregate([{"spl": 1.0}, {"spl": "0.5"}])
