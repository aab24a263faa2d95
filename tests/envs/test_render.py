"""The EGL renderer on analytic scenes (depth, colour, semantics, orientation, cameras), culling, context."""

import dataclasses
import math
import multiprocessing

import numpy as np
import pytest

from envs.render import CameraSpec, RenderBackendError, Renderer, create_context, culling
from envs.render.context import EGL_PACKAGES
from envs.render.culling import build_chunks
from envs.render.geometry import prepare_batch
from envs.render.uniforms import frame_camera
from envs.scenes.generate import generate_house
from envs.scenes.io import load_scene
from envs.scenes.scene import Scene, SceneMesh
from envs.sim import Simulator

IDENTITY = (0.0, 0.0, 0.0, 1.0)
ORIGIN = (0.0, 0.0, 0.0)
ALL = ("rgb", "depth", "semantic")


def yaw_quat(yaw_deg: float) -> tuple[float, float, float, float]:
    half = math.radians(yaw_deg) / 2
    return (0.0, math.sin(half), 0.0, math.cos(half))


def quad(centre, half_u, half_v, rgb=(200, 200, 200), sem=1, uvs=None, texture=None) -> SceneMesh:
    """A rectangle centre ± half_u ± half_v; corners in order (-u+v), (+u+v), (+u-v), (-u-v)."""
    c, u, v = (np.asarray(a, np.float32) for a in (centre, half_u, half_v))
    verts = np.stack([c - u + v, c + u + v, c + u - v, c - u - v])
    return SceneMesh(
        verts, [[0, 1, 2], [0, 2, 3]], np.tile(rgb, (4, 1)), [sem, sem], uvs=uvs, texture=texture
    )


