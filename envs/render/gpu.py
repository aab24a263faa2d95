"""GPU objects of the renderer: the vertex layout, shader programs, vertex arrays and framebuffers."""

from __future__ import annotations

from dataclasses import dataclass

import moderngl
import numpy as np

from envs.render.camera import CameraSpec
from envs.render.shaders import FRAGMENT_SHADER, VERTEX_SHADER, program_defines
from envs.render.uniforms import FrameCamera
from envs.scenes.scene import SceneMesh

_PLAIN = [("pos", "<f4", 3), ("color", "u1", 3), ("pad", "u1"), ("normal", "<f4", 3), ("sem", "<i4")]
_DTYPES = {False: np.dtype(_PLAIN), True: np.dtype([*_PLAIN, ("uv", "<f4", 2)])}
_NAMES = ("in_pos", "in_color", "in_normal", "in_sem")
_LAYOUT = {False: ("3f 3f1 1x 3f 1i", *_NAMES), True: ("3f 3f1 1x 3f 1i 2f", *_NAMES, "in_uv")}
_TEX_FORMAT = {"rgb": (4, "f1"), "depth": (1, "f4"), "semantic": (1, "i4")}
# What the depth attachment holds where nothing is drawn: farther than any far plane, clipped to max_depth
# on read-back, and never an occluder.
_NO_HIT = 1e30


def pack_vertices(mesh: SceneMesh, textured: bool, source: np.ndarray | None = None) -> np.ndarray:
    """(V,) structured vertex records of a mesh: position, colour and, when ``textured``, uv.

    Normals and semantic ids are left zero (:func:`envs.render.geometry.prepare_batch` provides them);
    ``source`` selects and repeats vertices (default: all, in order).
    """
    idx = slice(None) if source is None else source
    out = np.zeros(len(mesh.vertices) if source is None else len(source), _DTYPES[textured])
    out["pos"] = mesh.vertices[idx]
    out["color"] = mesh.colors[idx]
    if textured:
        out["uv"] = mesh.uvs[idx]
    return out


@dataclass
class Batch:
    """One indexed batch: vertices, chunk-ordered faces, an optional texture and whether back faces are
    drawn."""

    vbo: moderngl.Buffer
    ibo: moderngl.Buffer
    texture: moderngl.Texture | None
    n_faces: int
    double_sided: bool = True

    def release(self) -> None:
        """Free the buffers and the texture."""
        self.vbo.release()
        self.ibo.release()
        if self.texture is not None:
            self.texture.release()


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
        if "u_tex" in self.program:
            self.program["u_tex"].value = 0

    def set_camera(self, frame: FrameCamera) -> None:
        self.u_mvp.write(frame.mvp_bytes)
        if self.u_view_z is not None:
            self.u_view_z.write(frame.view_z_bytes)
        if self.u_eye is not None:
            self.u_eye.write(frame.eye_bytes)


class Variant:
    """Everything needed to draw the scene's batches for one combination of modalities.

    Attributes:
        draws: (vertex array, texture or None) per batch, in batch order.
    """

    def __init__(self, ctx: moderngl.Context, modalities: tuple[str, ...], batches: list[Batch]) -> None:
        self._programs: dict[bool, _Program] = {}
        self.draws: list[tuple[moderngl.VertexArray, moderngl.Texture | None]] = []
        for batch in batches:
            textured = batch.texture is not None
            if textured not in self._programs:
                self._programs[textured] = _Program(ctx, modalities, textured)
            content = [(batch.vbo, *_LAYOUT[textured])]
            program = self._programs[textured].program
            vao = ctx.vertex_array(program, content, batch.ibo, index_element_size=4, skip_errors=True)
            self.draws.append((vao, batch.texture))

    def set_camera(self, frame: FrameCamera) -> None:
        """Write the frame's camera uniforms to every program."""
        for program in self._programs.values():
            program.set_camera(frame)

    def release(self) -> None:
        """Free the vertex arrays and programs (not the batches)."""
        for vao, _ in self.draws:
            vao.release()
        for program in self._programs.values():
            program.program.release()


class Target:
    """The framebuffer of one image size and set of drawn modalities (attachments shared per size)."""

    def __init__(self, ctx: moderngl.Context, textures: dict, modalities: tuple[str, ...]) -> None:
        self.fbo = ctx.framebuffer([textures[m] for m in modalities], textures["zbuffer"])
        self.modalities = modalities
        self._depth = modalities.index("depth") if "depth" in modalities else -1
        on, off = (True,) * 4, (False,) * 4
        self._all = tuple(on for _ in modalities)
        self._only_depth = tuple(on if m == "depth" else off for m in modalities)
        width, height = self.fbo.size
        self._scratch = np.empty((height, width), np.float32)

    @staticmethod
    def textures(ctx: moderngl.Context, width: int, height: int) -> dict:
        """One attachment per modality and a depth buffer, for the targets of one image size."""
        out = {m: ctx.texture((width, height), n, dtype=dtype) for m, (n, dtype) in _TEX_FORMAT.items()}
        out["zbuffer"] = ctx.depth_renderbuffer((width, height))
        return out

    def begin(self) -> None:
        """Bind and clear: colour and semantic 0, linear depth :data:`_NO_HIT`, depth buffer 1."""
        self.fbo.use()
        if self.modalities == ("depth",):
            self.fbo.clear(_NO_HIT, 0.0, 0.0, 0.0, depth=1.0)
            return
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        if self._depth >= 0:
            self.fbo.color_mask = self._only_depth
            self.fbo.clear(_NO_HIT, 0.0, 0.0, 0.0)
            self.fbo.color_mask = self._all

    def linear_depth(self) -> np.ndarray:
        """(H, W) float32 z-depth drawn so far (bottom row first, a scratch array reused by the next call)."""
        self.fbo.read_into(self._scratch, components=1, attachment=self._depth, dtype="f4")
        return self._scratch

    def read(self, camera: CameraSpec, modalities: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Fresh arrays of the requested modalities (see :meth:`envs.render.Renderer.render`)."""
        h, w = camera.height, camera.width
        out: dict[str, np.ndarray] = {}
        for name in modalities:
            i = self.modalities.index(name)
            if name == "rgb":
                out[name] = np.empty((h, w, 3), np.uint8)
                self.fbo.read_into(out[name], components=3, attachment=i, alignment=1)
            elif name == "depth":
                depth = out[name] = np.empty((h, w, 1), np.float32)
                self.fbo.read_into(depth, components=1, attachment=i, dtype="f4")
                np.minimum(depth, camera.max_depth, out=depth)  # _NO_HIT -> max_depth
                if camera.min_depth > 0.0:  # drawn depths are beyond the near plane, > 0
                    np.maximum(depth, camera.min_depth, out=depth)
            else:
                out[name] = np.empty((h, w), np.int32)
                self.fbo.read_into(out[name], components=1, attachment=i, dtype="i4")
        return out
