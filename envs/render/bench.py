"""Renderer speed: ``python -m envs.render.bench [--scene boxes|house] [--frames 300] [--sizes 128 224]``.

Scenes are deterministic, so numbers compare across machines and commits. ``boxes`` (default) is random
axis-aligned boxes of random size and colour over a 16 m × 16 m floor, 12 triangles each (``--triangles``);
it is denser than a house (much overdraw), so it bounds the cost from above. ``house`` is
``generate_house(--seed)``. The camera turns in place at the centre of the scene (of its first room for a
house); every frame is read back. Culling on and off are timed in alternating blocks of frames, so that a
busy machine slows both alike. Prints one JSON line per (size, modalities, culling) with milliseconds per
frame and the triangles submitted per frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time

import numpy as np

from envs.render.camera import CameraSpec
from envs.render.renderer import Renderer
from envs.scenes.generate import generate_house
from envs.scenes.scene import Scene, SceneMesh

logger = logging.getLogger(__name__)

_BOX_FACES = np.array(
    [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1]]
    + [[2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]],
    np.int32,
)
_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32)
_BLOCK = 20  # frames per timing block


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


def time_frames(
    renderers: list[Renderer], camera: CameraSpec, n_frames: int, position: tuple[float, float, float]
) -> list[tuple[float, float]]:
    """(milliseconds per frame, triangles per frame) of each renderer turning in place at ``position``.

    The renderers take turns, :data:`_BLOCK` frames at a time, after 20 warm-up frames each.
    """
    for renderer in renderers:
        for _ in range(20):
            renderer.render(camera, position, (0.0, 0.0, 0.0, 1.0))
    seconds, triangles = [0.0] * len(renderers), [0] * len(renderers)
    for start in range(0, n_frames, _BLOCK):
        frames = range(start, min(start + _BLOCK, n_frames))
        for i, renderer in enumerate(renderers):
            begin = time.perf_counter()
            for k in frames:
                half = 0.025 * k
                renderer.render(camera, position, (0.0, math.sin(half), 0.0, math.cos(half)))
                triangles[i] += renderer.stats.triangles
            seconds[i] += time.perf_counter() - begin
    return [(1000.0 * s / n_frames, t / n_frames) for s, t in zip(seconds, triangles, strict=True)]


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and print one JSON line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", choices=("boxes", "house"), default="boxes")
    parser.add_argument("--triangles", type=int, default=15000, help="boxes: number of triangles")
    parser.add_argument("--seed", type=int, default=0, help="house: generator seed")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.scene == "house":
        scene = generate_house(args.seed)
        x, z = (float(v) for v in scene.rooms[0].polygon.mean(axis=0))
        position = (x, scene.rooms[0].floor_y, z)
    else:
        scene, position = box_scene(args.triangles), (0.0, 0.0, 0.0)
    renderers = [Renderer(scene), Renderer(scene, cull=False)]
    info = renderers[0].ctx.info.get("GL_RENDERER", "?")
    for size in args.sizes:
        for modalities in (("rgb", "depth"), ("rgb",), ("depth",), ("rgb", "depth", "semantic")):
            camera = CameraSpec(width=size, height=size, modalities=modalities)
            results = time_frames(renderers, camera, args.frames, position)
            for renderer, (ms, triangles) in zip(renderers, results, strict=True):
                row = {"renderer": info, "scene": scene.name, "triangles": renderer.n_triangles, "size": size}
                row |= {"modalities": "+".join(modalities), "cull": renderer.cull}
                row |= {"ms_per_frame": round(ms, 3), "triangles_per_frame": round(triangles, 1)}
                logger.info(json.dumps(row))
    for renderer in renderers:
        renderer.release()


if __name__ == "__main__":
    main()
