"""Interactive rollouts in the browser: watch the expert or an agent, or drive the agent with the keyboard.

``python -m benchmarks.play [--episodes SPLIT] [--scenes-dir DIR] [--checkpoint AGENT_DIR]`` serves one VLN
environment at ``http://127.0.0.1:8765/`` (standard library only; JSON in and out, images as PNG, no pickles):

- ``GET /`` the page (``play_static/``), ``GET /static/<file>`` its files, ``GET /api/episodes`` the ids.
- ``GET /api/state``: episode id, instruction, step count, live metrics, done flag, last controller, pose.
- ``GET /frame/{rgb,depth,map,frame}.png``: the RGB view, the depth view, the top-down map (path, reference,
  goal) and the whole video frame with its instruction caption.
- ``POST /api/reset {"episode_id"?: str, "seed"?: int}``: that episode, else the next one in seeded order.
- ``POST /api/step {"action": 0..3}`` (0 STOP, 1 FORWARD, 2 LEFT, 3 RIGHT) or ``{"controller": "expert" |
  "agent"}``: one step.
- ``POST /api/run {"controller": ..., "max_steps"?: N}``: steps until the episode ends or N steps.
- ``POST /api/video {}``: writes the episode so far as an MP4 (RGB | depth | map + caption), returns
  ``{"path", "frames"}``.

Refused requests get a 4xx status and ``{"error": message}``; only the page this server serves may drive it
(see :mod:`benchmarks.play_server`, the HTTP side).

All environment work runs on the one thread that calls :meth:`JobQueue.work` (the main thread of the command):
the process's EGL context renders only on the thread where it is current, and one owner thread also
serialises the requests. A loaded agent sees every step whoever chose the action, so its memory follows the
episode (``record_actions`` gives it the executed action); every step goes through
:class:`envs.rollout.EpisodeRunner`, the rollout loop's body.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from agents.contract import agent_sim_config, interface_of
from benchmarks.play_server import (
    MAX_BODY_BYTES,
    MAX_RUN_STEPS,
    JobQueue,
    PlayError,
    PlayServer,
    check_host,
    start_server,
)
from envs.env import NavEnv
from envs.rollout import EpisodeRunner, batch_observation, write_video
from envs.visualize import caption_strip, compose_frame, depth_to_rgb

__all__ = [
    "MAX_BODY_BYTES", "JobQueue", "PlayError", "PlayServer", "PlaySession", "check_host", "load_play_agent",
    "main", "start_server",
]  # fmt: skip

logger = logging.getLogger(__name__)

ACTION_NAMES = ("STOP", "FORWARD", "LEFT", "RIGHT")
IMAGES = ("rgb", "depth", "map", "frame")


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(out, format="PNG", compress_level=1)
    return out.getvalue()


class PlaySession:
    """One VLN environment, an optional agent and the current episode's frames; to be used from one thread.

    ``done`` tells whether the episode ended (STOP or the step limit).

    Args:
        episodes: an R2R-CE split folder or episode file; None for the default generated dataset.
        scenes_dir: folder the episodes' ``scene_id`` paths are relative to (default: beside the split).
        agent: an agent (``reset(n_envs)``, ``act(obs_batch, deterministic) -> (B,)`` actions), or None.
        agent_label: how the page names the agent (default: its ``name``).
        size: camera width and height in pixels; the map is drawn at the same height.
        output_dir: where :meth:`save_video` writes MP4 files.
    """

    def __init__(
        self,
        episodes: str | Path | None = None,
        scenes_dir: str | Path | None = None,
        agent: Any = None,
        agent_label: str | None = None,
        size: int = 256,
        output_dir: str | Path = "outputs/play",
    ) -> None:
        if not 16 <= int(size) <= 1024:
            raise ValueError(f"size must be 16..1024 pixels, got {size}")
        # The agent's declarations: the viewer plays VLN with discrete actions and mounts the agent's cameras.
        interface = interface_of(agent)
        if agent is not None:
            who = f"agent {agent_label or getattr(agent, 'name', type(agent).__name__)!r} in the viewer"
            interface.check_task("vln", who)
            if interface.action_mode != "discrete":
                raise ValueError(f"{who}: the viewer drives discrete actions, the agent acts with waypoints")
        sim_config = agent_sim_config(interface, size, size, 90.0)
        self.env = NavEnv(
            task="vln",
            episodes=episodes,
            scenes_dir=scenes_dir,
            width=size,
            height=size,
            sim_config=sim_config,
        )
        # Steps go through the one rollout loop body; the actions are chosen here (keyboard, expert, agent).
        self._runner = EpisodeRunner(self.env)
        self.size, self.output_dir = int(size), Path(output_dir)
        self.agent, self.agent_label = agent, agent_label or getattr(agent, "name", None)
        if hasattr(agent, "eval"):
            agent.eval()
        self._agent_wants_expert = agent is not None and interface.requires_expert
        self.episode_ids = [ep.episode_id for ep in self.env.dataset.episodes]
        # _version counts the frames recorded in this session: the page's image cache key.
        self._video, self._n_videos, self._version = None, 0, 0
        self.reset(seed=0)

    def reset(self, episode_id: str | None = None, seed: int | None = None) -> dict[str, Any]:
        """Start ``episode_id``, else the next episode of the order ``seed`` fixes; returns :meth:`state`.

        Raises:
            PlayError: 404 when the split has no episode ``episode_id``.
        """
        if episode_id is not None and episode_id not in self.episode_ids:
            ids = ", ".join(self.episode_ids[:10]) + (", ..." if len(self.episode_ids) > 10 else "")
            raise PlayError(404, f"no episode_id {episode_id!r} in {self.env.dataset.source}; ids: {ids}")
        options = None if episode_id is None else {"episode_id": episode_id}
        self._obs, _ = self._runner.reset(seed=seed, options=options)
        if self.agent is not None:
            self.agent.reset(1)
        self._steps, self._terminated, self._truncated, self.done = 0, False, False, False
        self._controller, self._last_action, self._frames = None, None, []
        self._record()
        return self.state()

    def step(self, action: int | None = None, controller: str | None = None) -> dict[str, Any]:
        """One step with ``action`` (0..3) or with the choice of ``controller`` (``expert`` / ``agent``).

        Raises:
            PlayError: 400 for both or neither argument, or ``agent`` without an agent; 409 after the end.
        """
        if (action is None) == (controller is None):
            raise PlayError(400, 'give exactly one of {"action": 0..3} or {"controller": "expert" | "agent"}')
        self._check_can_step(controller)
        self._step_once(action, controller)
        return self.state()

    def run(self, controller: str, max_steps: int = MAX_RUN_STEPS) -> dict[str, Any]:
        """Steps by ``controller`` until the episode ends or ``max_steps``; :meth:`state` plus ``ran``."""
        self._check_can_step(controller)
        ran = 0
        while not self.done and ran < max_steps:
            self._step_once(None, controller)
            ran += 1
        return {**self.state(), "ran": ran}

    def _check_can_step(self, controller: str | None) -> None:
        if self.done:
            raise PlayError(409, f"episode {self.env.episode.episode_id} is over: reset to start another")
        if controller == "agent" and self.agent is None:
            raise PlayError(400, "no agent loaded: start the server with --checkpoint AGENT_DIR to use it")

    def _step_once(self, action: int | None, controller: str | None) -> None:
        agent_action = self._agent_action() if self.agent is not None else None
        if controller == "agent":
            action = agent_action
        elif controller == "expert":
            action = self.env.expert_action()
        if agent_action is not None and action != agent_action:
            self.agent.record_actions(np.array([action], dtype=np.int64))
        self._obs, _, self._terminated, self._truncated, _ = self._runner.step(int(action))
        self.done = self._terminated or self._truncated
        self._steps += 1
        self._controller, self._last_action = controller or "keyboard", int(action)
        self._record()

    def _agent_action(self) -> int:
        import torch

        batch = batch_observation(self._obs)
        if self._agent_wants_expert:
            batch["expert_action"] = np.array([self.env.expert_action()], dtype=np.int64)
        with torch.inference_mode():
            action = int(np.asarray(self.agent.act(batch, deterministic=True)).reshape(-1)[0])
        if not 0 <= action < len(ACTION_NAMES):
            raise RuntimeError(f"agent {self.agent_label!r} returned action {action}, outside 0..3")
        return action

    def _record(self) -> None:
        """Compose RGB | depth | map (no caption) and keep it, PNG-compressed, for the video."""
        self._frame = compose_frame(self.env.sim, self._obs, self.env.task, height=self.size, caption="")
        self._frames.append(_png(self._frame))
        self._version += 1

    def _caption(self, frame: np.ndarray) -> np.ndarray:
        text = str(self._obs.get("instruction_text", "") or "")
        return np.concatenate([frame, caption_strip(text, frame.shape[1])], axis=0) if text else frame

    def image_png(self, name: str) -> bytes:
        """The current ``rgb``, ``depth``, ``map`` or whole ``frame`` (with its caption) as PNG bytes."""
        if name == "rgb":
            return _png(self._obs["rgb"])
        if name == "depth":
            return _png(depth_to_rgb(self._obs["depth"], self.env.sim.config.cameras[0].max_depth))
        if name == "map":  # compose_frame's panels: RGB and depth (``size`` wide each), then the map
            return _png(self._frame[:, 2 * self.size :])
        if name == "frame":
            return _png(self._caption(self._frame))
        raise PlayError(404, f"unknown image {name!r}; expected one of {list(IMAGES)}")

    def save_video(self) -> dict[str, Any]:
        """Write the episode so far as an MP4 in ``output_dir``; returns ``{"path", "frames"}``."""
        frames = [self._caption(np.asarray(Image.open(io.BytesIO(png)))) for png in self._frames]
        safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", self.env.episode.episode_id)
        self._n_videos += 1
        name = f"episode_{safe_id}_{time.strftime('%Y%m%d-%H%M%S')}_{self._n_videos:03d}.mp4"
        path = write_video(frames, self.output_dir / name, fps=self.env.metadata["render_fps"]).resolve()
        self._video = str(path)
        logger.info("saved %d frames to %s", len(frames), path)
        return {"path": self._video, "frames": len(frames)}

    def episodes(self) -> dict[str, Any]:
        """The split's episodes: ``{"episodes": [{"episode_id", "scene_id"}, ...]}``."""
        eps = self.env.dataset.episodes
        return {"episodes": [{"episode_id": e.episode_id, "scene_id": e.scene_id} for e in eps]}

    def state(self) -> dict[str, Any]:
        """The episode as the page shows it; positions in metres, heading in degrees (left = positive)."""
        ep, pose, metrics = self.env.episode, self.env.sim.get_agent_state(), self.env.metrics()
        return {
            "episode_id": ep.episode_id,
            "scene_id": ep.scene_id,
            "instruction": str(self._obs.get("instruction_text", "")),
            "step": self._steps,
            "max_steps": self.env.task.config.max_steps,
            "done": self.done,
            "truncated": self._truncated,
            "controller": self._controller,
            "last_action": None if self._last_action is None else ACTION_NAMES[self._last_action],
            "expert_action": None if self.done else ACTION_NAMES[self.env.expert_action()],
            # JSON has no NaN or infinity: unknown values become null.
            "metrics": {k: float(v) if math.isfinite(v) else None for k, v in metrics.items()},
            "position": [round(float(v), 4) for v in pose.position],
            "heading_deg": round(math.degrees(pose.yaw), 3),
            "collided": bool(self.env.sim.collided),
            "agent": self.agent_label,
            "frame": self._version,
            "video": self._video,
        }

    def close(self) -> None:
        """Release the environment."""
        self.env.close()


