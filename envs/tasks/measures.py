"""Pure navigation metrics: VLN-CE (R2R-CE) measures and the NavDP System-1 benchmark measures.

Every function takes plain numbers or numpy arrays and returns a Python ``float`` (``int`` for counts), so
the tasks, the benchmarks and the tests share one definition of each metric. Distances are metres, areas
square metres, positions ``[x, y, z]`` in the world frame (y up).

Sources of the definitions:

- Success, SPL: Anderson et al. 2018, "On Evaluation of Embodied Navigation Agents" (arXiv 1807.06757),
  as implemented by habitat-lab v0.1.7 ``nav.py`` and used by VLN-CE (Krantz et al. 2020): success needs
  STOP and a geodesic distance to the goal strictly below 3 m; SPL uses the geodesic start-goal distance and
  the Euclidean length of the travelled path.
- Oracle success, oracle navigation error, path length, nDTW, SDTW: VLN-CE ``habitat_extensions/measures.py``.
- DTW, nDTW, SDTW: Ilharco et al. 2019, "General Evaluation for Instruction Conditioned Navigation using
  Dynamic Time Warping" (arXiv 1907.05446).
- Euclidean success / SPL and explored area: the NavDP System-1 benchmark (success < 1.5 m Euclidean,
  SPL = success * clip(d_start_goal / travelled, 0, 1), area = visited 0.1 m cells * 0.01 m^2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real

import numpy as np

#: VLN-CE success radius (m); also the nDTW normalisation threshold.
VLN_SUCCESS_RADIUS = 3.0
#: NavDP System-1 benchmark success radius (m), Euclidean.
SYSTEM1_SUCCESS_RADIUS = 1.5
#: Metrics whose non-finite values (unreachable goals) are dropped before averaging.
NON_FINITE_DROPPED = ("navigation_error", "oracle_navigation_error")


def _points(points: np.ndarray | Sequence, name: str) -> np.ndarray:
    """``points`` as a float (T, D) array; raises ``ValueError`` naming ``name`` otherwise."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a (T, D) array of positions, got shape {arr.shape}")
    return arr


def _distances(distances: np.ndarray | Sequence, name: str) -> np.ndarray:
    """``distances`` as a non-empty float (T,) array."""
    arr = np.asarray(distances, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty (T,) array of distances, got shape {arr.shape}")
    return arr


def _non_negative(value: float, name: str) -> float:
    """``value`` as a float; raises ``ValueError`` if it is NaN or negative (``inf`` is allowed)."""
    value = float(value)
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number (inf allowed), got {value}")
    return value


def path_length(positions: np.ndarray | Sequence) -> float:
    """Trajectory length: the sum of Euclidean steps between consecutive positions (VLN-CE ``PathLength``).

    Args:
        positions: (T, D) agent positions in metres, D = 3 for ``[x, y, z]`` (or 2 for a planar path).

    Returns:
        Length in metres; 0 for fewer than two positions.
    """
    pts = _points(positions, "positions")
    if len(pts) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())


def success(stopped: bool, distance_to_goal: float, radius: float = VLN_SUCCESS_RADIUS) -> float:
    """VLN-CE / habitat ``Success``: 1 iff the agent called STOP and ``distance_to_goal < radius`` (strict).

    Args:
        stopped: whether the episode ended with the STOP action (a timeout is not a stop).
        distance_to_goal: geodesic distance from the final position to the goal, metres (inf if unreachable).
        radius: success radius in metres (3.0 in R2R-CE).

    Returns:
        1.0 or 0.0.
    """
    return float(bool(stopped) and float(distance_to_goal) < radius)


def spl(success: float, shortest_distance: float, path_length: float) -> float:
    """Success weighted by Path Length (Anderson et al. 2018): ``S * d0 / max(d0, PL)``.

    ``d0`` is the geodesic start-goal distance measured at reset and ``PL`` the Euclidean length of the
    path actually travelled (habitat ``SPL``). Edge cases, where habitat would return NaN: a failed episode
    scores 0 whatever the distances; a non-finite ``d0`` (unreachable goal) scores 0; ``d0 = PL = 0`` with
    success (the agent starts on the goal and stops at once) scores 1.

    Args:
        success: 1.0 for success, 0.0 otherwise.
        shortest_distance: ``d0`` in metres (>= 0, inf allowed).
        path_length: ``PL`` in metres (>= 0, inf allowed).

    Returns:
        SPL in [0, 1].
    """
    d0 = _non_negative(shortest_distance, "shortest_distance")
    travelled = _non_negative(path_length, "path_length")
    if not success or not math.isfinite(d0):
        return 0.0
    longest = max(d0, travelled)
    if longest == 0.0:
        return float(success)
    return float(success) * d0 / longest


