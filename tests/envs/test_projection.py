"""Pixel <-> 3-D projection against the renderer: round trips through rendered depth, visibility, masks."""

import math

import numpy as np
import pytest

from envs.render import CameraSpec, Renderer
from envs.render.projection import back_project, intrinsic_matrix, point_mask, project, visible
from envs.scenes.generate import generate_house


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)])


@pytest.fixture(scope="module")
def house():
    scene = generate_house(3)
    renderer = Renderer(scene)
    yield scene, renderer
    renderer.release()


YAW = 0.7


@pytest.fixture(scope="module")
def pose(house):
    """A navigable pose facing YAW with open floor for 2 m ahead (so the floor there is in sight)."""
    from envs.nav import NavGrid

    grid = NavGrid.from_scene(house[0])
    rng = np.random.default_rng(1)
    ahead = np.array([-math.sin(YAW), 0.0, -math.cos(YAW)])
    for _ in range(1000):
        position = grid.sample_navigable_point(rng)
        if all(grid.is_navigable(position + s * ahead) for s in np.linspace(0.0, 2.0, 41)):
            return position, yaw_quat(YAW)
    raise AssertionError("no pose with 2 m of open floor ahead in the test house")


@pytest.mark.parametrize("pitch", [0.0, -30.0])
def test_back_projected_pixels_project_back_onto_themselves(house, pose, pitch):
    _, renderer = house
    cam = CameraSpec(width=96, height=72, hfov=79.0, pitch=pitch, max_depth=20.0)
    depth = renderer.render(cam, *pose)["depth"][..., 0]
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, cam.height, 50), rng.integers(0, cam.width, 50)
    hit = depth[rows, cols] < cam.max_depth
    rows, cols = rows[hit], cols[hit]
    world = back_project(cam, *pose, rows, cols, depth)
    proj = project(cam, *pose, world)
    assert proj.in_view.all()
    np.testing.assert_array_equal(proj.pixels(), np.stack([rows, cols], 1))
    np.testing.assert_allclose(proj.depth, depth[rows, cols], rtol=1e-5)
    assert visible(proj, depth).all()


def test_a_floor_point_lands_where_the_renderer_draws_it(house, pose):
    """A point on the floor 1.5 m ahead of a 30°-down camera: the rendered depth at its pixel is its depth."""
    _, renderer = house
    position, rotation = pose
    cam = CameraSpec(width=128, height=96, hfov=79.0, pitch=-30.0, max_depth=20.0)
    ahead = np.asarray(position) + 1.5 * np.array([-math.sin(YAW), 0.0, -math.cos(YAW)])
    depth = renderer.render(cam, position, rotation)["depth"][..., 0]
    proj = project(cam, position, rotation, ahead)
    assert proj.in_view[0]
    r, c = proj.pixels()[0]
    assert abs(c - cam.width / 2) <= 1  # straight ahead: the centre column
    # 1.25 m up, 1.5 m ahead, 30° down: z-depth = 1.5 cos30 + 1.25 sin30.
    expected = 1.5 * math.cos(math.radians(30)) + 1.25 * math.sin(math.radians(30))
    assert proj.depth[0] == pytest.approx(expected, abs=1e-6)
    assert depth[r, c] == pytest.approx(expected, abs=0.03)


def test_points_behind_walls_or_the_camera_are_not_visible(house, pose):
    _, renderer = house
    cam = CameraSpec(width=64, height=48, hfov=90.0, max_depth=50.0)
    depth = renderer.render(cam, *pose)["depth"][..., 0]
    rows, cols = np.array([24, 10]), np.array([32, 50])
    near = back_project(cam, *pose, rows, cols, depth)
    behind_surface = back_project(cam, *pose, rows, cols, depth[rows, cols] + 1.0)
    proj = project(cam, *pose, np.concatenate([near, behind_surface]))
    assert visible(proj, depth).tolist() == [True, True, False, False]
    behind_camera = project(
        cam,
        *pose,
        np.asarray(pose[0]) + np.array([0.0, 1.25, 0.0]) + np.array([math.sin(YAW), 0.0, math.cos(YAW)]),
    )
    assert not behind_camera.in_view[0]


def test_intrinsics_and_masks():
    cam = CameraSpec(width=640, height=360, hfov=90.0)
    k = intrinsic_matrix(cam)
    assert k[0, 0] == pytest.approx(320.0) and k[1, 1] == pytest.approx(320.0)
    assert (k[0, 2], k[1, 2]) == (320.0, 180.0)
    proj = project(cam, (0, 0, 0), (0, 0, 0, 1), [[0.0, 1.25, -2.0], [1.0, 1.25, 2.0]])
    assert proj.in_view.tolist() == [True, False]
    assert tuple(proj.pixels()[0]) == (180, 320)
    mask = point_mask(proj, proj.in_view, 360, 640, radius=2)
    assert mask.sum() == 25 and mask[180, 320] == 1


def test_bad_input_is_named():
    cam = CameraSpec(width=8, height=6)
    with pytest.raises(ValueError, match="outside the 6x8 image"):
        back_project(cam, (0, 0, 0), (0, 0, 0, 1), np.array([6]), np.array([0]), np.ones((6, 8)))
    with pytest.raises(ValueError, match=r"\(N, 3\) world points"):
        project(cam, (0, 0, 0), (0, 0, 0, 1), [[1.0, 2.0]])
