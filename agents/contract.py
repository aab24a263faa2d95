"""What an agent declares about itself: its action interface, the tasks it accepts, its cameras and the shape
of
its training sample.

Every :class:`agents.base.Agent` subclass carries these declarations as class attributes, checked when the
class
is defined (:func:`check_declarations`). Benchmarks, collection, periodic evaluation, the datasets and the
viewer
read them (:func:`interface_of` also answers for plain callables and wrappers) instead of guessing.

Tasks and the goal each one gives the agent (:data:`GOAL_KINDS`)::

    vln        instruction   (``instruction_text``, ``instruction`` token ids)
    pointnav   point         (``pointgoal``: distance m, angle rad, left positive)
    imagenav   image         (``imagegoal``: RGB rendered at the goal pose)
    explore    none

Training samples (:class:`SampleSpec`, after LeRobot's ``delta_timestamps`` and diffusion_policy's
``horizon``):

- ``trajectory``: a whole padded episode (Seq2Seq, CMA, RDP), batches of ``(B, T, ...)``;
- ``window``: one time step ``t`` of an episode with ``history`` earlier frames every ``stride`` steps and
  ``horizon`` future poses every ``future_stride`` steps as agent-frame ``(dx, dy, dyaw)`` targets (NavDP,
  System 2, the System-1 baselines), batches of ``(B, ...)``;
- ``pixel_goal``: System 2's queries, every ``sample_every`` steps of an expert episode: up to ``history``
  earlier frames, the current one, the view of the agent's look-down camera (``lookdown``) and the answer
  (a pixel goal, turn arrows or STOP; :mod:`envs.tasks.pixel_goal`), batches of ``(B, ...)`` with ragged
  values as lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from envs.render import CameraSpec
from envs.sim import SimConfig

#: Action interfaces: discrete VLN-CE ids, or agent-frame waypoints followed by the simulator's controller.
ACTION_MODES = ("discrete", "waypoint")
#: The goal each task hands the agent.
GOAL_KINDS: Mapping[str, str] = {
    "vln": "instruction",
    "pointnav": "point",
    "imagenav": "image",
    "explore": "none",
}
#: Sample kinds (see the module docstring).
SAMPLE_KINDS = ("trajectory", "window", "pixel_goal")
#: Where a camera sits: on the agent (moving with it) or at the episode's goal pose (an image goal).
CAMERA_MOUNTS = ("agent", "goal")
#: Observation / batch key of the main camera's modalities; other cameras are keyed ``<uuid>_<modality>``.
MAIN_CAMERA = "camera"
#: Metres above the floor of the System-1 agents' cameras (NavDP, its baselines, DD-PPO): low, as on NavDP's
#: benchmark robot (a Dingo base with the camera 0.3 m above it), so that an obstacle beside the path stays
#: in view up to contact. At the simulator's default 1.25 m (Habitat's, VLN's) with a 90° field of view,
#: nothing below the camera nearer than about 0.7 m is seen, and a planner walks into furniture it cannot see.
SYSTEM1_CAMERA_HEIGHT = 0.4
#: Images a camera may give: ``category`` (H, W) int32 is each pixel's instance category code
#: (:func:`envs.scenes.scene.category_code`), as ground-truth semantics.
CAMERA_MODALITIES = ("rgb", "depth", "category")


@dataclass(frozen=True)
class CameraRequest:
    """A camera the agent needs.

    The first request of an agent is its main camera (uuid ``camera``, on the agent, pitch 0): its frames are
    the observations ``rgb`` / ``depth``. Other agent-mounted cameras (a look-down camera for System 2)
    appear as
    ``<uuid>_rgb`` / ``<uuid>_depth``; a camera mounted at the goal renders the image goal ``imagegoal``.

    Attributes:
        uuid: the camera's name (the observation-key prefix).
        width, height: pixels; None takes the main camera's size (the benchmark's or the training data's).
        hfov: horizontal field of view in degrees; None takes the main camera's.
        pitch: degrees about the camera's x axis, positive looks up (a look-down camera is negative).
        mount: ``agent`` or ``goal``.
        modalities: which images, a subset of :data:`CAMERA_MODALITIES` (the environment's default main
            camera gives ``rgb`` and ``depth``).
        mount_height: metres above the floor (of the agent, or of the goal for a goal camera); None takes the
            main camera's, whose own None is the simulator's default (1.25 m).
    """

    uuid: str = MAIN_CAMERA
    width: int | None = None
    height: int | None = None
    hfov: float | None = None
    pitch: float = 0.0
    mount: str = "agent"
    modalities: tuple[str, ...] = ("rgb", "depth")
    mount_height: float | None = None

    def __post_init__(self) -> None:
        where = f"CameraRequest({self.uuid!r})"
        if not self.uuid or not self.uuid.replace("_", "").isalnum():
            raise ValueError(f"{where}: uuid must be a non-empty identifier, got {self.uuid!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{where}: {name} must be a positive int or None, got {value!r}")
        if self.hfov is not None and not 0.0 < self.hfov < 180.0:
            raise ValueError(f"{where}: hfov must lie in (0, 180) degrees, got {self.hfov!r}")
        if not -90.0 <= self.pitch <= 90.0:
            raise ValueError(f"{where}: pitch must lie in [-90, 90] degrees, got {self.pitch!r}")
        if self.mount not in CAMERA_MOUNTS:
            raise ValueError(f"{where}: mount must be one of {CAMERA_MOUNTS}, got {self.mount!r}")
        if self.mount_height is not None and not 0.0 < self.mount_height <= 3.0:
            raise ValueError(
                f"{where}: mount_height must lie in (0, 3] metres or be None, got {self.mount_height!r}"
            )
        if not self.modalities or set(self.modalities) - set(CAMERA_MODALITIES):
            raise ValueError(
                f"{where}: modalities must be a non-empty subset of {CAMERA_MODALITIES}, "
                f"got {self.modalities}"
            )

    def keys(self) -> dict[str, str]:
        """Modality -> observation key: ``rgb``/``depth`` for the main camera, ``imagegoal`` for a goal
        camera's
        RGB, ``<uuid>_<modality>`` otherwise."""
        if self.mount == "goal":
            return {m: ("imagegoal" if m == "rgb" else f"{self.uuid}_{m}") for m in self.modalities}
        if self.uuid == MAIN_CAMERA:
            return {m: m for m in self.modalities}
        return {m: f"{self.uuid}_{m}" for m in self.modalities}


@dataclass(frozen=True)
class SampleSpec:
    """The shape of one training sample; see the module docstring.

    Attributes:
        kind: ``trajectory``, ``window`` or ``pixel_goal``.
        history: window: frames before the current one, frame ``t - k * stride`` for ``k = history..1``,
            clamped to the episode's first frame (``history_mask`` says which are real); pixel_goal: at most
            this many earlier frames, at ``unique(floor(linspace(0, t - 1, history)))``. Default 0, for
            ``pixel_goal`` 8 (InternVLA-N1's ``num_history``).
        stride: steps between history frames (window).
        horizon: future poses ``t + k * future_stride`` for ``k = 1..horizon`` turned into agent-frame
            ``(dx, dy, dyaw)`` targets (window only), clamped to the last pose (``future_mask``).
        future_stride: steps between future poses.
        sample_every: draw samples only at steps ``t`` with ``t % sample_every == 0``. Default 1, for
            ``pixel_goal`` 4 (InternVLA-N1's ``sample_step``).
        lookdown: pixel_goal: uuid of the agent's look-down camera (a declared :class:`CameraRequest` on the
            agent, pitched down), whose view and depth the items carry as ``lookdown`` / ``lookdown_depth``.
        min_goal_frames, max_goal_frames: pixel_goal: a pixel goal is a future path point between these many
            steps ahead (:func:`envs.tasks.pixel_goal.choose_pixel_goal`).
        max_arrows: pixel_goal: at most this many turn arrows in an answer.
        stop_repeat: pixel_goal: copies of each episode's STOP sample (InternVLA-N1 oversamples them x5).
        augment: pixel_goal: colour augmentation of the history and current frames (never the look-down).
        system1_points: pixel_goal: when > 0, only pixel-goal queries are kept, each repeated for up to this
            many System-1 frames (every 2nd step from the query step to its goal step; InternVLA-N1's dual
            systems: 12), and items also hold that frame and the future poses from it
            (:class:`trainers.data.pixel_goals.PixelGoalDataset`).
        pixel_goal_mask: window: items also hold ``pixelgoal`` (H, W) uint8, the goal's box in the current
            frame (:func:`envs.tasks.pixel_goal.pixel_goal_mask`), and ``pixelgoal_visible`` () bool.
    """

    kind: str = "trajectory"
    history: int | None = None
    stride: int = 1
    horizon: int = 0
    future_stride: int = 1
    sample_every: int | None = None
    lookdown: str = "lookdown"
    min_goal_frames: int = 3
    max_goal_frames: int = 16
    max_arrows: int = 4
    stop_repeat: int = 5
    augment: bool = True
    pixel_goal_mask: bool = False
    system1_points: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SAMPLE_KINDS:
            raise ValueError(f"SampleSpec.kind must be one of {SAMPLE_KINDS}, got {self.kind!r}")
        pixel_goal = self.kind == "pixel_goal"
        if self.history is None:  # the kind's default (frozen: set through object.__setattr__)
            object.__setattr__(self, "history", 8 if pixel_goal else 0)
        if self.sample_every is None:
            object.__setattr__(self, "sample_every", 4 if pixel_goal else 1)
        for name in ("history", "horizon"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"SampleSpec.{name} must be an int >= 0, got {getattr(self, name)!r}")
        positive = ("stride", "future_stride", "sample_every", "min_goal_frames", "max_arrows", "stop_repeat")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"SampleSpec.{name} must be an int >= 1, got {getattr(self, name)!r}")
        if not isinstance(self.max_goal_frames, int) or self.max_goal_frames < self.min_goal_frames:
            raise ValueError(
                f"SampleSpec.max_goal_frames must be an int >= min_goal_frames={self.min_goal_frames}, "
                f"got {self.max_goal_frames!r}"
            )
        if not self.lookdown or not self.lookdown.replace("_", "").isalnum():
            raise ValueError(f"SampleSpec.lookdown must be a camera uuid, got {self.lookdown!r}")
        if self.kind == "trajectory" and (self.history or self.horizon):
            raise ValueError("SampleSpec: history and horizon apply to kind='window' only")
        if pixel_goal and self.horizon:
            raise ValueError("SampleSpec: horizon applies to kind='window' only, not 'pixel_goal'")
        if self.system1_points and (not pixel_goal or self.system1_points < 0):
            raise ValueError(
                f"SampleSpec.system1_points must be >= 0 and applies to kind='pixel_goal' only, got "
                f"{self.system1_points!r} with kind={self.kind!r}"
            )
        if self.pixel_goal_mask and self.kind != "window":
            raise ValueError("SampleSpec: pixel_goal_mask applies to kind='window' only")


@dataclass(frozen=True)
class AgentInterface:
    """An agent's declarations as one value (see :func:`interface_of`)."""

    action_mode: str = "discrete"
    n_waypoints: int = 0
    tasks: tuple[str, ...] = ("vln",)
    requires_expert: bool = False
    cameras: tuple[CameraRequest, ...] = (CameraRequest(),)
    requires_navigator: bool = False

    @property
    def goal_kinds(self) -> tuple[str, ...]:
        """The goal kinds of the accepted tasks (``instruction``, ``point``, ``image``, ``none``)."""
        return tuple(GOAL_KINDS[t] for t in self.tasks)

    def check_task(self, task: str, who: str) -> None:
        """Raise ``ValueError`` naming ``who``, ``task`` and the accepted tasks unless ``task`` is
        accepted."""
        if task not in self.tasks:
            raise ValueError(
                f"{who} does not accept task {task!r} (goal kind {GOAL_KINDS.get(task, '?')!r}); it accepts "
                f"{list(self.tasks)} (goal kinds {list(self.goal_kinds)})"
            )


def check_declarations(cls: type) -> None:
    """Check an agent class's declarations; raises ``TypeError`` naming the class and the attribute."""
    where = cls.__name__

    def fail(attr: str, expected: str) -> None:
        raise TypeError(f"agent class {where}: `{attr}` must be {expected}, got {getattr(cls, attr, None)!r}")

    if cls.action_mode not in ACTION_MODES:
        fail("action_mode", f"one of {ACTION_MODES}")
    if not isinstance(cls.n_waypoints, int) or cls.n_waypoints < 0:
        fail("n_waypoints", "an int >= 0")
    if cls.action_mode == "waypoint" and cls.n_waypoints < 1:
        fail("n_waypoints", "an int >= 1 for action_mode='waypoint'")
    if not isinstance(cls.tasks, tuple) or not cls.tasks or set(cls.tasks) - set(GOAL_KINDS):
        fail("tasks", f"a non-empty tuple of {tuple(GOAL_KINDS)}")
    if not isinstance(cls.requires_expert, bool):
        fail("requires_expert", "a bool")
    if not isinstance(getattr(cls, "requires_navigator", False), bool):
        fail("requires_navigator", "a bool")
    cams = cls.cameras
    if not isinstance(cams, tuple) or not cams or not all(isinstance(c, CameraRequest) for c in cams):
        fail("cameras", "a non-empty tuple of CameraRequest")
    main = cams[0]
    if main.uuid != MAIN_CAMERA or main.mount != "agent" or main.pitch != 0.0:
        fail(
            "cameras",
            f"a tuple whose first entry is the main camera (uuid {MAIN_CAMERA!r}, on the agent, pitch 0)",
        )
    if len({c.uuid for c in cams}) != len(cams):
        fail("cameras", "a tuple of cameras with distinct uuids")
    if not isinstance(cls.sample, SampleSpec):
        fail("sample", "a SampleSpec")
    if cls.sample.kind == "pixel_goal":
        down = [c for c in cams if c.uuid == cls.sample.lookdown and c.mount == "agent" and c.pitch < 0.0]
        if not down:
            fail(
                "cameras",
                f"a tuple declaring the look-down camera of sample kind 'pixel_goal': a CameraRequest with "
                f"uuid {cls.sample.lookdown!r} (SampleSpec.lookdown), on the agent, pitch < 0",
            )


def interface_of(policy: Any) -> AgentInterface:
    """The declarations of an agent (class or instance), of a wrapper exposing an ``agent``, or the defaults
    of
    a plain callable or an object declaring only part of them (discrete actions, every task, the main
    camera)."""
    target = policy
    while not hasattr(target, "action_mode") and hasattr(target, "agent"):
        target = target.agent
    return AgentInterface(
        action_mode=getattr(target, "action_mode", "discrete"),
        n_waypoints=int(getattr(target, "n_waypoints", 0)),
        tasks=tuple(getattr(target, "tasks", tuple(GOAL_KINDS))),
        requires_expert=bool(getattr(target, "requires_expert", False)),
        cameras=tuple(getattr(target, "cameras", (CameraRequest(),))),
        requires_navigator=bool(getattr(target, "requires_navigator", False)),
    )


def camera_spec(
    request: CameraRequest, width: int, height: int, hfov: float, mount_height: float | None = None
) -> CameraSpec:
    """The renderer's camera for ``request``; its open size, field of view and mount height are the main
    camera's (``mount_height`` None: the renderer's default)."""
    spec = CameraSpec(
        uuid=request.uuid,
        width=request.width or int(width),
        height=request.height or int(height),
        hfov=float(request.hfov if request.hfov is not None else hfov),
        pitch=float(request.pitch),
        modalities=tuple(request.modalities),
    )
    above = request.mount_height if request.mount_height is not None else mount_height
    return spec if above is None else dataclasses.replace(spec, position=(0.0, float(above), 0.0))


def agent_cameras(
    interface: AgentInterface, width: int, height: int, hfov: float, mount_height: float | None = None
) -> tuple[CameraSpec, ...]:
    """The simulator's cameras for an agent: the main camera at ``width``×``height`` then every other camera
    mounted on the agent (goal cameras are rendered by the image-goal task or the dataset, not carried), at
    the main camera's declared height, else at ``mount_height`` (None: the renderer's default)."""
    main = interface.cameras[0].mount_height
    above = main if main is not None else mount_height
    return tuple(camera_spec(c, width, height, hfov, above) for c in interface.cameras if c.mount == "agent")


def goal_camera(interface: AgentInterface, width: int, height: int, hfov: float) -> CameraSpec | None:
    """The agent's goal camera (an image goal rendered at the goal pose) as the renderer's, or None."""
    goal = [c for c in interface.cameras if c.mount == "goal"]
    return camera_spec(goal[0], width, height, hfov, interface.cameras[0].mount_height) if goal else None


def agent_sim_config(
    interface: AgentInterface, width: int, height: int, hfov: float, mount_height: float | None = None
) -> SimConfig | None:
    """The simulator settings that mount the agent's cameras (``mount_height``: as in :func:`agent_cameras`),
    or None when the environment's default camera at ``width``×``height`` (one camera, RGB-D, at the default
    height) is what the agent needs."""
    cameras = agent_cameras(interface, width, height, hfov, mount_height)
    default = CameraSpec(width=int(width), height=int(height), hfov=float(hfov))
    return SimConfig(cameras=cameras) if cameras != (default,) else None
