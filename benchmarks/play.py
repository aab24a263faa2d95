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

Refused requests get a 4xx status and ``{"error": message}``. Only the page this server serves may drive it:
a request must name this server in ``Host`` (``127.0.0.1:PORT``, ``localhost:PORT`` or the bound address;
any host once ``--allow-remote`` binds a non-loopback one), a request with an ``Origin`` must come from that
same origin (403 otherwise, so other web pages and DNS rebinding cannot reach the API), and a POST must carry
``Content-Type: application/json`` (415), which a page of another origin cannot send without being refused.
Bodies are capped at ``MAX_BODY_BYTES`` (413) and must be a JSON object (400, however deeply nested).

All environment work runs on the one thread that calls :meth:`JobQueue.work` (the main thread of the command):
the process's EGL context renders only on the thread where it is current, and one owner thread also
serialises the requests. A loaded agent sees every step
whoever chose the action, so its memory follows the episode (``record_actions`` gives it the executed action).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import ipaddress
import json
import logging
import math
import queue
import re
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from envs.env import NavEnv
from envs.rollout import EpisodeRunner, batch_observation, write_video
from envs.visualize import caption_strip, compose_frame, depth_to_rgb

logger = logging.getLogger(__name__)

ACTION_NAMES = ("STOP", "FORWARD", "LEFT", "RIGHT")
CONTROLLERS = ("expert", "agent")
IMAGES = ("rgb", "depth", "map", "frame")
STATIC_DIR = Path(__file__).with_name("play_static")
MAX_BODY_BYTES = 64 * 1024
# A refused body is read and dropped up to this size, so that a client still sending it reads the answer.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_TIMEOUT_S = 2.0
# A client that hangs up early: answered with nothing, logged without a traceback.
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
MAX_RUN_STEPS = 10_000
JOB_TIMEOUT_S = 600.0


