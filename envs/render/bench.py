"""Renderer speed on a synthetic scene: ``python -m envs.render.bench [--triangles 15000] [--frames 300]``.

The scene is deterministic (boxes of random size and colour over a 16 m × 16 m floor, 12 triangles each), so
numbers compare across machines and commits; it is denser than a house (much overdraw), so it bounds the cost
from above. The camera turns in place at the centre; every frame is read back. Prints one JSON line per
(size, modalities) with milliseconds per frame.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from envs.render.camera import CameraSpec
from envs.render.renderer import Renderer
from envs.scenes.scene import Scene, SceneMesh

_BOX_FACES = np.array(
    [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1]]
    + [[2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]],
    np.int32,
)
_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32)


def box_scene(n_triangles: int, seed: int = 0) -> Scene:
    """A scene of ``n_triangles // 12`` random axis-aligned boxes, one semantic id each."""
    rng = np.random.default_rng(seed)
    n = max(1, n_triangles // 12)
    centres = rng.uniform([-8, 0, -8], [8, 2.5, 8], (n, 3)).astype(np.float32)
    halves = rng.uniform(0.05, 0.5, (n, 3)).astype(np.float32)
    vertices = (_CORNERS[None] * halves[:, None] + centres[:, None]).reshape(-1, 3)  # (n, 8, 3) -> (8n, 3)
    faces = (_BOX_FACES[None] + 8 * np.arange(n, dtype=np.int32)[:, None, None]).reshape(-1, 3)
    colors = np.repeat(rng.integers(0, 256, (n, 3)), 8, axis=0)
    ids = np.repeat(np.arange(1, n + 1, dtype=np.int32), 12)
    return Scene([SceneMesh(vertices, faces, colors, ids)], name=f"boxes_{n_triangles}")


def time_frames(renderer: Renderer, camera: CameraSpec, n_frames: int) -> float:
    """Milliseconds per frame of ``renderer.render`` while turning in place (after 20 warm-up frames)."""
    for _ in range(20):
        renderer.render(camera, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    start = time.perf_counter()
    for k in range(n_frames):
        half = 0.025 * k
        renderer.render(camera, (0.0, 0.0, 0.0), (0.0, math.sin(half), 0.0, math.cos(half)))
    return 1000.0 * (time.perf_counter() - start) / n_frames


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and print one JSON line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triangles", type=int, default=15000)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    args = parser.parse_args(argv)
    renderer = Renderer(box_scene(args.triangles))
    info = renderer.ctx.info.get("GL_RENDERER", "?")
    for size in args.sizes:
        for modalities in (("rgb", "depth"), ("rgb",), ("depth",), ("rgb", "depth", "semantic")):
            camera = CameraSpec(width=size, height=size, modalities=modalities)
            ms = time_frames(renderer, camera, args.frames)
            row = {"renderer": info, "triangles": renderer.n_triangles, "size": size}
            print(json.dumps({**row, "modalities": "+".join(modalities), "ms_per_frame": round(ms, 3)}))
    renderer.release()


if __name__ == "__main__":
    main()