def oracle_success(distances_to_goal: np.ndarray | Sequence, radius: float = VLN_SUCCESS_RADIUS) -> float:
    """VLN-CE ``OracleSuccess``: 1 iff the distance to the goal was below ``radius`` at any step, STOP or not.

    Args:
        distances_to_goal: (T,) geodesic distances to the goal in metres, one per step, reset included.
        radius: success radius in metres (VLN-CE hard-codes 3.0).

    Returns:
        1.0 or 0.0.
    """
    return float(np.any(_distances(distances_to_goal, "distances_to_goal") < radius))


def navigation_error(distance_to_goal_at_end: float) -> float:
    """Navigation error (NE): geodesic distance in metres from the final position to the goal (VLN-CE
    ``DistanceToGoal`` at episode end, ``DISTANCE_TO: POINT``); inf when the goal is unreachable."""
    return _non_negative(distance_to_goal_at_end, "distance_to_goal_at_end")


def oracle_navigation_error(distances_to_goal: np.ndarray | Sequence) -> float:
    """VLN-CE ``OracleNavigationError``: the least distance to the goal (m) of the (T,) per-step distances."""
    return float(np.min(_distances(distances_to_goal, "distances_to_goal")))


def dtw(path: np.ndarray | Sequence, reference: np.ndarray | Sequence) -> float:
    """Exact dynamic time warping distance with Euclidean point distance (Ilharco et al. 2019, eq. 1).

    ``D[i, j] = |p_i - r_j| + min(D[i-1, j], D[i, j-1], D[i-1, j-1])``; the result is ``D[T-1, R-1]``, the
    least total distance of a monotone alignment that matches every point of both sequences. VLN-CE computes
    it with ``fastdtw`` (an approximation that can only over-estimate); this is the exact value. The table is
    filled one anti-diagonal at a time (cells with ``i + j = k`` depend only on diagonals ``k-1`` and
    ``k-2``), so each step is one vectorised numpy operation; memory is O(T * R).

    Args:
        path: (T, D) positions in metres.
        reference: (R, D) positions in metres.

    Returns:
        DTW distance in metres.
    """
    p = _points(path, "path")
    r = _points(reference, "reference")
    if p.shape[1] != r.shape[1] or len(p) == 0 or len(r) == 0:
        raise ValueError(f"path {p.shape} and reference {r.shape} must be non-empty, with the same D")
    n_p, n_r = len(p), len(r)
    # acc[i, j] = D[i-1, j-1]; row and column 0 are the inf border, acc[0, 0] = 0 starts the alignment.
    acc = np.full((n_p + 1, n_r + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(2, n_p + n_r + 1):
        i = np.arange(max(1, k - n_r), min(n_p, k - 1) + 1)
        j = k - i
        cost = np.linalg.norm(p[i - 1] - r[j - 1], axis=1)
        acc[i, j] = cost + np.minimum(np.minimum(acc[i - 1, j], acc[i, j - 1]), acc[i - 1, j - 1])
    return float(acc[n_p, n_r])


def deduplicate_positions(positions: np.ndarray | Sequence) -> np.ndarray:
    """Drop each position equal to the one before it (VLN-CE appends a position only when it changes, so
    turning in place adds nothing). (T, D) -> (T', D) with T' <= T; exact float equality, as in VLN-CE."""
    pts = _points(positions, "positions")
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
    return pts[keep]


def ndtw(
    path: np.ndarray | Sequence, reference: np.ndarray | Sequence, threshold: float = VLN_SUCCESS_RADIUS
) -> float:
    """Normalised DTW (Ilharco et al. 2019; VLN-CE ``NDTW``): ``exp(-DTW(P, R) / (|R| * threshold))``.

    ``P`` is ``path`` with consecutive repeated positions removed (see ``deduplicate_positions``; done
    here), ``R`` the reference locations (VLN-CE: the ``locations`` of ``{split}_gt.json.gz``), kept as
    they are.

    Args:
        path: (T, 3) agent positions in metres, one per step, the reset position included.
        reference: (R, 3) reference positions in metres.
        threshold: success distance in metres (3.0 in VLN-CE).

    Returns:
        nDTW in (0, 1]; 1 iff the de-duplicated path matches the reference point for point.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be a positive distance in metres, got {threshold}")
    r = _points(reference, "reference")
    return float(np.exp(-dtw(deduplicate_positions(path), r) / (len(r) * threshold)))


def sdtw(
    success: float,
    path: np.ndarray | Sequence,
    reference: np.ndarray | Sequence,
    threshold: float = VLN_SUCCESS_RADIUS,
) -> float:
    """Success-weighted nDTW (Ilharco et al. 2019; VLN-CE ``SDTW``): ``success * ndtw(path, reference)``.

    Args:
        success: 1.0 for success, 0.0 otherwise (see the ``success`` function).
        path: (T, 3) agent positions in metres.
        reference: (R, 3) reference positions in metres.
        threshold: nDTW threshold in metres.

    Returns:
        SDTW in [0, 1].
    """
    if not success:
        return 0.0
    return float(success) * ndtw(path, reference, threshold)


def collision_count(collided_flags: np.ndarray | Sequence[bool]) -> int:
    """Number of steps whose motion collided, from (T,) per-step booleans."""
    return int(np.count_nonzero(np.asarray(collided_flags, dtype=bool)))


def explored_area(visited_cells_mask: np.ndarray, cell_size: float = 0.1) -> float:
    """Explored area (m^2) of a boolean coverage grid: ``count(visited) * cell_size**2`` (NavDP no-goal
    metric: 0.1 m cells, 0.01 m^2 each).

    Args:
        visited_cells_mask: boolean grid of any shape (usually (H, W) over the floor), True where covered.
        cell_size: edge length of one cell in metres.

    Returns:
        Area in square metres.
    """
    if not cell_size > 0:
        raise ValueError(f"cell_size must be a positive number of metres, got {cell_size}")
    return float(np.count_nonzero(np.asarray(visited_cells_mask, dtype=bool))) * cell_size * cell_size


def euclidean_success(final_xy_distance: float, radius: float = SYSTEM1_SUCCESS_RADIUS) -> float:
    """NavDP System-1 success: 1 iff the final Euclidean (horizontal) robot-goal distance is below ``radius``
    (1.5 m), evaluated at termination whatever ended the episode."""
    return float(float(final_xy_distance) < radius)


def euclidean_spl(success: float, start_goal_euclid: float, travelled_length: float) -> float:
    """NavDP System-1 SPL: ``success * clip(start_goal_euclid / travelled_length, 0, 1)``.

    The optimal length is the straight start-goal distance (not geodesic). A successful episode that did not
    move (``travelled_length = 0``) scores 1, as the clipped ratio tends to 1.

    Args:
        success: 1.0 or 0.0 (see ``euclidean_success``).
        start_goal_euclid: straight-line start-goal distance in metres.
        travelled_length: distance travelled by the robot in metres.

    Returns:
        SPL in [0, 1].
    """
    d = _non_negative(start_goal_euclid, "start_goal_euclid")
    travelled = _non_negative(travelled_length, "travelled_length")
    if not success:
        return 0.0
    ratio = 1.0 if travelled == 0.0 else min(max(d / travelled, 0.0), 1.0)
    return float(success) * ratio


def aggregate(
    records: Iterable[Mapping[str, float]], drop_non_finite: Iterable[str] = NON_FINITE_DROPPED
) -> dict[str, float]:
    """Mean of each metric over episodes.

    Each key is averaged over the episodes that report it. Non-finite values of the keys in
    ``drop_non_finite`` (navigation errors of unreachable goals) are left out of that key's mean, as
    InternNav's ``HabitatVLNEvaluator`` does; VLN-CE's own evaluator takes plain means. Other keys are plain
    means.

    Args:
        records: one mapping ``metric name -> number`` per episode (bools count as 0/1).
        drop_non_finite: keys whose non-finite values are dropped.

    Returns:
        ``{metric: mean}`` in first-seen key order; NaN for a key with no value left.

    Raises:
        TypeError: a value is not a real number (the message names the episode index and the key).
    """
    dropped = set(drop_non_finite)
    values: dict[str, list[float]] = {}
    for index, record in enumerate(records):
        for key, value in record.items():
            if not isinstance(value, (Real, np.number, np.bool_)):
                raise TypeError(f"episode record {index}: metric {key!r} must be a number, got {value!r}")
            column = values.setdefault(key, [])
            if key in dropped and not math.isfinite(float(value)):
                continue
            column.append(float(value))
    return {key: float(np.mean(column)) if column else math.nan for key, column in values.items()}