class PlayError(Exception):
    """A refused request: the HTTP ``status`` and a ``message`` for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


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
        self.env = NavEnv(task="vln", episodes=episodes, scenes_dir=scenes_dir, width=size, height=size)
        # Steps go through the one rollout loop body; the actions are chosen here (keyboard, expert, agent).
        self._runner = EpisodeRunner(self.env)
        self.size, self.output_dir = int(size), Path(output_dir)
        self.agent, self.agent_label = agent, agent_label or getattr(agent, "name", None)
        if hasattr(agent, "eval"):
            agent.eval()
        # The built-in expert agent reads the environment's expert action from its observations.
        name = getattr(agent, "name", "")
        self._agent_wants_expert = bool(getattr(agent, "requires_expert", False) or name == "expert")
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


class JobQueue:
    """Runs callables on the one thread that calls :meth:`work` (the thread whose EGL context renders)."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()

    def call(self, fn: Callable[[], Any], timeout: float = JOB_TIMEOUT_S) -> Any:
        """``fn()`` run on the working thread: its result, or its exception raised here (503 on timeout)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((future, fn))
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise PlayError(503, f"the environment did not answer within {timeout:.0f} s") from None

    def work(self, until: Callable[[], bool] | None = None, poll_s: float = 0.05) -> None:
        """Run queued calls on this thread until ``until()`` is true (forever when None)."""
        while until is None or not until():
            try:
                future, fn = self._queue.get(timeout=poll_s)
            except queue.Empty:
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except Exception as err:  # the request that asked answers with it
                    future.set_exception(err)


def _show(value: Any, limit: int = 80) -> str:
    """``value`` as JSON for an error message, cut to ``limit`` characters."""
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        text = f"a nested {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _integer(low: int, high: int, what: str) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise PlayError(400, f"field {key!r} must be an integer {what}, got {_show(value)}")
        return value

    return check


def _controller(key: str, value: Any) -> str:
    if value not in CONTROLLERS:
        raise PlayError(400, f"field {key!r} must be one of {list(CONTROLLERS)}, got {_show(value)}")
    return value


def _episode_id(key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PlayError(400, f"field {key!r} must be a string, got {_show(value)}")
    return str(value)


_SEED = _integer(0, 2**63 - 1, ">= 0")
_ACTION = _integer(0, 3, "0..3 (0 STOP, 1 FORWARD, 2 LEFT, 3 RIGHT)")
_MAX_STEPS = _integer(1, MAX_RUN_STEPS, f"1..{MAX_RUN_STEPS}")
# POST path -> (PlaySession method, {field: validator}, required fields)
_POST_ROUTES: dict[str, tuple[str, dict[str, Callable[[str, Any], Any]], tuple[str, ...]]] = {
    "/api/reset": ("reset", {"episode_id": _episode_id, "seed": _SEED}, ()),
    "/api/step": ("step", {"action": _ACTION, "controller": _controller}, ()),
    "/api/run": ("run", {"controller": _controller, "max_steps": _MAX_STEPS}, ("controller",)),
    "/api/video": ("save_video", {}, ()),
}
_GET_ROUTES = {"/api/state": "state", "/api/episodes": "episodes"}
_CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def _arguments(path: str, body: dict) -> dict[str, Any]:
    """The validated keyword arguments of the session method behind a POST path."""
    _, fields, required = _POST_ROUTES[path]
    unknown, missing = sorted(set(body) - set(fields)), [k for k in required if k not in body]
    if unknown or missing:
        problem = f"unknown field(s) {unknown}" if unknown else f"missing field(s) {missing}"
        raise PlayError(400, f"{path}: {problem}; fields: {list(fields)}, required: {list(required)}")
    return {key: fields[key](key, value) for key, value in body.items() if value is not None}


def _json(data: Any) -> bytes:
    return json.dumps(data, allow_nan=False).encode()


class PlayServer(ThreadingHTTPServer):
    """Serves a :class:`PlaySession`; requests hand the environment work to :attr:`jobs` (see
    :func:`start_server`)."""

    daemon_threads = True

    def __init__(self, session: PlaySession, host: str = "127.0.0.1", port: int = 8765) -> None:
        super().__init__((host, port), _Handler)
        self.session, self.jobs = session, JobQueue()
        # Static files are found by exact name in this table: a request path is never joined to a folder.
        self.static_files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
        bound, port = self.server_address[:2]
        names = {"127.0.0.1", "localhost", f"[{bound}]" if ":" in bound else bound}
        self.allowed_hosts = {f"{name}:{port}".lower() for name in names}
        # A non-loopback address is served only after --allow-remote: its clients may call it by any name.
        self.any_host = not _is_loopback(bound)

    def host_allowed(self, host: str) -> bool:
        """Whether a request's ``Host`` header names this server."""
        return self.any_host or host.strip().lower() in self.allowed_hosts

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up is no error of the server: logged without a traceback."""
        err = sys.exc_info()[1]
        if isinstance(err, CLIENT_GONE):
            logger.debug("%s hung up: %s", client_address, err)
        else:
            logger.exception("request from %s failed", client_address)

    @property
    def url(self) -> str:
        """The page's address."""
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: PlayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _answer(self, route: Callable[[str], tuple[str, bytes]]) -> None:
        length = self.headers.get("Content-Length", "0").strip() or "0"
        self._unread = int(length) if length.isdigit() else 0  # body bytes not read yet
        try:
            self._check_origin()
            status, (content_type, payload) = 200, route(urlsplit(self.path).path)
        except PlayError as err:
            status, content_type, payload = err.status, "application/json", _json({"error": err.message})
        except Exception as err:
            logger.exception("%s %s failed", self.command, self.path)
            status, content_type = 500, "application/json"
            payload = _json({"error": f"{type(err).__name__}: {err}"})
        if self._unread or not length.isdigit():
            self.close_connection = True  # what follows on this connection is the refused body
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(payload)
        except CLIENT_GONE as err:
            logger.debug("%s %s: the client hung up before the answer (%s)", self.command, self.path, err)
            self.close_connection = True
            return
        self._drain()

    def _drain(self) -> None:
        """Read and drop a refused body (up to ``DRAIN_BYTES``), so a client still sending it gets the answer
        rather than a reset connection."""
        left = min(self._unread, DRAIN_BYTES)
        with contextlib.suppress(OSError):
            self.connection.settimeout(DRAIN_TIMEOUT_S)
            while left > 0:
                chunk = self.rfile.read(min(left, 64 * 1024))
                if not chunk:
                    break
                left -= len(chunk)

    def _check_origin(self) -> None:
        """403 unless ``Host`` names this server and ``Origin``, when sent, is this server's origin."""
        host = self.headers.get("Host", "")
        if not self.server.host_allowed(host):
            raise PlayError(403, f"Host {host!r} is not this server; open {self.server.url}")
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip().lower() != f"http://{host.strip().lower()}":
            raise PlayError(
                403, f"requests from {origin!r} are refused: only {self.server.url} drives this server"
            )

    def _get(self, path: str) -> tuple[str, bytes]:
        session, jobs = self.server.session, self.server.jobs
        if path in _GET_ROUTES:
            return "application/json", _json(jobs.call(getattr(session, _GET_ROUTES[path])))
        image = re.fullmatch(r"/frame/(\w+)\.png", path)
        if image:
            return "image/png", jobs.call(lambda: session.image_png(image.group(1)))
        if path in _POST_ROUTES:
            raise PlayError(405, f"{path} takes POST, not GET")
        name = "index.html" if path in ("/", "/index.html") else None
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
        file = self.server.static_files.get(name)
        if file is None:
            raise PlayError(404, f"not found: {path}")
        return _CONTENT_TYPES.get(file.suffix, "application/octet-stream"), file.read_bytes()

    def _post(self, path: str) -> tuple[str, bytes]:
        if path not in _POST_ROUTES:
            raise PlayError(405 if path in _GET_ROUTES else 404, f"no POST endpoint {path}")
        kwargs = _arguments(path, self._body())
        method = getattr(self.server.session, _POST_ROUTES[path][0])
        return "application/json", _json(self.server.jobs.call(lambda: method(**kwargs)))

    def _body(self) -> dict:
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if not length.isdigit():
            raise PlayError(400, f"bad Content-Length header {length!r}")
        if int(length) > MAX_BODY_BYTES:
            raise PlayError(413, f"request body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
        raw = self.rfile.read(int(length))
        self._unread = 0
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise PlayError(415, f"Content-Type must be application/json, got {kind or 'none'!r}")
        try:
            body = json.loads(raw) if raw.strip() else {}
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise PlayError(400, f"malformed JSON body: {err}") from None
        except RecursionError:
            raise PlayError(400, "malformed JSON body: nested too deeply") from None
        if not isinstance(body, dict):
            raise PlayError(400, f"the JSON body must be an object, got {type(body).__name__}")
        return body


def _is_loopback(host: str) -> bool:
    with contextlib.suppress(ValueError):  # a host name other than localhost counts as remote
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    return False


def check_host(host: str, allow_remote: bool = False) -> None:
    """Refuse a non-loopback ``host`` unless ``allow_remote`` (then warn): the page drives this process.

    Raises:
        ValueError: ``host`` is not a loopback address and ``allow_remote`` is false.
    """
    if _is_loopback(host):
        return
    if not allow_remote:
        raise ValueError(
            f"--host {host} is not a loopback address: anyone who can reach it could drive this server and "
            "write files; pass --allow-remote to listen there anyway"
        )
    logger.warning("listening on %s: anyone who can reach this address can drive the server", host)


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


def start_server(session: PlaySession, host: str = "127.0.0.1", port: int = 8765) -> PlayServer:
    """Serve ``session`` from a background thread (``port=0``: a free port). The caller then runs
    ``server.jobs.work(...)`` on the thread that built the session, and ``server.shutdown()`` at the end."""
    server = PlayServer(session, host, port)
    # A short poll interval makes shutdown() quick; requests are answered at once whatever it is.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


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
