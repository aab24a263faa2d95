"""Rasterise a :class:`~envs.scenes.scene.Scene` into RGB, depth and semantic images with moderngl.

The scene is uploaded once as indexed triangles: untextured material batches merged into one vertex array,
textured ones one each. Faces are sorted into spatial chunks with compact vertex runs, and each face's
provoking vertex carries its unit normal and semantic id (:mod:`envs.render.geometry`). A frame is drawn in
two passes: the chunks near the camera, then the chunks in view that are not hidden behind what the first
pass drew (:mod:`envs.render.culling`); a skipped chunk would not have changed a pixel. Each frame renders
into a framebuffer with one colour attachment per modality (RGBA8 colour, R32F linear depth, R32I semantic),
cached per image size; only the requested attachments are read back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import moderngl
import numpy as np

from envs.render.camera import DERIVED_MODALITIES, MODALITIES, CameraSpec
from envs.render.context import check_not_forked, create_context
from envs.render.culling import ChunkCuller, FaceChunks
from envs.render.geometry import prepare_batch
from envs.render.gpu import Batch, Target, Variant, pack_vertices
from envs.render.uniforms import frame_camera
from envs.scenes.scene import Scene, SceneMesh

logger = logging.getLogger(__name__)


@dataclass
class RenderStats:
    """What the last :meth:`Renderer.render` call submitted: ``draw_calls`` and ``triangles``."""

    draw_calls: int = 0
    triangles: int = 0


class Renderer:
    """Renders one scene from cameras mounted on an agent.

    Args:
        scene: the scene to draw, uploaded once (its arrays are not kept).
        ctx: a moderngl context; None uses the process's shared EGL context (:func:`create_context`).
        cull: skip chunks outside the view or hidden behind nearer geometry. The images are the same either
            way (the draw order is the same and skipped triangles would fail clipping or the depth test);
            False exists to check that.

    The renderer must be used from the thread that created the context. Back faces are drawn for
    double-sided meshes (scans have inconsistent winding) and skipped for the others
    (:attr:`SceneMesh.double_sided`, False for generated houses). Shading is base colour × texture ×
    (ambient + fixed-direction diffuse + headlight) with each face's own normal. :attr:`stats` tells what
    the last frame drew.
    """

    def __init__(self, scene: Scene, ctx: moderngl.Context | None = None, cull: bool = True) -> None:
        self.ctx = ctx if ctx is not None else create_context()
        self.cull = cull
        self.stats = RenderStats()
        self._pid = os.getpid()
        self.n_triangles = scene.n_triangles
        self._category_codes = scene.category_codes()
        plain = [m for m in scene.meshes if len(m.faces) and not _is_textured(m)]
        textured = [m for m in scene.meshes if len(m.faces) and _is_textured(m)]
        self._batches: list[Batch] = []
        chunks = []
        for double_sided in (False, True):
            group = [m for m in plain if m.double_sided == double_sided]
            if group:
                chunks.append(self._add_batch(_merge(group), None))
        for mesh in textured:
            chunks.append(self._add_batch(mesh, self._upload_texture(mesh.texture)))
        self._culler = ChunkCuller(chunks)
        self._variants: dict[tuple[str, ...], Variant] = {}
        # (camera modalities, cull) -> (modalities returned, modalities drawn), in attachment order.
        self._plans: dict[tuple, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._textures: dict[tuple[int, int], dict] = {}
        self._targets: dict[tuple[int, int, tuple[str, ...]], Target] = {}
        logger.debug(
            "uploaded %s: %d triangles in %d batches, %d chunks",
            scene.name,
            self.n_triangles,
            len(self._batches),
            self._culler.n_chunks,
        )

    def _add_batch(self, mesh: SceneMesh, tex: moderngl.Texture | None) -> FaceChunks:
        prepared = prepare_batch(mesh.vertices, mesh.faces, mesh.semantic_ids)
        vertices = pack_vertices(mesh, tex is not None, prepared.vertex_source)
        vertices["normal"] = prepared.normals
        vertices["sem"] = prepared.semantic_ids
        ibo = self.ctx.buffer(np.ascontiguousarray(prepared.faces, np.int32).tobytes())
        vbo = self.ctx.buffer(vertices.tobytes())
        self._batches.append(Batch(vbo, ibo, tex, len(prepared.faces), mesh.double_sided))
        return prepared.chunks

    def _upload_texture(self, image: np.ndarray) -> moderngl.Texture:
        # Row 0 of the image is uploaded at t = 0, which is where glTF's v = 0 (the image top) samples.
        h, w = image.shape[:2]
        tex = self.ctx.texture((w, h), 3, np.ascontiguousarray(image, np.uint8).tobytes(), alignment=1)
        tex.build_mipmaps()
        # Mipmaps keep distant textures from aliasing. Bilinear within the nearest level costs about as much
        # as an untextured draw on llvmpipe, where trilinear filtering measured ~45% slower.
        tex.filter = (moderngl.LINEAR_MIPMAP_NEAREST, moderngl.LINEAR)
        return tex

    def _variant(self, modalities: tuple[str, ...]) -> Variant:
        variant = self._variants.get(modalities)
        if variant is None:
            variant = self._variants[modalities] = Variant(self.ctx, modalities, self._batches)
        return variant

    def _target(self, width: int, height: int, modalities: tuple[str, ...]) -> Target:
        target = self._targets.get((width, height, modalities))
        if target is None:
            textures = self._textures.get((width, height))
            if textures is None:
                textures = self._textures[(width, height)] = Target.textures(self.ctx, width, height)
            target = self._targets[(width, height, modalities)] = Target(self.ctx, textures, modalities)
        return target

    def render(
        self, camera: CameraSpec, position: Sequence[float], rotation: Sequence[float]
    ) -> dict[str, np.ndarray]:
        """Render the camera's modalities for an agent pose.

        Args:
            camera: the camera and the modalities it renders.
            position: (3,) agent position in the world frame, metres (floor level; the camera adds its
                offset).
            rotation: (4,) agent orientation quaternion [x, y, z, w].

        Returns:
            Only the requested keys, freshly allocated arrays whose row 0 is the top of the image:
            ``rgb`` (H, W, 3) uint8; ``depth`` (H, W, 1) float32 z-depth in metres (distance to the image
            plane, not along the ray), clipped to [min_depth, max_depth], max_depth where nothing is hit;
            ``semantic`` (H, W) int32 face semantic ids, 0 where nothing is hit; ``category`` (H, W) int32
            the category code of each pixel's instance (:func:`envs.scenes.scene.category_code`, 0 where
            nothing or nothing annotated is hit).

        Raises:
            RenderBackendError: called in a process forked from the one that made the renderer.
        """
        check_not_forked(self._pid)
        key = (camera.modalities, self.cull)
        plan = self._plans.get(key)
        if plan is None:
            sources = {DERIVED_MODALITIES.get(m, m) for m in camera.modalities}
            modalities = tuple(m for m in MODALITIES if m in sources)
            # The occlusion test reads the linear depth drawn so far, so culling always draws it.
            drawn = tuple(m for m in MODALITIES if m in modalities or (self.cull and m == "depth"))
            plan = self._plans[key] = (modalities, drawn)
        modalities, drawn = plan
        variant = self._variant(drawn)
        frame = frame_camera(camera, position, rotation)
        variant.set_camera(frame)
        target = self._target(camera.width, camera.height, drawn)
        target.begin()
        self.ctx.enable_only(moderngl.DEPTH_TEST)
        self.ctx.provoking_vertex = moderngl.LAST_VERTEX_CONVENTION
        self.ctx.front_face = "cw"  # counter-clockwise in the world, mirrored by the projection (uniforms)
        culler, stats = self._culler, RenderStats()
        near, far = camera.near, camera.far
        self._draw(variant, culler.first_pass(frame.mvp, camera.width, near, far, self.cull), stats)
        if len(culler.pending):
            self._draw(variant, culler.second_pass(target.linear_depth() if self.cull else None), stats)
        self.stats = stats
        out = target.read(camera, modalities)
        if "category" in camera.modalities:
            ids = out["semantic"] if "semantic" in camera.modalities else out.pop("semantic")
            lut = self._category_codes
            out["category"] = np.where((ids >= 0) & (ids < len(lut)), lut[np.clip(ids, 0, len(lut) - 1)], 0)
        return out

    def _draw(self, variant: Variant, ranges: list[tuple[int, int, int]], stats: RenderStats) -> None:
        current, culling = -1, False  # render() leaves only the depth test enabled
        for batch, first, count in ranges:
            vao, tex = variant.draws[batch]
            if batch != current:
                if tex is not None:
                    tex.use(0)
                cull = not self._batches[batch].double_sided
                if cull != culling:
                    self.ctx.enable_only(moderngl.DEPTH_TEST | (moderngl.CULL_FACE if cull else 0))
                    culling = cull
            current = batch
            vao.render(moderngl.TRIANGLES, vertices=3 * count, first=3 * first)
            stats.draw_calls += 1
            stats.triangles += count
        if culling:
            self.ctx.enable_only(moderngl.DEPTH_TEST)

    def render_many(
        self, cameras: Sequence[CameraSpec], position: Sequence[float], rotation: Sequence[float]
    ) -> dict[str, dict[str, np.ndarray]]:
        """Render several cameras of one agent pose: {camera uuid: {modality: array}} (see :meth:`render`).

        Raises:
            ValueError: two cameras share a uuid.
        """
        uuids = [c.uuid for c in cameras]
        if len(set(uuids)) != len(uuids):
            raise ValueError(f"camera uuids must be unique, got {uuids}")
        return {c.uuid: self.render(c, position, rotation) for c in cameras}

    def release(self) -> None:
        """Free every GPU object this renderer made (not the context); the renderer is unusable after."""
        for variant in self._variants.values():
            variant.release()
        for target in self._targets.values():
            target.fbo.release()
        for textures in self._textures.values():
            for texture in textures.values():
                texture.release()
        for batch in self._batches:
            batch.release()
        self._variants, self._targets, self._textures, self._batches = {}, {}, {}, []


def _merge(meshes: list[SceneMesh]) -> SceneMesh:
    """Untextured meshes of the same sidedness as one."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return SceneMesh(
        np.concatenate([m.vertices for m in meshes]),
        np.concatenate([m.faces + off for m, off in zip(meshes, offsets, strict=True)]),
        np.concatenate([m.colors for m in meshes]),
        np.concatenate([m.semantic_ids for m in meshes]),
        double_sided=meshes[0].double_sided,
    )


def _is_textured(mesh: SceneMesh) -> bool:
    return mesh.uvs is not None and mesh.texture is not None
