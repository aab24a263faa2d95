"""Sampling R2R-CE-style VLN episodes over an annotated scene.

An episode picks a piece of furniture as its target (preferring objects whose colour, category and room single
them out), a goal on the navigable area within ``goal_max_distance`` metres of the target's bounding box and
in the target's room, and a start in a room 0 to ``max_room_hops`` doorways away in the same connected region,
with a geodesic start→goal distance in ``[min_geodesic, max_geodesic]`` metres and a shortest path through at
most ``max_room_hops + 1`` rooms. ``reference_path`` is that shortest path resampled at equal arc length so
consecutive points are at most ``waypoint_spacing`` metres apart (R2R's nav-graph nodes are about 2 m apart);
the start heading is a uniform random yaw; the instruction comes from
:func:`envs.datasets.instructions.generate_instruction`.

The ground truth for nDTW (``{split}_gt.json.gz``) is the discrete rollout of the simulator's shortest-path
expert (``expert_action(goal, goal_radius=0.5)``, at most 500 actions): ``actions`` ends with STOP,
``forward_steps`` counts MOVE_FORWARD and ``locations`` holds the start, then each new position the agent
reached (turns add no point, as VLN-CE's nDTW records only positions that change). Replaying ``actions`` from
the start with :meth:`Simulator.step` reproduces ``locations``. An episode whose expert does not stop within
0.5 m (geodesic) of the goal is rejected.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, fields

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path as graph_hops

from envs.datasets.instructions import generate_instruction
from envs.datasets.path_analysis import arc_lengths, room_legs
from envs.datasets.r2r import GOAL_RADIUS, Goal, GroundTruthPath, Instruction, VLNEpisode
from envs.nav.geometry import quaternion_from_yaw, yaw_from_quaternion
from envs.scenes.scene import Instance, Scene
from envs.sim import MOVE_FORWARD, STOP, Simulator

#: Decimals kept for positions written to episode files (0.1 mm).
DECIMALS = 4


@dataclass(frozen=True)
class EpisodeConfig:
    """How episodes are sampled (distances in metres).

    Attributes:
        min_geodesic: shortest accepted geodesic start→goal distance.
        max_geodesic: longest accepted geodesic start→goal distance.
        max_room_hops: most doorways between the start's room and the goal's room (paths cross at most
            ``max_room_hops + 1`` rooms).
        goal_max_distance: largest distance from the goal to the target's bounding-box footprint.
        waypoint_spacing: largest distance between consecutive ``reference_path`` points.
        goal_radius: radius written in ``goals`` (VLN-CE's success distance).
        expert_goal_radius: the expert stops inside this geodesic distance of the goal.
        max_expert_steps: actions allowed to the expert, STOP included.
        max_tries: targets tried per episode before giving up.
        starts_per_goal: starts tried per target before picking another.
    """

    min_geodesic: float = 3.0
    max_geodesic: float = 15.0
    max_room_hops: int = 3
    goal_max_distance: float = 1.0
    waypoint_spacing: float = 2.0
    goal_radius: float = GOAL_RADIUS
    expert_goal_radius: float = 0.5
    max_expert_steps: int = 500
    max_tries: int = 30
    starts_per_goal: int = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            minimum = 0 if f.name == "max_room_hops" else 1e-9
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not minimum <= value < math.inf
            ):
                raise ValueError(
                    f"EpisodeConfig.{f.name} must be a finite number >= {minimum:g}, got {value!r}"
                )
        if self.min_geodesic >= self.max_geodesic:
            raise ValueError(
                f"EpisodeConfig.min_geodesic ({self.min_geodesic}) must be below max_geodesic "
                f"({self.max_geodesic})"
            )


@dataclass
class SampledEpisode:
    """An episode with what it was made from.

    Attributes:
        episode: the R2R-CE episode (``instruction_tokens`` None: tokens depend on the split's vocabulary).
        gt: the expert's ground truth for nDTW.
        target: the object the instruction leads to.
        path: (N, 3) float32 shortest path start → goal (corners only), metres.
    """

    episode: VLNEpisode
    gt: GroundTruthPath
    target: Instance
    path: np.ndarray


def _inside(polygon: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test of arrays of points (same rule as ``Room.contains``)."""
    inside = np.zeros(np.shape(x), bool)
    for k in range(len(polygon)):
        (x1, z1), (x2, z2) = polygon[k], polygon[(k + 1) % len(polygon)]
        crosses = (z1 > z) != (z2 > z)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = (x2 - x1) * (z - z1) / (z2 - z1) + x1
        inside ^= crosses & (x < x_cross)
    return inside


def room_label_map(scene: Scene, grid) -> np.ndarray:
    """(H, W) int32 index into ``scene.rooms`` of the room holding each cell centre, -1 outside all rooms.

    Where polygons overlap the first room listed wins, as in :meth:`Scene.room_at`.
    """
    h, w = grid.shape
    x, z = np.meshgrid(
        grid.origin[0] + np.arange(w) * grid.cell_size, grid.origin[1] + np.arange(h) * grid.cell_size
    )
    labels = np.full((h, w), -1, np.int32)
    for k in reversed(range(len(scene.rooms))):
        labels[_inside(scene.rooms[k].polygon.astype(np.float64), x, z)] = k
    return labels


def room_hops(scene: Scene, labels: np.ndarray, grid, door_radius: float = 0.6) -> np.ndarray:
    """(R, R) float number of doorways between rooms (inf when unconnected), from the rooms around each door.

    A scene without doors is taken as fully connected (every other room one hop away).
    """
    n = len(scene.rooms)
    if len(scene.doors) == 0:
        return np.ones((n, n)) - np.eye(n)
    adjacency = np.zeros((n, n), bool)
    reach = int(math.ceil(door_radius / grid.cell_size))
    for door in scene.doors:
        i, j = grid.world_to_cell(door)
        window = labels[max(i - reach, 0) : max(i + reach + 1, 0), max(j - reach, 0) : max(j + reach + 1, 0)]
        rooms = np.unique(window[window >= 0])
        adjacency[np.ix_(rooms, rooms)] = True
    np.fill_diagonal(adjacency, False)
    return graph_hops(csr_matrix(adjacency.astype(np.float64)), unweighted=True, directed=False)


def footprint_distance(x: np.ndarray, z: np.ndarray, inst: Instance) -> np.ndarray:
    """Distance (m) from floor points to an object's bounding-box footprint (0 inside it)."""
    dx = np.maximum(np.abs(x - inst.position[0]) - inst.size[0] / 2.0, 0.0)
    dz = np.maximum(np.abs(z - inst.position[2]) - inst.size[2] / 2.0, 0.0)
    return np.hypot(dx, dz)


def resample_path(path: np.ndarray, spacing: float) -> np.ndarray:
    """(M, 3) points at equal arc length along an (N, 3) path, at most ``spacing`` metres apart, ends kept."""
    path = np.asarray(path, np.float64).reshape(-1, 3)
    s = arc_lengths(path)
    if len(path) < 2 or s[-1] == 0.0:
        return path[[0, -1]] if len(path) else path
    t = np.linspace(0.0, s[-1], int(math.ceil(s[-1] / spacing)) + 1)
    return np.stack([np.interp(t, s, path[:, k]) for k in range(3)], axis=1)


def expert_rollout(
    sim: Simulator, start, rotation, goal, goal_radius: float = 0.5, max_steps: int = 500
) -> GroundTruthPath | None:
    """Roll the simulator's shortest-path expert out from a start pose (format: the module docstring).

    Args:
        sim: the simulator (its agent is moved).
        start: (3,) start position in metres.
        rotation: (4,) start quaternion [x, y, z, w].
        goal: (3,) goal position in metres.
        goal_radius: the expert stops within this geodesic distance (m).
        max_steps: actions allowed, STOP included.

    Returns:
        The :class:`GroundTruthPath`, or None when the expert did not STOP within ``goal_radius`` of the goal.
    """
    sim.set_agent_state(start, rotation)
    locations, actions = [sim.get_agent_state().position], []
    for _ in range(max_steps):
        actions.append(sim.expert_action(goal, goal_radius))
        if actions[-1] == STOP:
            break
        sim.step(actions[-1], observe=False)
        position = sim.get_agent_state().position
        if not np.array_equal(position, locations[-1]):
            locations.append(position)
    if not actions or actions[-1] != STOP or sim.geodesic_distance(locations[-1], goal) > goal_radius + 1e-6:
        return None
    located = np.round(np.asarray(locations, np.float64), DECIMALS)
    return GroundTruthPath(located, actions, forward_steps=actions.count(MOVE_FORWARD))


class EpisodeSampler:
    """Samples episodes over one simulator's scene (method: the module docstring).

    Args:
        sim: a simulator holding an annotated scene (rooms and objects).
        config: sampling settings.
        scene_id: the ``scene_id`` written into episodes (relative to the dataset's scenes folder).
    """

    def __init__(
        self, sim: Simulator, config: EpisodeConfig | None = None, scene_id: str | None = None
    ) -> None:
        self.sim, self.scene, self.config = sim, sim.scene, config or EpisodeConfig()
        self.scene_id = scene_id or f"{self.scene.name}.glb"
        grid = sim.grid
        self.labels = room_label_map(self.scene, grid)
        self.usable = grid.navigable & (grid.region == grid.largest_region)
        self.hops = room_hops(self.scene, self.labels, grid)
        self._room_cells: dict[int, np.ndarray] = {}
        objects = [o for o in self.scene.objects() if 0 <= o.room < len(self.scene.rooms)]
        counts = Counter((o.color, o.category, o.room) for o in objects)
        self.targets = [o for o in objects if counts[o.color, o.category, o.room] == 1] or objects

    def goal_candidates(self, target: Instance) -> np.ndarray:
        """(K, 3) float32 usable cell centres of the target's room within ``goal_max_distance`` of it."""
        grid, reach = self.sim.grid, self.config.goal_max_distance
        lo = target.position - target.size / 2.0 - reach
        hi = target.position + target.size / 2.0 + reach
        i0, j0 = (max(int(v), 0) for v in grid.world_to_cell(lo))
        i1, j1 = (int(v) + 1 for v in grid.world_to_cell(hi))
        ii, jj = np.mgrid[i0 : min(i1, grid.shape[0]), j0 : min(j1, grid.shape[1])]
        centres = grid.cell_to_world(ii.ravel(), jj.ravel())
        near = footprint_distance(centres[:, 0], centres[:, 2], target) <= reach
        ok = near & self.usable[ii.ravel(), jj.ravel()] & (self.labels[ii.ravel(), jj.ravel()] == target.room)
        return centres[ok]

    def _pick_start(self, rng: np.random.Generator, goal_room: int) -> np.ndarray | None:
        """A usable cell centre in a room ``h`` hops from ``goal_room``, ``h`` uniform over reachable hops."""
        hops = self.hops[goal_room]
        choices = sorted({int(h) for h in hops if h <= self.config.max_room_hops})
        wanted = choices[int(rng.integers(len(choices)))]
        rooms = np.flatnonzero(hops == wanted)
        room = int(rooms[int(rng.integers(len(rooms)))])
        if room not in self._room_cells:
            self._room_cells[room] = np.flatnonzero((self.labels == room) & self.usable)
        cells = self._room_cells[room]
        if len(cells) == 0:
            return None
        i, j = np.divmod(cells[int(rng.integers(len(cells)))], self.usable.shape[1])
        return self.sim.grid.cell_to_world(i, j)[0]

    def sample(self, rng: np.random.Generator, episode_id: int | str) -> SampledEpisode | None:
        """Sample one episode; None when ``max_tries`` targets gave no valid one.

        The result is a deterministic function of the scene, the config and ``rng``'s state.
        """
        if not self.targets:
            return None
        for _ in range(self.config.max_tries):
            target = self.targets[int(rng.integers(len(self.targets)))]
            candidates = self.goal_candidates(target)
            if len(candidates) == 0:
                continue
            goal = np.round(candidates[int(rng.integers(len(candidates)))].astype(np.float64), DECIMALS)
            for _ in range(self.config.starts_per_goal):
                start = self._pick_start(rng, target.room)
                if start is not None:
                    found = self._try(
                        rng, target, np.round(start.astype(np.float64), DECIMALS), goal, episode_id
                    )
                    if found is not None:
                        return found
        return None

    def _try(
        self, rng, target: Instance, start: np.ndarray, goal: np.ndarray, episode_id
    ) -> SampledEpisode | None:
        """The episode from ``start`` to ``goal``, or None when it breaks a constraint."""
        cfg, sim = self.config, self.sim
        distance = sim.geodesic_distance(start, goal)
        if not cfg.min_geodesic <= distance <= cfg.max_geodesic:
            return None
        path = sim.shortest_path(start, goal)
        if len(path) < 2 or len(room_legs(self.scene, path)) > cfg.max_room_hops + 1:
            return None
        rotation = np.round(quaternion_from_yaw(float(rng.uniform(-math.pi, math.pi))).astype(np.float64), 6)
        gt = expert_rollout(sim, start, rotation, goal, cfg.expert_goal_radius, cfg.max_expert_steps)
        if gt is None:
            return None
        path = np.asarray(path, np.float64)
        path[0], path[-1] = start, goal
        text = generate_instruction(self.scene, path, target, rng, start_yaw=yaw_from_quaternion(rotation))
        episode = VLNEpisode(
            episode_id=str(episode_id),
            trajectory_id=str(episode_id),
            scene_id=self.scene_id,
            start_position=start,
            start_rotation=rotation,
            goals=[Goal(goal, cfg.goal_radius)],
            reference_path=np.round(resample_path(path, cfg.waypoint_spacing), DECIMALS),
            instruction=Instruction(text),
            info={"geodesic_distance": round(float(distance), DECIMALS)},
        )
        return SampledEpisode(episode, gt, target, path.astype(np.float32))


def sample_vln_episode(
    sim: Simulator, scene: Scene | None, rng: np.random.Generator, episode_id: int | str = 0, **config
) -> SampledEpisode | None:
    """Sample one VLN episode over ``sim``'s scene (``scene``, when given, must be ``sim.scene``).

    Args:
        sim: the simulator.
        scene: the annotated scene, or None for ``sim.scene``.
        rng: the random generator (the result is deterministic given its state).
        episode_id: id written into the episode.
        **config: :class:`EpisodeConfig` fields, e.g. ``min_geodesic=3.0, max_geodesic=15.0``.

    Returns:
        A :class:`SampledEpisode` (episode + expert ground truth + target), or None when none could be found.
        For many episodes of one scene build an :class:`EpisodeSampler` once instead.
    """
    if scene is not None and scene is not sim.scene:
        raise ValueError(
            f"sample_vln_episode: scene {scene.name!r} is not the simulator's scene {sim.scene.name!r}"
        )
    return EpisodeSampler(sim, EpisodeConfig(**config)).sample(rng, episode_id)
