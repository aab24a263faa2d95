"""Rasterise a :class:`~envs.scenes.scene.Scene` into RGB, depth and semantic images with moderngl.

The scene is uploaded once as indexed triangles: untextured material batches merged into one vertex array,
textured ones one each. Flat face normals come from screen-space derivatives in the fragment shader and
semantic ids from a face-indexed lookup texture (``gl_PrimitiveID``), so vertices are not copied per face: on
llvmpipe the vertex stage runs on one thread and dominates small frames (expanding the faces measured 2.2x
slower). A frame is one pass into a framebuffer with one colour attachment per requested modality (RGBA8
colour, R32F depth, R32I semantic), cached per image size; only those attachments are written and read back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import moderngl
import numpy as np

from envs.render.camera import MODALITIES, CameraSpec
from envs.render.context import check_not_forked, create_context
from envs.render.shaders import FRAGMENT_SHADER, SEM_WIDTH, VERTEX_SHADER, program_defines
from envs.scenes.scene import Scene, SceneMesh

logger = logging.getLogger(__name__)

_PLAIN = np.dtype([("pos", "<f4", 3), ("color", "u1", 3), ("pad", "u1")])
_TEXTURED = np.dtype([("pos", "<f4", 3), ("color", "u1", 3), ("pad", "u1"), ("uv", "<f4", 2)])
_LAYOUT = {False: ("3f 3f1 1x", "in_pos", "in_color"), True: ("3f 3f1 1x 2f", "in_pos", "in_color", "in_uv")}
_TEX_FORMAT = {"rgb": (4, "f1"), "depth": (1, "f4"), "semantic": (1, "i4")}
# glReadPixels returns rows bottom first. Mirroring clip-space y makes GL row 0 hold the image's top row, so
# frames are read straight into their output arrays with no flip copy (culling is off, so the mirrored winding
# does not matter).
_FLIP_Y = np.diag([1.0, -1.0, 1.0, 1.0]).astype(np.float32)


def pack_vertices(mesh: SceneMesh, textured: bool) -> np.ndarray:
    """(V,) structured vertex records of a mesh: position, colour and, when ``textured``, uv."""
    out = np.zeros(len(mesh.vertices), _TEXTURED if textured else _PLAIN)
    out["pos"] = mesh.vertices
    out["color"] = mesh.colors
    if textured:
        out["uv"] = mesh.uvs
    return out


@dataclass
class _Batch:
    """One indexed draw call: vertices, faces, optional texture, and the scene index of its first face."""

    vbo: moderngl.Buffer
    ibo: moderngl.Buffer
    texture: moderngl.Texture | None
    first_face: int


class _Program:
    """A compiled shader for one combination of modalities and texturing, with its uniform handles."""

    def __init__(self, ctx: moderngl.Context, modalities: tuple[str, ...], textured: bool) -> None:
        defines = program_defines(modalities, textured)
        self.program = ctx.program(
            vertex_shader=defines + VERTEX_SHADER, fragment_shader=defines + FRAGMENT_SHADER
        )
        self.u_mvp = self.program["u_mvp"]
        self.u_view_z = self.program.get("u_view_z", None)
        self.u_eye = self.program.get("u_eye", None)
        self.u_sem_offset = self.program.get("u_sem_offset", None)
        for name, unit in (("u_tex", 0), ("u_sem", 1)):
            if name in self.program:
                self.program[name].value = unit

    def set_camera(self, mvp: np.ndarray, view_z: np.ndarray, eye: np.ndarray) -> None:
        self.u_mvp.write(mvp)
        if self.u_view_z is not None:
            self.u_view_z.write(view_z)
        if self.u_eye is not None:
            self.u_eye.write(eye)


class _Variant:
    """Everything needed to draw the scene for one combination of modalities."""

    def __init__(self, ctx: moderngl.Context, modalities: tuple[str, ...], batches: list[_Batch]) -> None:
        self.programs: dict[bool, _Program] = {}
        self.draws: list[tuple[_Program, moderngl.VertexArray, moderngl.Texture | None, int]] = []
        for batch in batches:
            textured = batch.texture is not None
            if textured not in self.programs:
                self.programs[textured] = _Program(ctx, modalities, textured)
            prog = self.programs[textured]
            content = [(batch.vbo, *_LAYOUT[textured])]
            vao = ctx.vertex_array(prog.program, content, batch.ibo, index_element_size=4, skip_errors=True)
            self.draws.append((prog, vao, batch.texture, batch.first_face))

    def release(self) -> None:
        for _, vao, _, _ in self.draws:
            vao.release()
        for prog in self.programs.values():
            prog.program.release()


class Renderer:
    """Renders one scene from cameras mounted on an agent.

    Args:
        scene: the scene to draw, uploaded once (its arrays are not kept).
        ctx: a moderngl context; None uses the process's shared EGL context (:func:`create_context`).

    The renderer must be used from the thread that created the context. Back faces are drawn (scans have
    inconsistent winding); shading is base colour × texture × (ambient + fixed-direction diffuse + headlight).
    """

    def __init__(self, scene: Scene, ctx: moderngl.Context | None = None) -> None:
        self.ctx = ctx if ctx is not None else create_context()
        self._pid = os.getpid()
        self.n_triangles = scene.n_triangles
        plain = [m for m in scene.meshes if len(m.faces) and not _is_textured(m)]
        textured = [m for m in scene.meshes if len(m.faces) and _is_textured(m)]
        self._batches: list[_Batch] = []
        if plain:
            offsets = np.cumsum([0] + [len(m.vertices) for m in plain[:-1]])
            faces = np.concatenate([m.faces + off for m, off in zip(plain, offsets, strict=True)])
            vertices = np.concatenate([pack_vertices(m, False) for m in plain])
            self._batches.append(self._upload_batch(vertices, faces, None, 0))
        first = sum(len(m.faces) for m in plain)
        for mesh in textured:
            tex = self._upload_texture(mesh.texture)
            self._batches.append(self._upload_batch(pack_vertices(mesh, True), mesh.faces, tex, first))
            first += len(mesh.faces)
        self._sem_tex = self._upload_semantics(
            np.concatenate([m.semantic_ids for m in plain + textured] or [[0]])
        )
        self._variants: dict[tuple[str, ...], _Variant] = {}
        self._targets: dict[tuple[int, int], dict[str, moderngl.Texture | moderngl.Renderbuffer]] = {}
        self._fbos: dict[tuple[int, int, tuple[str, ...]], moderngl.Framebuffer] = {}
        logger.debug(
            "uploaded %s: %d triangles in %d batches", scene.name, self.n_triangles, len(self._batches)
        )

    def _upload_batch(
        self, vertices: np.ndarray, faces: np.ndarray, tex: moderngl.Texture | None, first_face: int
    ) -> _Batch:
        ibo = self.ctx.buffer(np.ascontiguousarray(faces, np.int32).tobytes())
        return _Batch(self.ctx.buffer(vertices.tobytes()), ibo, tex, first_face)

    def _upload_semantics(self, ids: np.ndarray) -> moderngl.Texture:
        rows = -(-len(ids) // SEM_WIDTH)
        limit = int(self.ctx.info.get("GL_MAX_TEXTURE_SIZE", 16384))
        if rows > limit:
            raise ValueError(f"scene has {len(ids)} faces; at most {SEM_WIDTH * limit} can be rendered")
        table = np.zeros(rows * SEM_WIDTH, np.int32)
        table[: len(ids)] = ids
        tex = self.ctx.texture((SEM_WIDTH, rows), 1, table.tobytes(), dtype="i4")
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        return tex

    def _upload_texture(self, image: np.ndarray) -> moderngl.Texture:
        # Row 0 of the image is uploaded at t = 0, which is where glTF's v = 0 (the image top) samples.
        h, w = image.shape[:2]
        tex = self.ctx.texture((w, h), 3, np.ascontiguousarray(image, np.uint8).tobytes(), alignment=1)
        tex.build_mipmaps()
        # Mipmaps keep distant textures from aliasing. Bilinear within the nearest level costs about as much
        # as an untextured draw on llvmpipe, where trilinear filtering measured ~45% slower.
        tex.filter = (moderngl.LINEAR_MIPMAP_NEAREST, moderngl.LINEAR)
        return tex

    def _variant(self, modalities: tuple[str, ...]) -> _Variant:
        variant = self._variants.get(modalities)
        if variant is None:
            variant = self._variants[modalities] = _Variant(self.ctx, modalities, self._batches)
        return variant

    def _framebuffer(self, width: int, height: int, modalities: tuple[str, ...]) -> moderngl.Framebuffer:
        fbo = self._fbos.get((width, height, modalities))
        if fbo is None:
            targets = self._targets.get((width, height))
            if targets is None:
                targets = {
                    m: self.ctx.texture((width, height), _TEX_FORMAT[m][0], dtype=_TEX_FORMAT[m][1])
                    for m in MODALITIES
                }
                targets["zbuffer"] = self.ctx.depth_renderbuffer((width, height))
                self._targets[(width, height)] = targets
            colour = [targets[m] for m in modalities]
            fbo = self._fbos[(width, height, modalities)] = self.ctx.framebuffer(colour, targets["zbuffer"])
        return fbo

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
            ``semantic`` (H, W) int32 face semantic ids, 0 where nothing is hit.

        Raises:
            RenderBackendError: called in a process forked from the one that made the renderer.
        """
        check_not_forked(self._pid)
        modalities = tuple(m for m in MODALITIES if m in camera.modalities)
        variant = self._variant(modalities)
        view = camera.view_matrix(position, rotation)
        mvp = np.ascontiguousarray((_FLIP_Y @ camera.projection_matrix() @ view).T)  # GLSL reads column-major
        view_z = np.ascontiguousarray(-view[2])
        eye = camera.pose(position, rotation)[:3, 3].astype(np.float32)
        for prog in variant.programs.values():
            prog.set_camera(mvp, view_z, eye)
        fbo = self._framebuffer(camera.width, camera.height, modalities)
        fbo.use()
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.ctx.enable_only(moderngl.DEPTH_TEST)
        if "semantic" in modalities:
            self._sem_tex.use(1)
        for prog, vao, tex, first_face in variant.draws:
            if tex is not None:
                tex.use(0)
            if prog.u_sem_offset is not None:
                prog.u_sem_offset.value = first_face
            vao.render(moderngl.TRIANGLES)
        return self._read(fbo, camera, modalities)

    def _read(self, fbo: moderngl.Framebuffer, camera: CameraSpec, modalities: tuple[str, ...]) -> dict:
        h, w = camera.height, camera.width
        out: dict[str, np.ndarray] = {}
        for i, name in enumerate(modalities):
            if name == "rgb":
                out[name] = np.empty((h, w, 3), np.uint8)
                fbo.read_into(out[name], components=3, attachment=i, alignment=1)
            elif name == "depth":
                depth = out[name] = np.empty((h, w, 1), np.float32)
                fbo.read_into(depth, components=1, attachment=i, dtype="f4")
                depth[depth <= 0.0] = camera.max_depth  # cleared to 0: nothing was hit
                np.clip(depth, camera.min_depth, camera.max_depth, out=depth)
            else:
                out[name] = np.empty((h, w), np.int32)
                fbo.read_into(out[name], components=1, attachment=i, dtype="i4")
        return out

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
        for fbo in self._fbos.values():
            fbo.release()
        for targets in self._targets.values():
            for target in targets.values():
                target.release()
        for batch in self._batches:
            batch.vbo.release()
            batch.ibo.release()
            if batch.texture is not None:
                batch.texture.release()
        self._sem_tex.release()
        self._variants, self._fbos, self._targets, self._batches = {}, {}, {}, []


def _is_textured(mesh: SceneMesh) -> bool:
    return mesh.uvs is not None and mesh.texture is not None