def box(centre, size, rgb=(200, 200, 200), sem=1) -> SceneMesh:
    """An axis-aligned box (8 shared vertices, 12 faces)."""
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32)
    verts = corners * np.asarray(size, np.float32) / 2 + np.asarray(centre, np.float32)
    faces = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1]]
    faces += [[2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    return SceneMesh(verts, faces, np.tile(rgb, (8, 1)), np.full(12, sem))


def wall(z: float, sem: int = 1, rgb=(200, 200, 200)) -> SceneMesh:
    """A huge wall in the plane z = const, wound counter-clockwise seen from -z (its back faces +z)."""
    return quad((0, 1, z), (60, 0, 0), (0, 60, 0), rgb, sem)


def render(meshes, camera=None, position=ORIGIN, rotation=IDENTITY):
    renderer = Renderer(Scene(list(meshes)))
    try:
        return renderer.render(camera or CameraSpec(modalities=ALL), position, rotation)
    finally:
        renderer.release()


def mask_centroid(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    assert len(rows), "object not visible"
    return float(rows.mean()), float(cols.mean())


# --- depth --------------------------------------------------------------------------------------------------


def test_frontal_wall_depth_is_exact_everywhere_and_is_z_depth():
    cam = CameraSpec(width=97, height=63, modalities=("rgb", "depth"))  # odd sizes: unpadded rows read back
    out = render([wall(-3.0, rgb=(250, 20, 20))], cam)
    depth = out["depth"]
    assert depth.shape == (63, 97, 1) and depth.dtype == np.float32
    assert np.abs(depth - 3.0).max() < 0.01
    # z-depth: the corners (rays 50 degrees off axis, 4.7 m long) read the same as the centre.
    assert abs(float(depth[0, 0, 0]) - float(depth[31, 48, 0])) < 0.005
    rgb = out["rgb"].astype(int)
    assert rgb.shape == (63, 97, 3) and np.all(rgb[..., 0] > 150) and np.all(rgb[..., 1:] < 30)


def test_pitched_down_floor_depth_matches_ray_casting():
    cam = CameraSpec(width=65, height=65, pitch=-30.0, modalities=("depth",))
    depth = render([quad((0, 0, 0), (60, 0, 0), (0, 0, 60))], cam)["depth"][..., 0]
    assert abs(depth[32, 32] - 1.25 / math.sin(math.radians(30))) < 0.01  # the optical axis hits at 2.5 m
    fx, fy, cx, cy = cam.intrinsics()
    jj, ii = np.meshgrid(np.arange(65) + 0.5, np.arange(65) + 0.5)
    rays = np.stack([(jj - cx) / fx, -(ii - cy) / fy, -np.ones_like(jj)], axis=-1)  # camera frame, z = -1
    pitch = math.radians(-30)
    ray_y = rays[..., 1] * math.cos(pitch) - rays[..., 2] * math.sin(pitch)  # world y after pitching about x
    t = np.where(ray_y < 0, 1.25 / -np.minimum(ray_y, -1e-9), np.inf)  # z-depth, as the ray's z is -1
    near = t < 6.0
    assert near.sum() > 1000
    assert np.abs(depth[near] - t[near]).max() < 0.01
    assert np.all(depth[np.isinf(t)] == cam.max_depth)  # above the horizon nothing is hit


def test_depth_is_clipped_to_range_and_misses_read_max_depth():
    cam = CameraSpec(min_depth=0.5, max_depth=4.0, modalities=("depth",))
    assert np.all(render([wall(-0.3)], cam)["depth"] == 0.5)
    assert np.all(render([wall(-20.0)], cam)["depth"] == 4.0)
    assert np.all(render([], cam)["depth"] == 4.0)
    behind = render([wall(3.0)], cam)["depth"]  # the wall is behind the camera
    assert np.all(behind == 4.0)


# --- colour, semantics, orientation -------------------------------------------------------------------------


def test_rgb_shows_the_colour_of_the_box_in_front():
    red = box((0, 1.25, -2), (1, 1, 0.2), rgb=(220, 30, 30), sem=4)
    green = box((0, 1.25, -4), (6, 6, 0.2), rgb=(30, 200, 30), sem=5)
    rgb = render([red, green], CameraSpec(modalities=("rgb",)))["rgb"]
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8
    r, g, b = (int(c) for c in rgb[64, 64])
    assert r > 80 and r > 3 * g and r > 3 * b
    r, g, b = (int(c) for c in rgb[64, 30])  # beside the red box: the green one behind
    assert g > 80 and g > 3 * r
    assert rgb[64, 64].max() <= 220  # shading never brightens beyond the base colour
    assert rgb.std() > 20


def test_semantic_ids_match_the_faces_hit_across_batches():
    texture = np.full((4, 4, 3), 255, np.uint8)
    uvs = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    meshes = [
        quad((0, 0, 0), (60, 0, 0), (0, 0, 60), sem=3),  # floor
        box((-1, 1.25, -3), (1, 1, 1), sem=7),
        quad((1, 1.25, -3), (0.5, 0, 0), (0, 0.5, 0), sem=9, uvs=uvs, texture=texture),  # a textured batch
        box((0, 2.5, -3), (0.4, 0.4, 0.4), sem=11),
    ]
    sem = render(meshes)["semantic"]
    assert sem.shape == (128, 128) and sem.dtype == np.int32
    assert sem[64, 32] == 7 and sem[64, 90] == 9
    assert sem[120, 64] == 3 and sem[10, 64] == 0
    assert set(np.unique(sem)) == {0, 3, 7, 9, 11}


def test_left_and_up_in_the_world_are_left_and_top_in_the_image():
    meshes = [box((-1.5, 1.25, -3), (0.5, 0.5, 0.5), sem=1), box((0, 2.6, -3), (0.5, 0.5, 0.5), sem=2)]
    sem = render(meshes, CameraSpec(modalities=("semantic",)))["semantic"]
    row, col = mask_centroid(sem == 1)
    assert col < 40 and abs(row - 63.5) < 3
    row, col = mask_centroid(sem == 2)
    assert row < 40 and abs(col - 63.5) < 3


def test_positive_yaw_turns_left():
    meshes = [box((-3, 1.25, 0), (0.5, 0.5, 0.5), sem=5)]
    cam = CameraSpec(modalities=("semantic",))
    assert not np.any(render(meshes, cam)["semantic"] == 5)  # at yaw 0 the box is 90 degrees to the left
    row, col = mask_centroid(render(meshes, cam, rotation=yaw_quat(90))["semantic"] == 5)
    assert abs(row - 63.5) < 1 and abs(col - 63.5) < 1


def test_intrinsics_predict_where_a_point_projects():
    cam = CameraSpec(width=160, height=120, hfov=70, pitch=10, modalities=("semantic",))
    position, rotation = (0.5, 0.0, 1.0), yaw_quat(20)
    target = np.array([-0.3, 1.9, -2.5])
    sem = render([box(target, (0.06, 0.06, 0.06), sem=2)], cam, position, rotation)["semantic"]
    p_cam = np.linalg.inv(cam.pose(position, rotation)) @ np.append(target, 1.0)
    fx, fy, cx, cy = cam.intrinsics()
    u, v = cx + fx * p_cam[0] / -p_cam[2], cy - fy * p_cam[1] / -p_cam[2]
    row, col = mask_centroid(sem == 2)
    assert abs(col + 0.5 - u) < 0.75 and abs(row + 0.5 - v) < 0.75
    np.testing.assert_allclose(
        cam.view_matrix(position, rotation), np.linalg.inv(cam.pose(position, rotation)), atol=1e-5
    )


def test_texture_is_sampled_with_gltf_uv_convention():
    texture = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)  # row 0 = top
    uvs = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)  # corners top-left, top-right, ...
    mesh = quad((0, 1.25, -1), (1.01, 0, 0), (0, 1.01, 0), rgb=(255, 255, 255), uvs=uvs, texture=texture)
    rgb = render([mesh], CameraSpec(modalities=("rgb",))).get("rgb")
    quadrants = {(32, 32): 0, (32, 96): 1, (96, 32): 2}  # top-left red, top-right green, bottom-left blue
    for (row, col), channel in quadrants.items():
        pixel = rgb[row, col].astype(int)
        assert pixel[channel] > 150 and np.delete(pixel, channel).max() < 40, ((row, col), pixel)
    assert rgb[96, 96].min() > 150


def test_render_many_returns_each_camera_and_agrees_with_render():
    scene = Scene([wall(-3.0, sem=2), quad((0, 0, 0), (60, 0, 0), (0, 0, 60), sem=3)])
    front = CameraSpec(uuid="front", width=64, height=48, modalities=("rgb", "depth"))
    down = CameraSpec(uuid="down", width=32, height=32, pitch=-60, position=(0, 0.6, 0), modalities=ALL)
    renderer = Renderer(scene)
    out = renderer.render_many([front, down], (0.2, 0, 0.5), yaw_quat(10))
    assert set(out) == {"front", "down"}
    assert set(out["front"]) == {"rgb", "depth"} and set(out["down"]) == set(ALL)
    assert out["front"]["rgb"].shape == (48, 64, 3) and out["down"]["semantic"].shape == (32, 32)
    again = renderer.render(down, (0.2, 0, 0.5), yaw_quat(10))
    for key in ALL:
        np.testing.assert_array_equal(out["down"][key], again[key])
    assert out["down"]["semantic"][16, 16] == 3
    assert out["front"]["depth"][24, 32, 0] == pytest.approx(3.5 / math.cos(math.radians(10)), abs=0.05)
    with pytest.raises(ValueError, match="unique"):
        renderer.render_many([front, front], ORIGIN, IDENTITY)
    renderer.release()


def test_habitat_simple_room_renders_a_real_frame(habitat_scenes):
    scene = load_scene(habitat_scenes / "simple_room.glb")
    floor_y = float(scene.bounds()[0, 1]) + 0.21  # top of the 0.2 m floor slab
    # From a corner of the room, facing the table and the big cube near its centre (yaw -45: towards +x, -z).
    cam = CameraSpec(width=96, height=96, modalities=ALL)
    out = render(scene.meshes, cam, position=(-3.0, floor_y, 3.0), rotation=yaw_quat(-45))
    assert out["rgb"].std() > 20
    depth = out["depth"]
    assert np.all(np.isfinite(depth)) and depth.min() >= cam.min_depth and depth.max() <= cam.max_depth
    hit = depth < cam.max_depth
    assert 0.3 < hit.mean() < 1.0  # the floor and furniture, and empty space above them
    assert depth[hit].min() > 1.0  # nothing within a metre of a camera standing in the open


def test_generated_house_frames_show_structure():
    scene = generate_house(0)
    room = scene.rooms[0]
    x, z = (float(v) for v in room.polygon.mean(axis=0))
    cam = CameraSpec(modalities=ALL)
    renderer = Renderer(scene)
    for yaw in (0, 120, 240):
        out = renderer.render(cam, (x, room.floor_y, z), yaw_quat(yaw))
        assert out["rgb"].std() > 15
        assert np.all(out["depth"] < cam.max_depth)  # indoors every ray hits a wall, floor or ceiling
        assert len(np.unique(out["semantic"])) >= 3 and np.all(out["semantic"] > 0)
    renderer.release()


# --- culling and upload -------------------------------------------------------------------------------------


def _house_poses(scene: Scene, rng: np.random.Generator, n: int) -> list:
    """Random cameras and agent poses: mostly inside the rooms, some outside the house looking anywhere."""
    lo, hi = scene.bounds()
    out = []
    for k in range(n):
        if k % 5 == 4:
            position = rng.uniform(lo - 4.0, hi + 4.0)
        else:
            corners = scene.rooms[rng.integers(len(scene.rooms))].polygon
            position = np.r_[0.0, 0.0, 0.0]
            position[[0, 2]] = rng.uniform(corners.min(axis=0) + 0.2, corners.max(axis=0) - 0.2)
        width, height = (int(v) for v in rng.choice([32, 48, 97, 128], size=2))
        cam = CameraSpec(
            width=width,
            height=height,
            hfov=float(rng.uniform(40.0, 120.0)),
            position=(0.0, float(rng.uniform(0.2, 2.4)), 0.0),
            pitch=float(rng.uniform(-60.0, 60.0)),
            modalities=ALL if k % 3 else ("rgb",),
        )
        out.append((cam, position, yaw_quat(float(rng.uniform(0.0, 360.0)))))
    return out


@pytest.mark.parametrize(("seed", "min_test_faces"), [(0, None), (3, 0)])
def test_culling_never_changes_a_pixel(seed, min_test_faces, monkeypatch):
    # None: a few remaining faces are drawn untested (the default); 0: the occlusion test runs every frame.
    if min_test_faces is not None:
        monkeypatch.setattr(culling, "OCCLUSION_MIN_FACES", min_test_faces)
    scene = generate_house(seed)
    culled, full = Renderer(scene), Renderer(scene, cull=False)
    skipped = 0
    for cam, position, rotation in _house_poses(scene, np.random.default_rng(seed), 150):
        a, b = culled.render(cam, position, rotation), full.render(cam, position, rotation)
        assert set(a) == set(b) == set(cam.modalities)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{key} at {position}, {cam}")
        assert full.stats.triangles == scene.n_triangles
        skipped += full.stats.triangles - culled.stats.triangles
    assert skipped > 0.5 * 150 * scene.n_triangles  # culling does skip most of the house
    culled.release()
    full.release()


def test_single_sided_meshes_skip_back_faces():
    outward = box((0.0, 1.25, -2.0), (0.5, 0.5, 0.5), sem=3)
    inward = dataclasses.replace(outward, faces=outward.faces[:, ::-1])
    away = wall(-4.0, sem=2)
    facing = dataclasses.replace(away, faces=away.faces[:, ::-1])

    def centre_depth(meshes, double_sided):
        out = render([dataclasses.replace(m, double_sided=double_sided) for m in meshes])
        h, w = out["semantic"].shape
        return float(out["depth"][h // 2, w // 2, 0]), set(np.unique(out["semantic"]).tolist())

    # Front faces are drawn either way; an inside-out box shows its far side; a wall seen from behind is gone.
    for double_sided in (True, False):
        depth, seen = centre_depth([outward, facing], double_sided)
        assert depth == pytest.approx(1.75, abs=1e-4) and seen == {2, 3}
    assert centre_depth([inward, facing], True)[0] == pytest.approx(1.75, abs=1e-4)
    assert centre_depth([inward, facing], False)[0] == pytest.approx(2.25, abs=1e-4)
    assert centre_depth([away], True)[1] == {2}
    assert centre_depth([away], False) == (CameraSpec().max_depth, {0})


@pytest.mark.parametrize("seed", [1, 4])
def test_generated_houses_render_the_same_without_back_faces(seed):
    # Generated houses are closed solids wound outward, so skipping back faces (what makes them cheaper)
    # changes nothing but the odd pixel on a seam between two faces that meet without sharing vertices.
    scene = generate_house(seed)
    assert not any(m.double_sided for m in scene.meshes)
    both = Scene([dataclasses.replace(m, double_sided=True) for m in scene.meshes], scene.instances)
    single, double = Renderer(scene), Renderer(both)
    sim = Simulator(scene)
    rng = np.random.default_rng(seed)
    differing, n_frames = [], 120
    for _ in range(n_frames):
        cam = CameraSpec(
            width=96,
            height=96,
            position=(0.0, float(rng.uniform(0.3, 1.5)), 0.0),
            pitch=float(rng.uniform(-30.0, 30.0)),
            modalities=ALL,
        )
        position, rotation = sim.sample_navigable_point(rng), yaw_quat(float(rng.uniform(0.0, 360.0)))
        a, b = single.render(cam, position, rotation), double.render(cam, position, rotation)
        differing.append(int((a["semantic"] != b["semantic"]).sum()))
        np.testing.assert_allclose(a["depth"], b["depth"], atol=0.05 + 0.01 * a["depth"].max())
    assert max(differing) <= 3 and sum(differing) <= 1e-4 * n_frames * 96 * 96, differing
    sim.close()
    single.release()
    double.release()


@pytest.mark.parametrize("test_all", [True, False])
def test_culling_skips_what_is_behind_a_wall_or_the_camera(test_all, monkeypatch):
    if test_all:
        monkeypatch.setattr(culling, "OCCLUSION_MIN_FACES", 0)
    hidden = [box((x, 1.0, -6.0), (0.5, 0.5, 0.5), sem=5) for x in np.linspace(-3, 3, 7)]  # behind the wall
    behind = [box((x, 1.0, 4.0), (0.5, 0.5, 0.5), sem=6) for x in np.linspace(-3, 3, 7)]  # behind the camera
    front = box((0.0, 1.25, -1.0), (0.3, 0.3, 0.3), sem=7)
    scene = Scene([wall(-1.5, sem=2), front, *hidden, *behind])  # nearer than culling.SPLIT: an occluder
    culled, full = Renderer(scene), Renderer(scene, cull=False)
    cam = CameraSpec(modalities=ALL)
    a, b = culled.render(cam, ORIGIN, IDENTITY), full.render(cam, ORIGIN, IDENTITY)
    for key in ALL:
        np.testing.assert_array_equal(a[key], b[key])
    assert set(np.unique(a["semantic"])) == {2, 7}
    assert full.stats.triangles == scene.n_triangles == 2 + 12 * 15
    if test_all:
        assert culled.stats.triangles == 2 + 12  # the wall and the box in front of it
    else:  # too few faces behind the wall to be worth the occlusion test: only the frustum culls
        assert 12 * 7 < culling.OCCLUSION_MIN_FACES
        assert culled.stats.triangles == 2 + 12 + 12 * 7
    culled.release()
    full.release()


def test_frame_camera_matches_camera_spec():
    rng = np.random.default_rng(1)
    for _ in range(20):
        cam = CameraSpec(
            width=int(rng.integers(16, 300)),
            height=int(rng.integers(16, 300)),
            hfov=float(rng.uniform(20, 150)),
            position=tuple(rng.uniform(-0.3, 1.5, 3)),
            pitch=float(rng.uniform(-90, 90)),
        )
        position, rotation = rng.uniform(-5, 5, 3), rng.normal(size=4)
        frame = frame_camera(cam, position, rotation)
        view = cam.view_matrix(position, rotation)
        expected = np.diag([1.0, -1.0, 1.0, 1.0]) @ cam.projection_matrix() @ view  # GL row 0 = image top
        np.testing.assert_allclose(np.array(frame.mvp), expected, rtol=1e-5, atol=1e-5)
        mvp = np.frombuffer(frame.mvp_bytes, np.float32).reshape(4, 4).T  # column-major
        np.testing.assert_allclose(mvp, expected, rtol=1e-5, atol=1e-5)
        eye = np.frombuffer(frame.eye_bytes, np.float32)
        np.testing.assert_allclose(eye, cam.pose(position, rotation)[:3, 3], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="quaternion"):
        frame_camera(CameraSpec(), ORIGIN, (0, 0, 0, 0))
    with pytest.raises(ValueError, match="position"):
        frame_camera(CameraSpec(), (0.0, float("nan"), 0.0), IDENTITY)


def test_prepare_batch_keeps_faces_and_gives_each_its_own_last_vertex():
    rng = np.random.default_rng(2)
    # A fan around one vertex (more faces than vertices there) plus random triangles over a 9 m square.
    fan = [[0, k, k + 1] for k in range(1, 9)]
    faces = np.array(fan + rng.integers(0, 60, (200, 3)).tolist())
    positions = rng.uniform(-4.5, 4.5, (60, 3)).astype(np.float32)
    sem = rng.integers(1, 50, len(faces)).astype(np.int32)
    out = prepare_batch(positions, faces, sem)
    corners = positions[out.vertex_source][out.faces]  # (F, 3, 3) in chunk order
    original = positions[faces][out.chunks.order]
    for k in range(len(faces)):  # the same triangle, corners rotated (winding kept)
        assert any(np.array_equal(corners[k], np.roll(original[k], r, axis=0)) for r in range(3))
    last = out.faces[:, 2]
    assert len(np.unique(last)) == len(faces)
    np.testing.assert_array_equal(out.semantic_ids[last], sem[out.chunks.order])
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    np.testing.assert_allclose(out.normals[last] * lengths, normals, atol=1e-5)
    # Chunks are contiguous, cover every face once, bound their faces, and use their own vertex runs.
    chunks = out.chunks
    np.testing.assert_array_equal(np.sort(chunks.order), np.arange(len(faces)))
    np.testing.assert_array_equal(chunks.first, np.r_[0, np.cumsum(chunks.count)[:-1]])
    runs = []
    for first, count, lo, hi in zip(chunks.first, chunks.count, chunks.lo, chunks.hi, strict=True):
        tri = corners[first : first + count]
        assert np.all(tri >= lo - 1e-6) and np.all(tri <= hi + 1e-6)
        runs.append((out.faces[first : first + count].min(), out.faces[first : first + count].max()))
    assert all(a[1] < b[0] for a, b in zip(runs[:-1], runs[1:], strict=True))
    with pytest.raises(ValueError, match="chunk_size"):
        build_chunks(original, chunk_size=0.0)


# --- CameraSpec validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uuid", ""),
        ("width", 0),
        ("height", 2.5),
        ("hfov", 180.0),
        ("hfov", float("nan")),
        ("position", (0.0, 1.0)),
        ("pitch", 120.0),
        ("min_depth", -1.0),
        ("max_depth", 0.0),
        ("near", 0.0),
        ("far", 0.005),
        ("modalities", ("rgb", "normals")),
        ("modalities", ()),
    ],
)
def test_invalid_camera_spec_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CameraSpec(**{field: value})


def test_camera_spec_intrinsics_and_fov():
    cam = CameraSpec(width=200, height=100, hfov=90)
    fx, fy, cx, cy = cam.intrinsics()
    assert fx == pytest.approx(100.0) and fy == fx and (cx, cy) == (100.0, 50.0)
    assert cam.vfov == pytest.approx(math.degrees(2 * math.atan(0.5)))
    with pytest.raises(ValueError, match="quaternion"):
        cam.view_matrix(ORIGIN, (0, 0, 0, 0))


def test_camera_spec_is_a_structured_config():
    omegaconf = pytest.importorskip("omegaconf")
    schema = omegaconf.OmegaConf.structured(CameraSpec)
    cam = omegaconf.OmegaConf.to_object(
        omegaconf.OmegaConf.merge(schema, {"width": 64, "modalities": ["depth"]})
    )
    assert isinstance(cam, CameraSpec) and cam.width == 64 and cam.modalities == ("depth",)
    with pytest.raises(omegaconf.errors.ConfigKeyError):
        omegaconf.OmegaConf.merge(schema, {"widht": 64})


# --- context ------------------------------------------------------------------------------------------------


def test_context_is_cached_and_bad_devices_fail_clearly(monkeypatch):
    ctx = create_context()
    assert create_context() is ctx and ctx.version_code >= 330
    with pytest.raises(RenderBackendError, match=EGL_PACKAGES) as err:
        create_context(device_index=97)
    assert "97" in str(err.value)
    with pytest.raises(ValueError, match="device_index"):
        create_context(device_index=-1)
    monkeypatch.setenv("NAVGYM_EGL_DEVICE", "98")
    with pytest.raises(RenderBackendError, match="device 98"):
        create_context()


def _forked_child(queue) -> None:
    try:
        create_context()
        queue.put("no error")
    except RenderBackendError as err:
        queue.put(str(err))


def test_forked_child_gets_an_error_instead_of_a_hang():
    create_context()
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    child = fork.Process(target=_forked_child, args=(queue,))
    child.start()
    message = queue.get(timeout=30)
    child.join(timeout=30)
    assert "spawn" in message and "forked" in message