def load_play_agent(source: str, device: str = "cpu") -> tuple[Any, str]:
    """``(agent, label)`` from an agent folder, a checkpoint (``<run>/checkpoints/<step>`` or ``last``), a run
    folder, or the name of a built-in agent without weights (``expert``, ``random``, ``forward``).

    Raises:
        FileNotFoundError: ``source`` is none of these (the message lists the accepted forms).
        ValueError: ``source`` names a trainable agent, which needs a checkpoint.
    """
    from agents import AGENTS, load_agent, make_agent
    from benchmarks.config import find_agent_dir

    if source in AGENTS and not Path(source).exists():
        if AGENTS.get(source).is_trainable:
            raise ValueError(f"agent {source!r} is trainable: give the folder of one of its checkpoints")
        return make_agent(source), source
    agent_dir = find_agent_dir(Path(source))
    agent = load_agent(agent_dir, device=device)
    return agent, f"{agent.name} ({agent_dir})"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.play", description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", help="R2R-CE split folder or episode file (default: generated dataset)")
    parser.add_argument("--scenes-dir", help="folder the episodes' scene paths are relative to")
    parser.add_argument("--checkpoint", help="agent folder, checkpoint, run folder or built-in agent name")
    parser.add_argument("--device", default="cpu", help="torch device of the agent")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback by default)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    parser.add_argument("--size", type=int, default=256, help="camera width and height in pixels")
    parser.add_argument("--output-dir", default="outputs/play", help="where saved videos go")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: build the session, serve it, and render on this thread until Ctrl-C."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    check_host(args.host, args.allow_remote)
    agent, label = load_play_agent(args.checkpoint, args.device) if args.checkpoint else (None, None)
    session = PlaySession(args.episodes, args.scenes_dir, agent, label, args.size, args.output_dir)
    server = start_server(session, args.host, args.port)
    logger.info("NavGym play on %s (Ctrl-C to stop)", server.url)
    try:
        server.jobs.work()
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        server.shutdown()
        server.server_close()
        session.close()


if __name__ == "__main__":
    main()
