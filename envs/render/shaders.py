"""GLSL 3.30 shaders of the renderer.

One vertex and one fragment shader, specialised by ``#define`` per combination of modalities (so that a frame
writes only the attachments it reads back) and by whether the batch is textured. Outputs are numbered in the
order of :data:`envs.render.camera.MODALITIES` among the requested ones, matching the framebuffer's colour
attachments.
"""

from __future__ import annotations

VERTEX_SHADER = """
uniform mat4 u_mvp;     // world -> clip
uniform vec4 u_view_z;  // minus the third row of the view matrix: dot(u_view_z, p) is the z-depth in metres
in vec3 in_pos;
in vec3 in_color;
out vec3 v_world;
out vec3 v_color;
out float v_depth;
#ifdef TEXTURED
in vec2 in_uv;
out vec2 v_uv;
#endif
void main() {
    vec4 p = vec4(in_pos, 1.0);
    gl_Position = u_mvp * p;
    v_world = in_pos;
    v_color = in_color;
    v_depth = dot(u_view_z, p);
#ifdef TEXTURED
    v_uv = in_uv;
#endif
}
"""

FRAGMENT_SHADER = """
in vec3 v_world;
in vec3 v_color;
in float v_depth;
#ifdef TEXTURED
in vec2 v_uv;
uniform sampler2D u_tex;
#endif
#ifdef OUT_RGB
uniform vec3 u_eye;
// Fixed light from above and slightly to the side: floors, walls of different orientations and box edges get
// different brightness; the headlight keeps surfaces facing the camera readable.
const vec3 LIGHT = vec3(0.3999, 0.8198, 0.4099);  // unit length
layout(location = LOC_RGB) out vec4 f_rgb;
#endif
#ifdef OUT_DEPTH
layout(location = LOC_DEPTH) out float f_depth;
#endif
#ifdef OUT_SEMANTIC
uniform isampler2D u_sem;  // semantic id of face k at texel (k % SEM_WIDTH, k / SEM_WIDTH)
uniform int u_sem_offset;  // index of the draw call's first face
layout(location = LOC_SEMANTIC) out int f_sem;
#endif
void main() {
#ifdef OUT_RGB
    // Flat face normal from screen-space derivatives: both lie in the triangle's plane, so no per-face vertex
    // copies are needed (indexed drawing keeps llvmpipe's single-threaded vertex stage small).
    vec3 n = normalize(cross(dFdx(v_world), dFdy(v_world)));
    vec3 to_eye = normalize(u_eye - v_world);
    n = dot(n, to_eye) < 0.0 ? -n : n;  // two-sided: light the side the camera sees
    float light = 0.45 + 0.4 * max(dot(n, LIGHT), 0.0) + 0.2 * max(dot(n, to_eye), 0.0);
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
    int face = gl_PrimitiveID + u_sem_offset;
    f_sem = texelFetch(u_sem, ivec2(face % SEM_WIDTH, face / SEM_WIDTH), 0).r;
#endif
}
"""

#: Width in texels of the face -> semantic id lookup texture.
SEM_WIDTH = 4096


def program_defines(modalities: tuple[str, ...], textured: bool) -> str:
    """The ``#version`` line and ``#define``s that specialise both shaders.

    Args:
        modalities: requested modality names, in attachment order (a subset of rgb, depth, semantic).
        textured: whether vertices carry ``in_uv`` and the base colour is multiplied by ``u_tex``.
    """
    lines = ["#version 330", f"#define SEM_WIDTH {SEM_WIDTH}"]
    if textured:
        lines.append("#define TEXTURED")
    for location, name in enumerate(modalities):
        lines.append(f"#define OUT_{name.upper()}")
        lines.append(f"#define LOC_{name.upper()} {location}")
    return "\n".join(lines) + "\n"
