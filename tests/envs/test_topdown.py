"""Top-down maps of the navigable area with the agent, the goal and paths drawn."""

import math

import numpy as np
import pytest

from envs.render import TopDownMap
from envs.render.topdown import AGENT_RGB, GOAL_RGB, OBSTACLE_RGB


def _room_map() -> TopDownMap:
    grid = np.zeros((40, 60), bool)
    grid[5:35, 5:55] = True
    return TopDownMap(grid, origin=(-3.0, -2.0), cell_size=0.1, scale=3)


def test_topdown_world_to_pixel_and_base_colours():
    tmap = _room_map()
    assert tmap.shape == (120, 180)
    np.testing.assert_allclose(tmap.world_to_pixel([[-3.0, 0.7, -2.0]]), [[1.5, 1.5]])
    np.testing.assert_allclose(tmap.world_to_pixel(np.array([-1.0, 1.0])), [61.5, 91.5])  # (x, z) input
    image = tmap.draw()
    assert image.shape == (120, 180, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == OBSTACLE_RGB and image[60, 90].mean() > 200
    with pytest.raises(ValueError, match="cell_size"):
        TopDownMap(np.ones((3, 3), bool), (0, 0), cell_size=0)
    with pytest.raises(ValueError, match="navigable"):
        TopDownMap(np.ones(3, bool), (0, 0), cell_size=0.1)


def test_topdown_draws_agent_heading_goal_and_paths():
    tmap = _room_map()
    agent = np.array([0.0, 0.0, 0.0])
    col0, row0 = tmap.world_to_pixel(agent)
    for yaw, direction in ((0.0, (0, -1)), (math.pi / 2, (-1, 0)), (-math.pi / 2, (1, 0))):
        image = tmap.draw(agent_position=agent, agent_yaw=yaw)
        rows, cols = np.nonzero(np.all(image == AGENT_RGB, axis=-1))
        # The arrow reaches farther ahead (tip) than behind (base): up for yaw 0, left (-x) for +90 degrees.
        ahead = (cols + 0.5 - col0) * direction[0] + (rows + 0.5 - row0) * direction[1]
        assert ahead.max() > -ahead.min() + 2.0, (yaw, ahead.max(), ahead.min())
    path = np.array([[-2.0, 0, -1.0], [1.0, 0, -1.0], [1.0, 0, 1.0]])
    image = tmap.draw(goal=[1.0, 0.0, 1.0], goal_radius=0.5, paths=[(path, (0, 180, 0))])
    col, row = tmap.world_to_pixel(np.array([-0.5, 0.0, -1.0])).astype(int)
    assert tuple(image[row, col]) == (0, 180, 0)
    col, row = tmap.world_to_pixel(np.array([1.0, 0.0, 1.0])).astype(int)
    assert tuple(image[row, col]) == GOAL_RGB
    col, row = tmap.world_to_pixel(np.array([1.0, 0.0, 1.5])).astype(int)  # on the radius circle
    assert np.any(np.all(image[row - 2 : row + 3, col - 1 : col + 2] == GOAL_RGB, axis=-1))
