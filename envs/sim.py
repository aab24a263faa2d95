"""The embedded simulator: a scene, an agent body with cameras, discrete and waypoint motion, navigation
queries.

Frames and units follow Habitat: y up, the agent looks along −z, positions in metres, rotations as quaternions
``[x, y, z, w]`` (the body only ever rotates about +y; positive yaw turns left). Discrete actions::

    0 STOP   1 MOVE_FORWARD (forward_step m)   2 TURN_LEFT   3 TURN_RIGHT (turn_angle°)
    4 LOOK_UP   5 LOOK_DOWN (tilt_angle°, camera pitch only)

Motion slides along obstacles as Habitat's ``allow_sliding`` does and can never leave the navigable area.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from envs.nav import AgentBody, GeodesicSolver, NavGrid, ShortestPathFollower, try_move
from envs.nav.geometry import quaternion_from_yaw, yaw_from_quaternion
from envs.render import CameraSpec, Renderer, TopDownMap
from envs.scenes.io import load_scene
from envs.scenes.scene import Scene

logger = logging.getLogger(__name__)

STOP, MOVE_FORWARD, TURN_LEFT, TURN_RIGHT, LOOK_UP, LOOK_DOWN = range(6)
ACTION_NAMES = ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT", "LOOK_UP", "LOOK_DOWN")


@dataclass
class SimConfig:
    """Configuration of the agent, its cameras and its motion.

    Attributes:
        body: agent radius/height/step/slope used for navigability (VLN-CE defaults).
        cameras: camera specs; the first camera's outputs are keyed by modality (``rgb``, ``depth``,
            ``semantic``), the others ``<uuid>_<modality>``.
        forward_step: metres per MOVE_FORWARD.
        turn_angle: degrees per TURN_LEFT / TURN_RIGHT.
        tilt_angle: degrees per LOOK_UP / LOOK_DOWN; the tilt is clamped to ±max_tilt.
        max_tilt: degrees.
        cell_size: navigability grid resolution in metres.
        control_period: seconds per control tick of :meth:`Simulator.move_along`.
        max_linear_speed: m/s during waypoint following.
        max_angular_speed: rad/s during waypoint following.
        waypoint_tolerance: metres within which a waypoint counts as reached.
        level_y: floor height to navigate on (None: the scene's main floor).
    """

    body: AgentBody = field(default_factory=AgentBody)
    cameras: tuple[CameraSpec, ...] = field(default_factory=lambda: (CameraSpec(),))
    forward_step: float = 0.25
    turn_angle: float = 15.0
    tilt_angle: float = 15.0
    max_tilt: float = 60.0
    cell_size: float = 0.05
    control_period: float = 0.1
    max_linear_speed: float = 0.5
    max_angular_speed: float = 1.0
    waypoint_tolerance: float = 0.05
    level_y: float | None = None

    def __post_init__(self) -> None:
        self.cameras = tuple(self.cameras)
        for name in (
            "forward_step",
            "turn_angle",
            "cell_size",
            "control_period",
            "max_linear_speed",
            "max_angular_speed",
            "waypoint_tolerance",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"SimConfig.{name} must be a positive number, got {value!r}")
        if not self.cameras:
            raise ValueError("SimConfig.cameras must hold at least one CameraSpec")
        keys = [k for cam, mods in self._camera_keys() for k in mods.values()]
        if len(keys) != len(set(keys)):
            raise ValueError(
                f"SimConfig.cameras give duplicate observation keys {sorted(keys)}: set distinct uuids"
            )

    def _camera_keys(self) -> list[tuple[CameraSpec, dict[str, str]]]:
        """Per camera, modality -> observation key."""
        out = []
        for i, cam in enumerate(self.cameras):
            out.append((cam, {m: (m if i == 0 else f"{cam.uuid}_{m}") for m in cam.modalities}))
        return out

    def observation_keys(self) -> dict[str, tuple[CameraSpec, str]]:
        """Observation key -> (camera, modality)."""
        return {key: (cam, m) for cam, mods in self._camera_keys() for m, key in mods.items()}


@dataclass
class AgentState:
    """Where the agent is: ``position`` (3,) on the floor, ``rotation`` [x,y,z,w] about +y, camera
    ``tilt``°."""

    position: np.ndarray
    rotation: np.ndarray
    tilt: float = 0.0

    @property
    def yaw(self) -> float:
        """Heading in radians (0 looks along −z, positive turns left)."""
        return yaw_from_quaternion(self.rotation)


class Simulator:
    """A scene, an agent and its cameras.

    Args:
        scene: a :class:`Scene` or the path of a scene file (GLB/glTF, see :func:`envs.scenes.load_scene`).
        config: agent, camera and motion settings.
    """

    def __init__(self, scene: Scene | str | Path, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.scene = scene if isinstance(scene, Scene) else load_scene(scene)
        self.grid = NavGrid.from_scene(
            self.scene, self.config.body, self.config.cell_size, self.config.level_y
        )
        self.solver = GeodesicSolver(self.grid)
        self._followers: dict[float, ShortestPathFollower] = {}
        self._renderer: Renderer | None = None
        self._keys = self.config.observation_keys()
        self._camera_keys = self.config._camera_keys()
        self.collided = False
        self.n_collisions = 0
        start = self.grid.sample_navigable_point(np.random.default_rng(0))
        self._state = AgentState(start, quaternion_from_yaw(0.0))

    # ----------------------------------------------------------------- state
    @property
    def renderer(self) -> Renderer:
        """The scene's renderer, created on first use (so pure navigation work needs no GL context)."""
        if self._renderer is None:
            self._renderer = Renderer(self.scene)
        return self._renderer

    def set_agent_state(self, position, rotation, tilt: float = 0.0) -> None:
        """Place the agent.

        Args:
            position: (3,) metres; must lie on the navigable area (within 0.5 m of the floor).
            rotation: (4,) unit quaternion [x, y, z, w]; only its yaw about +y is kept.
            tilt: camera pitch in degrees.

        Raises:
            ValueError: the position is not navigable or the quaternion is invalid; the message names the
                value.
        """
        position = np.asarray(position, dtype=np.float64).reshape(-1)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            raise ValueError(f"agent position must be 3 finite numbers [x, y, z], got {position.tolist()}")
        if not self.grid.is_navigable(position):
            nearest = self.grid.snap(position)
            gap = float(np.linalg.norm(nearest - position)) if nearest is not None else float("inf")
            raise ValueError(
                f"agent position {np.round(position, 3).tolist()} is not on the navigable area of scene "
                f"{self.scene.name!r} (nearest navigable point {gap:.2f} m away)"
            )
        yaw = yaw_from_quaternion(rotation)
        floor = self.grid.height_at(position[0], position[2])
        pos = np.array([position[0], floor, position[2]], dtype=np.float32)
        self._state = AgentState(pos, quaternion_from_yaw(yaw), float(tilt))
        self.collided = False

    def get_agent_state(self) -> AgentState:
        """A copy of the agent's state."""
        s = self._state
        return AgentState(s.position.copy(), s.rotation.copy(), s.tilt)

    # ----------------------------------------------------------------- motion
    def step(self, action: int, observe: bool = True) -> dict[str, np.ndarray]:
        """Apply one discrete action (see the module docstring).

        Returns:
            The new observation, or an empty dict when ``observe`` is False (navigation-only work such as
            expert rollouts need no frames).
        """
        action = int(action)
        s = self._state
        self.collided = False
        if action == MOVE_FORWARD:
            yaw, step = s.yaw, self.config.forward_step
            self._move((-step * math.sin(yaw), 0.0, -step * math.cos(yaw)))
        elif action in (TURN_LEFT, TURN_RIGHT):
            sign = 1.0 if action == TURN_LEFT else -1.0
            s.rotation = quaternion_from_yaw(s.yaw + sign * math.radians(self.config.turn_angle))
        elif action in (LOOK_UP, LOOK_DOWN):
            sign = 1.0 if action == LOOK_UP else -1.0
            s.tilt = float(
                np.clip(s.tilt + sign * self.config.tilt_angle, -self.config.max_tilt, self.config.max_tilt)
            )
        elif action != STOP:
            raise ValueError(f"unknown action {action}: expected 0..5 ({', '.join(ACTION_NAMES)})")
        return self.observe() if observe else {}

    def _move(self, delta) -> None:
        new_pos, collided = try_move(self.grid, self._state.position, delta)
        self._state.position = new_pos
        if collided:
            self.collided = True
            self.n_collisions += 1

    def move_along(
        self, waypoints, max_duration: float | None = None, observe: bool = True, on_tick=None
    ) -> dict[str, np.ndarray]:
        """Follow waypoints given in the agent frame with a velocity-limited controller.

        Args:
            waypoints: (N, 3) ``(dx, dy, dyaw)``: dx metres forward, dy metres to the left, dyaw radians (left
                positive), relative to the pose at the call. The controller turns toward each waypoint and
                drives at most ``max_linear_speed``, turning at most ``max_angular_speed``, one tick per
                ``control_period``; collisions slide and set :attr:`collided`.
            max_duration: seconds before giving up (default: enough time for the path at full speed, ×2).
            observe: render the observation at the end (False: return an empty dict).
            on_tick: called with no argument after every control tick (to record the poses of a drive).

        Returns:
            The observation at the end, or an empty dict when ``observe`` is False.
        """
        wps = np.asarray(waypoints, dtype=np.float64).reshape(-1, 3)
        if not np.all(np.isfinite(wps)):
            raise ValueError("move_along: waypoints must be finite (N, 3) arrays of (dx, dy, dyaw)")
        s = self._state
        yaw0, origin = s.yaw, s.position.astype(np.float64)
        c, si = math.cos(yaw0), math.sin(yaw0)
        forward, left = np.array([-si, 0.0, -c]), np.array([-c, 0.0, si])
        targets = [(origin + dx * forward + dy * left, yaw0 + dyaw) for dx, dy, dyaw in wps]
        cfg = self.config
        path = np.concatenate([[[0.0, 0.0]], wps[:, :2]])
        budget = max_duration or 2.0 * (
            np.linalg.norm(np.diff(path, axis=0), axis=1).sum() / cfg.max_linear_speed
            + np.abs(wps[:, 2]).sum() / cfg.max_angular_speed
            + cfg.control_period
        )
        self.collided, collided, t = False, False, 0.0
        for k, (target, target_yaw) in enumerate(targets):
            last = k == len(targets) - 1
            while t < budget:
                done, hit = self._control_tick(target, target_yaw if last else None)
                collided |= hit
                if on_tick is not None:
                    on_tick()
                t += cfg.control_period
                if done:
                    break
        self.collided = collided
        return self.observe() if observe else {}

    def control_tick(self, target, target_yaw: float | None = None) -> tuple[bool, bool]:
        """One control period toward the world point ``target`` (3,), within the speed limits, then toward
        ``target_yaw`` once there (when given); sets :attr:`collided` for this tick.

        Returns:
            (reached, stuck): the target (and yaw) reached; blocked by an obstacle without moving.
        """
        self.collided = False
        return self._control_tick(np.asarray(target, dtype=np.float64).reshape(3), target_yaw)

    def _control_tick(self, target: np.ndarray, target_yaw: float | None) -> tuple[bool, bool]:
        """One control period toward ``target``; returns (reached, collided)."""
        cfg, s = self.config, self._state
        offset = target - s.position
        dist = math.hypot(offset[0], offset[2])
        max_turn = cfg.max_angular_speed * cfg.control_period
        if dist <= cfg.waypoint_tolerance:
            if target_yaw is None:
                return True, False
            err = _wrap(target_yaw - s.yaw)
            s.rotation = quaternion_from_yaw(s.yaw + float(np.clip(err, -max_turn, max_turn)))
            return abs(err) <= max_turn, False
        heading = math.atan2(-offset[0], -offset[2])
        err = _wrap(heading - s.yaw)
        s.rotation = quaternion_from_yaw(s.yaw + float(np.clip(err, -max_turn, max_turn)))
        if abs(err) > math.radians(30.0):
            return False, False
        yaw = s.yaw
        step = min(dist, cfg.max_linear_speed * cfg.control_period)
        before = s.position.copy()
        self._move(step * np.array([-math.sin(yaw), 0.0, -math.cos(yaw)]))
        hit = self.collided
        stuck = hit and np.linalg.norm(s.position - before) < 1e-3
        return stuck, hit

    # ----------------------------------------------------------------- sensing
    def observe(self) -> dict[str, np.ndarray]:
        """Render every camera at the current pose: ``rgb`` (H,W,3) uint8, ``depth`` (H,W,1) float32 m, ..."""
        s = self._state
        out: dict[str, np.ndarray] = {}
        for cam, mods in self._camera_keys:
            spec = cam if s.tilt == 0.0 else dataclasses.replace(cam, pitch=cam.pitch + s.tilt)
            frames = self.renderer.render(spec, s.position, s.rotation)
            for m, key in mods.items():
                out[key] = frames[m]
        return out

    def render_at(self, position, rotation, camera: CameraSpec | None = None) -> dict[str, np.ndarray]:
        """Render a camera (default: the first) at an arbitrary pose, without moving the agent."""
        return self.renderer.render(
            camera or self.config.cameras[0], np.asarray(position), np.asarray(rotation)
        )

    # ----------------------------------------------------------------- navigation
    def geodesic_distance(self, a, b) -> float:
        """Shortest obstacle-avoiding walking distance in metres from ``a`` to ``b`` (inf when
        unreachable)."""
        return self.solver.geodesic_distance(np.asarray(a), np.asarray(b))

    def shortest_path(self, a, b) -> np.ndarray:
        """(N, 3) waypoints of the shortest path from ``a`` to ``b``; empty when unreachable."""
        return self.solver.shortest_path(np.asarray(a), np.asarray(b))

    def is_navigable(self, p) -> bool:
        """Whether the agent may stand at ``p``."""
        return self.grid.is_navigable(np.asarray(p))

    def sample_navigable_point(self, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random navigable point of the largest connected region."""
        return self.grid.sample_navigable_point(rng)

    def expert_action(self, goal, goal_radius: float | None = None) -> int:
        """The shortest-path follower's next discrete action toward ``goal`` (STOP inside the radius)."""
        radius = 0.5 if goal_radius is None else float(goal_radius)
        if radius not in self._followers:
            self._followers[radius] = ShortestPathFollower(
                self.solver, radius, self.config.forward_step, self.config.turn_angle
            )
        return int(
            self._followers[radius].next_action(self._state.position, self._state.yaw, np.asarray(goal))
        )

    def topdown_map(self, scale: int = 2) -> TopDownMap:
        """A top-down map of the navigable area, for videos and the viewer."""
        g = self.grid
        return TopDownMap(g.navigable, g.origin, g.cell_size, scale=scale)

    def close(self) -> None:
        """Release GL resources."""
        if self._renderer is not None:
            self._renderer.release()
            self._renderer = None


def _wrap(angle: float) -> float:
    """Wrap an angle to (−π, π]."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi
