"""Navigation on analytic scenes: grid, geodesics against closed-form values, motion, follower."""

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.nav import (
    MOVE_FORWARD,
    STOP,
    TURN_LEFT,
    TURN_RIGHT,
    AgentBody,
    GeodesicSolver,
    NavGrid,
    ShortestPathFollower,
    heading_vector,
    line_of_sight,
    quaternion_from_yaw,
    try_move,
    yaw_from_quaternion,
)
from envs.nav.raycast import free_fraction, traverse, traverse_short
from envs.scenes.generate import generate_house
from envs.scenes.io import load_scene
from envs.scenes.scene import Scene, SceneMesh

CELL = 0.05
RADIUS = 0.1
# Distance from a wall surface to the nearest navigable cell centre, on average over wall positions: the
# wall's cell (half a cell past the surface on average) plus the eroded cells (radius + cell/2 from blocked
# centres).
INFLATION = RADIUS + CELL


# ---------------------------------------------------------------- analytic scenes


def box(x0, x1, y0, y1, z0, z1):
    """Vertices and outward counter-clockwise faces of an axis-aligned box."""
    v = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], np.float32)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([tri for a, b, c, d in quads for tri in ((a, b, c), (a, c, d))])
    tris = v[faces]
    normal = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    inward = (normal * (tris.mean(axis=1) - v.mean(axis=0))).sum(axis=1) < 0
    faces[inward] = faces[inward][:, ::-1]
    return v, faces


def floor(x0, x1, z0, z1, y=0.0):
    """An upward-facing floor quad."""
    v = np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], np.float32)
    return v, np.array([[0, 2, 1], [0, 3, 2]])


def make_scene(parts, name="analytic"):
    meshes = [
        SceneMesh(v, f, np.full((len(v), 3), 128, np.uint8), np.ones(len(f), np.int32)) for v, f in parts
    ]
    return Scene(meshes=meshes, name=name)


def room(width, depth, wall=0.2, height=2.5):
    """A floor [0, width] x [0, depth] enclosed by walls outside it."""
    return [
        floor(0, width, 0, depth),
        box(-wall, 0, 0, height, -wall, depth + wall),
        box(width, width + wall, 0, height, -wall, depth + wall),
        box(0, width, 0, height, -wall, 0),
        box(0, width, 0, height, depth, depth + wall),
    ]


# A 6 x 6 m room cut at z in [2.91, 3.11] by a wall with a door x in [2.51, 3.51] (faces inside cells).
DOOR_WALL = (2.91, 3.11)
DOOR_GAP = (2.51, 3.51)


@functools.cache
def door_grid() -> NavGrid:
    parts = room(6, 6) + [
        box(0, DOOR_GAP[0], 0, 2.5, *DOOR_WALL),
        box(DOOR_GAP[1], 6, 0, 2.5, *DOOR_WALL),
    ]
    return NavGrid.from_scene(make_scene(parts, "door"), cell_size=CELL)


@functools.cache
def door_solver() -> GeodesicSolver:
    return GeodesicSolver(door_grid())


def wrapped_length(a, corners, b, radius):
    """Shortest length from a to b wrapping one way around discs of ``radius`` centred on ``corners`` (x, z).

    Tangent from a to the first disc, arcs and the common tangents between the discs, tangent to b.
    """
    pts = [np.asarray(p, float) for p in (a, *corners, b)]
    legs = [pts[k + 1] - pts[k] for k in range(len(pts) - 1)]
    turn = sum(legs[k][0] * legs[k + 1][1] - legs[k][1] * legs[k + 1][0] for k in range(len(legs) - 1))
    side = math.copysign(1.0, turn)
    d_a, d_b = np.linalg.norm(legs[0]), np.linalg.norm(legs[-1])
    headings = [math.atan2(legs[0][1], legs[0][0]) - side * math.asin(radius / d_a)]
    headings += [math.atan2(leg[1], leg[0]) for leg in legs[1:-1]]
    headings += [math.atan2(legs[-1][1], legs[-1][0]) + side * math.asin(radius / d_b)]
    arcs = sum(
        abs((headings[k + 1] - headings[k] + math.pi) % (2 * math.pi) - math.pi) for k in range(len(legs) - 1)
    )
    straight = math.sqrt(d_a**2 - radius**2) + math.sqrt(d_b**2 - radius**2)
    return straight + sum(np.linalg.norm(leg) for leg in legs[1:-1]) + radius * arcs


def path_length(path: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(path[:, [0, 2]], axis=0), axis=1).sum())


# ---------------------------------------------------------------- body and grid


def test_agent_body_defaults_and_validation():
    body = AgentBody()
    assert (body.radius, body.height, body.max_step, body.max_slope) == (0.1, 1.5, 0.2, 30.0)
    with pytest.raises(ValueError, match="radius"):
        AgentBody(radius=0.0)
    with pytest.raises(ValueError, match="height"):
        AgentBody(height=0.1, max_step=0.2)
    with pytest.raises(ValueError, match="max_slope"):
        AgentBody(max_slope=90.0)
    with pytest.raises(ValueError, match="max_step"):
        AgentBody(max_step=float("nan"))


def test_open_floor_area_is_floor_minus_radius_border():
    grid = NavGrid.from_scene(make_scene([floor(0, 4, 0, 3)]), cell_size=CELL)
    expected = (4 - 2 * RADIUS) * (3 - 2 * RADIUS)
    assert grid.navigable_area_m2 == pytest.approx(expected, rel=0.02)
    assert grid.n_regions == 1 and grid.largest_region == 0
    assert grid.is_navigable([2.0, 0.0, 1.5]) and not grid.is_navigable([0.02, 0.0, 1.5])
    assert not grid.is_navigable([2.0, 0.8, 1.5])  # 0.8 m above the floor


def test_wall_blocks_a_strip_of_its_thickness_plus_two_radii():
    thickness = 0.2
    grid = NavGrid.from_scene(make_scene(room(4, 4) + [box(0, 4, 0, 2.5, 1.91, 1.91 + thickness)]))
    _, j = grid.world_to_cell(np.array([2.0, 0.0, 0.0]))
    column = grid.navigable[:, j]
    i_lo, _ = grid.world_to_cell(np.array([2.0, 0.0, 1.0]))
    i_hi, _ = grid.world_to_cell(np.array([2.0, 0.0, 3.0]))
    blocked = (~column[i_lo:i_hi]).sum() * CELL
    assert thickness + 2 * RADIUS - 1e-6 <= blocked <= thickness + 2 * RADIUS + 2 * CELL + 1e-6
    assert grid.n_regions == 2  # the wall spans the room


def test_table_top_and_legs_block_but_a_high_shelf_does_not():
    legs = [box(x, x + 0.05, 0, 0.72, z, z + 0.05) for x in (1.0, 1.95) for z in (1.0, 1.55)]
    table = legs + [box(1.0, 2.0, 0.72, 0.75, 1.0, 1.6)]
    shelf = [box(x, x + 0.05, 0, 1.8, z, z + 0.05) for x in (3.0, 3.95) for z in (3.0, 3.55)]
    shelf += [box(3.0, 4.0, 1.8, 1.85, 3.0, 3.6)]
    grid = NavGrid.from_scene(make_scene([floor(0, 5, 0, 5), *table, *shelf]), cell_size=CELL)
    assert not grid.is_navigable([1.5, 0.0, 1.3])  # under the table top (0.75 m, inside the body's band)
    assert grid.is_navigable([3.5, 0.0, 3.3])  # under the shelf (1.8 m, above the 1.5 m body)
    assert not grid.is_navigable([3.025, 0.0, 3.025])  # a shelf leg
    assert grid.is_navigable([1.5, 0.0, 0.7]) and grid.is_navigable([2.3, 0.0, 1.3])


def test_ceiling_and_roof_do_not_block_and_steps_below_max_step_are_walkable():
    walls = room(4, 4)
    ceiling = [box(-0.2, 4.2, 2.5, 2.7, -0.2, 4.2)]  # its top is an up-facing face as large as the floor
    rug = [box(1.0, 2.0, 0.0, 0.1, 1.0, 2.0)]  # 0.1 m: stepped onto
    step = [box(2.5, 3.5, 0.0, 0.3, 2.5, 3.5)]  # 0.3 m: an obstacle
    open_grid = NavGrid.from_scene(make_scene(walls))
    grid = NavGrid.from_scene(make_scene(walls + ceiling + rug + step))
    assert grid.is_navigable([1.5, 0.1, 1.5]) and grid.height_at(1.5, 1.5) == pytest.approx(0.1, abs=1e-5)
    assert not grid.is_navigable([3.0, 0.3, 3.0]) and not grid.is_navigable([3.0, 0.0, 3.0])
    assert np.array_equal(grid.navigable, open_grid.navigable & grid.navigable)
    outside = np.ones_like(grid.navigable)
    i, j = np.meshgrid(np.arange(grid.shape[0]), np.arange(grid.shape[1]), indexing="ij")
    centres = grid.cell_to_world(i.ravel(), j.ravel()).reshape(*grid.shape, 3)
    outside &= (np.abs(centres[..., 0] - 3.0) > 0.8) | (np.abs(centres[..., 2] - 3.0) > 0.8)
    assert np.array_equal(grid.navigable[outside], open_grid.navigable[outside])


def test_cliff_blocks_a_sunken_floor():
    parts = [floor(0, 2, 0, 4), floor(2, 4, 0, 4, y=-0.5)]
    grid = NavGrid.from_scene(make_scene(parts), level_y=0.0)
    assert grid.is_navigable([1.0, 0.0, 2.0]) and grid.is_navigable([3.0, -0.5, 2.0])
    assert not grid.is_navigable([2.0, 0.0, 2.0]) and grid.n_regions == 2
    assert (
        grid.region[grid.world_to_cell(np.array([1.0, 0, 2.0]))]
        != grid.region[grid.world_to_cell(np.array([3.0, 0, 2.0]))]
    )


def test_scene_without_navigable_floor_names_the_scene():
    with pytest.raises(ValueError, match="'walls_only'"):
        NavGrid.from_scene(make_scene([box(0, 0.2, 0, 2.5, 0, 4)], "walls_only"))
    with pytest.raises(ValueError, match="'tiny'.*no navigable floor"):
        NavGrid.from_scene(make_scene([floor(0, 0.15, 0, 0.15)], "tiny"))
    with pytest.raises(ValueError, match="'empty'"):
        NavGrid.from_scene(Scene(meshes=[], name="empty"))


def test_cell_queries_round_trip_snap_and_sampling():
    grid = door_grid()
    i, j = np.array([10, 50]), np.array([20, 60])
    world = grid.cell_to_world(i, j)
    assert world.shape == (2, 3) and world.dtype == np.float32
    assert np.array_equal(np.stack(grid.world_to_cell(world)), np.stack([i, j]))
    inside_wall = np.array([1.0, 0.0, 3.0])
    snapped = grid.snap(inside_wall)
    assert grid.is_navigable(snapped) and abs(snapped[0] - 1.0) < CELL and abs(snapped[2] - 3.0) < 0.35
    assert math.isnan(grid.height_at(-5.0, 1.0)) and grid.height_at(1.0, 1.0) == 0.0
    rng = np.random.default_rng(0)
    points = np.stack([grid.sample_navigable_point(rng) for _ in range(200)])
    assert points.dtype == np.float32 and all(grid.is_navigable(p) for p in points)
    assert {grid.region[grid.world_to_cell(p)] for p in points} == {grid.largest_region}
    assert points[:, 2].min() < 2.5 and points[:, 2].max() > 3.5  # both rooms, joined by the door


# ---------------------------------------------------------------- geodesics


def test_geodesic_open_room_is_the_straight_line():
    solver = door_solver()
    a, b = np.array([1.0, 0.0, 1.0]), np.array([5.0, 0.0, 2.2])
    assert solver.geodesic_distance(a, b) == pytest.approx(math.hypot(4.0, 1.2), abs=1e-9)
    assert len(solver.shortest_path(a, b)) == 2
    cell = np.array(door_grid().world_to_cell(np.array([1.0, 0, 1.0])))
    field = solver.distance_field(b)
    assert field[tuple(cell)] == pytest.approx(math.hypot(4.0, 1.2), rel=0.01)


@pytest.mark.parametrize(
    ("a", "b", "corners"),
    [
        ((0.8, 1.0), (5.2, 4.0), [(DOOR_GAP[1], DOOR_WALL[1])]),  # through the door, around one jamb
        ((1.2, 0.8), (1.0, 5.1), [(DOOR_GAP[0], DOOR_WALL[0]), (DOOR_GAP[0], DOOR_WALL[1])]),  # around both
    ],
)
def test_geodesic_through_a_door_matches_the_analytic_path(a, b, corners):
    solver = door_solver()
    a3, b3 = np.array([a[0], 0, a[1]]), np.array([b[0], 0, b[1]])
    expected = wrapped_length(a, corners, b, INFLATION)
    assert solver.geodesic_distance(a3, b3) == pytest.approx(expected, rel=0.03)
    path = solver.shortest_path(a3, b3)
    assert path_length(path) == pytest.approx(expected, rel=0.03)
    assert np.allclose(path[0], a3) and np.allclose(path[-1], b3)
    assert all(line_of_sight(door_grid(), path[k], path[k + 1]) for k in range(len(path) - 1))


def test_geodesic_around_a_wall_end_and_an_l_corridor():
    wall = NavGrid.from_scene(make_scene(room(6, 6) + [box(0, 4.01, 0, 2.5, 2.91, 3.11)]))
    a, b = np.array([1.0, 0, 1.5]), np.array([1.0, 0, 4.5])
    expected = wrapped_length((1.0, 1.5), [(4.01, 2.91), (4.01, 3.11)], (1.0, 4.5), INFLATION)
    solver = GeodesicSolver(wall)
    assert solver.geodesic_distance(a, b) == pytest.approx(expected, rel=0.03)
    assert path_length(solver.shortest_path(a, b)) == pytest.approx(expected, rel=0.03)
    corridor = NavGrid.from_scene(make_scene(room(6, 6) + [box(0, 4.51, 0, 2.5, 1.51, 6.0)]))
    a, b = np.array([0.8, 0, 0.7]), np.array([5.2, 0, 5.3])
    expected = wrapped_length((0.8, 0.7), [(4.51, 1.51)], (5.2, 5.3), INFLATION)
    solver = GeodesicSolver(corridor)
    assert solver.geodesic_distance(a, b) == pytest.approx(expected, rel=0.03)
    assert path_length(solver.shortest_path(a, b)) == pytest.approx(expected, rel=0.03)


def test_unreachable_and_off_grid_are_infinite():
    grid = NavGrid.from_scene(make_scene(room(4, 4) + [box(0, 4, 0, 2.5, 1.91, 2.11)]))
    solver = GeodesicSolver(grid)
    a, b = np.array([1.0, 0, 1.0]), np.array([1.0, 0, 3.0])
    assert solver.geodesic_distance(a, b) == math.inf
    assert solver.shortest_path(a, b).shape == (0, 3)
    assert np.isinf(solver.distance_field(b)[grid.world_to_cell(a)])
    assert solver.geodesic_distance(a, np.array([20.0, 0, 1.0])) == math.inf
    assert solver.geodesic_distance(a, np.array([1.2, 0, 1.1])) == pytest.approx(math.hypot(0.2, 0.1))


def test_distance_fields_are_cached_per_goal():
    solver = GeodesicSolver(door_grid(), cache_size=2)
    goals = [np.array([1.0, 0, 1.0]), np.array([5.0, 0, 5.0]), np.array([1.0, 0, 5.0])]
    first = solver.distance_field(goals[0])
    assert solver.distance_field(goals[0]) is first
    solver.distance_field(goals[1])
    solver.distance_field(goals[2])
    assert solver.distance_field(goals[0]) is not first  # evicted (least recently used)


# ---------------------------------------------------------------- motion


def test_free_move_is_exact_and_a_head_on_move_stops_at_the_wall():
    grid = door_grid()
    start = np.array([1.0, 0.0, 1.0], np.float32)
    end, collided = try_move(grid, start, np.array([0.25, 0.0, 0.0]))
    assert not collided and np.allclose(end, [1.25, 0.0, 1.0], atol=1e-6)
    end, collided = try_move(grid, np.array([1.0, 0.0, 2.6]), np.array([0.0, 0.0, 0.25]))
    assert collided and end[0] == pytest.approx(1.0, abs=1e-4)
    assert grid.is_navigable(end) and DOOR_WALL[0] - INFLATION - CELL < end[2] < DOOR_WALL[0]


def test_diagonal_move_into_a_wall_slides_along_it():
    grid = door_grid()
    start = np.array([1.0, 0.0, 2.65], np.float32)
    end, collided = try_move(grid, start, np.array([0.2, 0.0, 0.2]))
    assert collided and grid.is_navigable(end)
    assert end[0] > 1.0 + 0.19  # it kept moving along the wall (+x) ...
    assert 2.7 < end[2] < 2.8  # ... at the navigable edge, about INFLATION from the wall surface


def _crossed_at_door(p: np.ndarray, q: np.ndarray, budget: float) -> bool:
    """Whether a path from p to q no longer than ``budget`` can cross the line z = 3 in the door."""
    x_cross = p[0] + (q[0] - p[0]) * (3.0 - p[2]) / (q[2] - p[2])
    if DOOR_GAP[0] <= x_cross <= DOOR_GAP[1]:
        return True
    via = min(math.dist(p[[0, 2]], (x, 3.0)) + math.dist((x, 3.0), q[[0, 2]]) for x in DOOR_GAP)
    return via <= budget + 1e-6


@settings(max_examples=60, deadline=None, database=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    moves=st.lists(st.tuples(st.floats(-math.pi, math.pi), st.floats(0.0, 0.4)), min_size=1, max_size=25),
)
def test_random_moves_stay_navigable_and_cross_the_wall_only_at_the_door(seed, moves):
    grid = door_grid()
    position = grid.sample_navigable_point(np.random.default_rng(seed))
    for angle, length in moves:
        disp = length * np.array([math.cos(angle), 0.0, math.sin(angle)])
        new, _ = try_move(grid, position, disp)
        assert grid.is_navigable(new)
        assert np.hypot(*(new - position)[[0, 2]]) <= length + 1e-5
        if (position[2] < 3.0) != (new[2] < 3.0):
            assert _crossed_at_door(position, new, length)
        position = new


@settings(max_examples=200, deadline=None, database=None)
@given(
    x=st.floats(-0.5, 5.5),
    z=st.floats(-0.5, 6.5),
    angle=st.floats(-math.pi, math.pi),
    length=st.floats(0.0, 3.0),
)
def test_scalar_cell_queries_and_the_free_move_shortcut_agree_with_the_traversal(x, z, angle, length):
    grid = door_grid()
    cell = tuple(int(v) for v in grid.world_to_cell(np.array([x, 0.0, z])))
    assert grid.cell_of(x, z) == cell
    assert grid.navigable_at(x, z) == bool(grid.navigable_xz(x, z))
    start, disp = np.array([x, z]), length * np.array([math.cos(angle), math.sin(angle)])
    t, contact, _ = free_fraction(grid, start, disp)
    t_enter, cells, free = traverse(grid, start, start + disp)
    assert (t == 1.0 and contact is None) == bool(free.all())
    # The plain-Python traversal of single moves gives exactly what the numpy one does.
    short = traverse_short(grid, start, start + disp)
    assert short == (t_enter.tolist(), [tuple(c) for c in cells.T.tolist()], free.tolist())


# ---------------------------------------------------------------- follower and yaw


def test_yaw_quaternion_round_trip_and_validation():
    for yaw in np.linspace(-3.0, 3.0, 13):
        assert yaw_from_quaternion(quaternion_from_yaw(yaw)) == pytest.approx(yaw, abs=1e-6)
    assert np.allclose(heading_vector(0.0), [0.0, -1.0]) and np.allclose(heading_vector(math.pi / 2), [-1, 0])
    with pytest.raises(ValueError, match=r"unit norm.*\[0, 0, 0, 2\]"):
        yaw_from_quaternion([0, 0, 0, 2])
    with pytest.raises(ValueError, match="finite"):
        yaw_from_quaternion([0, float("nan"), 0, 1])


def test_follower_turns_towards_the_goal_and_stops_within_the_radius():
    follower = ShortestPathFollower(door_solver())
    here, goal = np.array([1.0, 0, 1.0]), np.array([1.0, 0, 2.0])  # the goal is along +z: yaw pi
    assert follower.next_action(here, math.pi, goal) == MOVE_FORWARD
    assert follower.next_action(here, math.pi - 0.5, goal) == TURN_LEFT
    assert follower.next_action(here, -math.pi + 0.5, goal) == TURN_RIGHT
    assert follower.next_action(here, 0.0, np.array([1.0, 0, 1.3])) == STOP


def test_follower_reaches_goals_through_the_door_without_oscillating():
    grid, solver = door_grid(), door_solver()
    follower = ShortestPathFollower(solver)
    rng = np.random.default_rng(7)
    goal = np.array([4.5, 0.0, 5.0], np.float32)
    step, turn = 0.25, math.radians(15.0)
    for _ in range(12):
        position = grid.sample_navigable_point(rng)
        while position[2] > 2.5:
            position = grid.sample_navigable_point(rng)
        yaw, travelled = float(rng.uniform(-math.pi, math.pi)), 0.0
        geodesic = solver.geodesic_distance(position, goal)
        for _ in range(200):
            action = follower.next_action(position, yaw, goal)
            if action == STOP:
                break
            if action == MOVE_FORWARD:
                new, _ = try_move(grid, position, step * np.insert(heading_vector(yaw), 1, 0.0))
                travelled += float(np.hypot(*(new - position)[[0, 2]]))
                position = new
            else:
                yaw += turn if action == TURN_LEFT else -turn
        assert action == STOP and solver.geodesic_distance(position, goal) < 0.5
        assert travelled <= 1.15 * geodesic


# ---------------------------------------------------------------- real scenes


def test_generated_house_is_one_walkable_region_with_finite_geodesics():
    grid = NavGrid.from_scene(generate_house(1))
    largest = (grid.region == grid.largest_region).sum() * CELL**2
    assert largest > 0.95 * grid.navigable_area_m2  # the rest: islands inside tall closed furniture
    solver, rng = GeodesicSolver(grid), np.random.default_rng(0)
    for _ in range(5):
        a, b = grid.sample_navigable_point(rng), grid.sample_navigable_point(rng)
        assert math.dist(a[[0, 2]], b[[0, 2]]) - 1e-6 <= solver.geodesic_distance(a, b) < math.inf


def test_grid_of_habitat_simple_room_glb(habitat_scenes):
    grid = NavGrid.from_scene(load_scene(habitat_scenes / "simple_room.glb"))
    floor_y = np.nanmedian(grid.floor_y[grid.navigable])
    assert floor_y == pytest.approx(0.145, abs=0.01)  # the top of the floor slab, not its underside
    assert 85.0 < grid.navigable_area_m2 < 10.5 * 10.8  # the floor less its border and the furniture


def test_from_mask_on_habitat_topdown_map(habitat_scenes):
    mask = np.load(habitat_scenes / "17DRP5sb8fy_topdown_binary.npy")
    assert mask.shape == (82, 163) and mask.dtype == bool
    grid = NavGrid.from_mask(mask, origin=(0.0, 0.0), cell_size=0.1, name="17DRP5sb8fy")
    assert grid.n_regions >= 1 and grid.navigable_area_m2 == pytest.approx(mask.sum() * 0.01)
    assert np.array_equal(grid.region >= 0, mask)
    solver, rng = GeodesicSolver(grid), np.random.default_rng(3)
    for _ in range(10):
        a, b = grid.sample_navigable_point(rng), grid.sample_navigable_point(rng)
        distance = solver.geodesic_distance(a, b)
        assert math.isfinite(distance) and distance >= math.dist(a[[0, 2]], b[[0, 2]]) - 1e-6
        path = solver.shortest_path(a, b)
        assert all(line_of_sight(grid, path[k], path[k + 1]) for k in range(len(path) - 1))
        assert path_length(path) <= distance * 1.02 + 0.1
    with pytest.raises(ValueError, match="bool"):
        NavGrid.from_mask(mask.astype(np.uint8))
