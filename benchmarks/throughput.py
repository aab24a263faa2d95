"""Simulator throughput: single-process steps/s of random discrete motion with RGB-D observations.

Measures, in a generated house, steps/s at 128×128 and 224×224 (RGB + depth from one camera), the bare render
time of one RGB-D frame, and — when the optional ``miniworld`` package is installed — MiniWorld's RGB-only
steps/s at
the same resolution in a child process of the same run, printing the ratio::

    python benchmarks/throughput.py            # a table
    python benchmarks/throughput.py --json     # one JSON object
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.render import CameraSpec  # noqa: E402
from envs.render.context import LLVMPIPE_THREADS_DEFAULT, LLVMPIPE_THREADS_ENV  # noqa: E402
from envs.scenes import generate_house  # noqa: E402
from envs.sim import SimConfig, Simulator  # noqa: E402

MINIWORLD_ENVS = ("MiniWorld-Hallway-v0", "MiniWorld-ThreeRooms-v0")

_MINIWORLD_SNIPPET = """
import json, sys, time
import pyglet
pyglet.options["headless"] = True
import gymnasium as gym
import miniworld  # noqa: F401
name, size, n_steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
env = gym.make(name, obs_width=size, obs_height=size)
env.reset(seed=0)
for _ in range(50):
    env.step(env.action_space.sample())
best = float("inf")
for _ in range(3):  # best of 3, as for NavGym
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(n_steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    best = min(best, time.perf_counter() - start)
print(json.dumps({"steps_per_s": n_steps / best}))
"""


def measure_sim(size: int, n_steps: int, seed: int, repeats: int = 3) -> tuple[float, float, int]:
    """(steps/s, bare render ms/frame, triangles) of random discrete actions at ``size``×``size`` RGB-D.

    The walk and a bare re-render of its own poses alternate ``repeats`` times; the best of each is kept, so
    load from other processes on a small machine disturbs both alike.
    """
    scene = generate_house(seed)
    sim = Simulator(scene, SimConfig(cameras=(CameraSpec(width=size, height=size),)))
    rng = np.random.default_rng(seed)
    sim.set_agent_state(sim.sample_navigable_point(rng), [0.0, 0.0, 0.0, 1.0])
    actions = rng.choice([1, 1, 2, 3], size=n_steps)  # forward-heavy, as in VLN-CE's oracle distribution
    for a in actions[:50]:
        sim.step(a)
    start_pose = sim.get_agent_state()
    poses = []
    for a in actions:
        sim.step(a, observe=False)
        state = sim.get_agent_state()
        poses.append((state.position, state.rotation))
    cam = sim.config.cameras[0]
    step_s, render_s = [], []
    for _ in range(repeats):
        sim.set_agent_state(start_pose.position, start_pose.rotation)
        start = time.perf_counter()
        for a in actions:
            sim.step(a)
        step_s.append((time.perf_counter() - start) / n_steps)
        # The walk's own poses: with culling a frame's cost depends on the pose.
        start = time.perf_counter()
        for position, rotation in poses:
            sim.renderer.render(cam, position, rotation)
        render_s.append((time.perf_counter() - start) / n_steps)
    sim.close()
    return 1.0 / min(step_s), 1000.0 * min(render_s), scene.n_triangles


def measure_miniworld(name: str, size: int, n_steps: int) -> float | None:
    """MiniWorld steps/s of random actions (RGB only) in a child process, or None when it is not installed.

    The child renders with llvmpipe's rasteriser threads set as in this process (``LP_NUM_THREADS``, which
    :func:`envs.render.create_context` defaults to 0), so that both simulators run under the same setting.
    """
    threads = os.environ.get(LLVMPIPE_THREADS_ENV, LLVMPIPE_THREADS_DEFAULT)
    env = dict(os.environ, **{LLVMPIPE_THREADS_ENV: threads})
    try:
        out = subprocess.run(
            [sys.executable, "-c", _MINIWORLD_SNIPPET, name, str(size), str(n_steps)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        if "No module named 'miniworld'" not in str(getattr(err, "stderr", "")):
            print(f"MiniWorld {name} did not run: {str(getattr(err, 'stderr', err))[-300:]}", file=sys.stderr)
        return None
    return float(json.loads(out.stdout.strip().splitlines()[-1])["steps_per_s"])


def main() -> None:
    """Run the benchmark and print a table or one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result: dict[str, float | int | str] = {}
    for size in (128, 224):
        sps, render_ms, n_tris = measure_sim(size, args.steps, args.seed)
        result[f"steps_per_s_{size}"] = round(sps, 1)
        result[f"render_ms_{size}"] = round(render_ms, 3)
        result[f"step_over_render_{size}"] = round((1000.0 / sps) / render_ms, 3)
        result["triangles"] = n_tris
    result["llvmpipe_threads"] = os.environ.get(LLVMPIPE_THREADS_ENV, LLVMPIPE_THREADS_DEFAULT)
    for name in MINIWORLD_ENVS:
        mw = measure_miniworld(name, 128, args.steps)
        if mw is None:
            continue
        key = name.split("-")[1].lower()
        result[f"miniworld_{key}_steps_per_s_128"] = round(mw, 1)
    mw_rates = [v for k, v in result.items() if k.startswith("miniworld_")]
    if mw_rates:
        # Compare against the fastest MiniWorld environment measured: the strictest peer.
        result["miniworld_steps_per_s_128"] = max(mw_rates)
        result["ratio_vs_miniworld_128"] = round(result["steps_per_s_128"] / max(mw_rates), 2)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:36s} {value}")


if __name__ == "__main__":
    main()
