"""GLSL 3.30 shaders of the renderer.

One vertex and one fragment shader, specialised by ``#define`` per combination of modalities (so that a frame
writes only the attachments it needs and interpolates only the varyings they use) and by whether the batch is
textured. Outputs are numbered in the order of :data:`envs.render.camera.MODALITIES` among the drawn ones,
matching the framebuffer's colour attachments.

Per-face data reaches the fragment shader through ``flat`` varyings from each face's provoking (last) vertex,
which :mod:`envs.render.geometry` makes unique per face and gives the face's unit normal and semantic id:
the vertex shader turns the normal into the face's lighting terms, so the fragment shader needs no
screen-space derivatives and semantics need no lookup.
"""

from __future__ import annotations

VERTEX_SHADER = """
uniform mat4 u_mvp;     // world -> clip
uniform vec4 u_view_z;  // minus the third row of the view matrix: dot(u_view_z, p) is the z-depth in metres
in vec3 in_pos;
#ifdef OUT_RGB
uniform vec3 u_eye;  // camera position, world frame
// Fixed light from above and slightly to the side: floors, walls of different orientations and box edges get
// different brightness; the headlight keeps surfaces facing the camera readable.
const vec3 LIGHT = vec3(0.3999, 0.8198, 0.4099);  // unit length
in vec3 in_color;
in vec3 in_normal;  // unit normal of the face this vertex provokes
out vec3 v_color;
out vec3 v_from_eye;  // eye -> vertex, world frame: interpolated, eye -> fragment
flat out vec2 v_light;  // per face: ambient + diffuse, and 0.2 x the eye's distance from the face's plane
#ifdef TEXTURED
in vec2 in_uv;
out vec2 v_uv;
#endif
#endif
#ifdef OUT_DEPTH
out float v_depth;
#endif
#ifdef OUT_SEMANTIC
in int in_sem;
flat out int v_sem;
#endif
void main() {
    vec4 p = vec4(in_pos, 1.0);
    gl_Position = u_mvp * p;
#ifdef OUT_RGB
    v_color = in_color;
    v_from_eye = in_pos - u_eye;
    // A face is planar, so which side the eye is on, the diffuse term of the side it sees and the eye's
    // distance from the face's plane are the same for the whole face: computed once, at its provoking vertex.
    float eye_side = dot(in_normal, v_from_eye);  // > 0: the eye sees the back of the face
    float diffuse = max((eye_side > 0.0 ? -0.4 : 0.4) * dot(in_normal, LIGHT), 0.0);
    v_light = vec2(0.45 + diffuse, 0.2 * abs(eye_side));
#ifdef TEXTURED
    v_uv = in_uv;
#endif
#endif
#ifdef OUT_DEPTH
    v_depth = dot(u_view_z, p);
#endif
#ifdef OUT_SEMANTIC
    v_sem = in_sem;
#endif
}
"""

FRAGMENT_SHADER = """
#ifdef OUT_RGB
in vec3 v_color;
in vec3 v_from_eye;
flat in vec2 v_light;
#ifdef TEXTURED
in vec2 v_uv;
uniform sampler2D u_tex;
#endif
layout(location = LOC_RGB) out vec4 f_rgb;
#endif
#ifdef OUT_DEPTH
in float v_depth;
layout(location = LOC_DEPTH) out float f_depth;
#endif
#ifdef OUT_SEMANTIC
flat in int v_sem;
layout(location = LOC_SEMANTIC) out int f_sem;
#endif
void main() {
#ifdef OUT_RGB
    // Headlight: the cosine between the face's normal and the direction to the eye is the eye's distance
    // from the face's plane over its distance from the fragment. The eye -> fragment vector is interpolated
    // (perspective-correct, so exact): on llvmpipe that is cheaper than rebuilding it from gl_FragCoord.
    float light = v_light.x + v_light.y * inversesqrt(dot(v_from_eye, v_from_eye));
#ifdef TEXTURED
    vec3 base = v_color * texture(u_tex, v_uv).rgb;
#else
    vec3 base = v_color;
#endif
    f_rgb = vec4(min(base * light, vec3(1.0)), 1.0);
#endif
#ifdef OUT_DEPTH
    f_depth = v_depth;
#endif
#ifdef OUT_SEMANTIC
    f_sem = v_sem;
#endif
}
"""


def program_defines(modalities: tuple[str, ...], textured: bool) -> str:
    """The ``#version`` line and ``#define``s that specialise both shaders.

    Args:
        modalities: modality names to write, in attachment order (a subset of rgb, depth, semantic).
        textured: whether vertices carry ``in_uv`` and the base colour is multiplied by ``u_tex``.
    """
    lines = ["#version 330"]
    if textured:
        lines.append("#define TEXTURED")
    for location, name in enumerate(modalities):
        lines.append(f"#define OUT_{name.upper()}")
        lines.append(f"#define LOC_{name.upper()} {location}")
    return "\n".join(lines) + "\n"
