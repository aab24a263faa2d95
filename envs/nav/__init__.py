"""Navigation on an embedded scene: navigability grid, collision with sliding, geodesics, expert actions."""

from envs.nav.follower import MOVE_FORWARD, STOP, TURN_LEFT, TURN_RIGHT, ShortestPathFollower
from envs.nav.geodesic import GeodesicSolver
from envs.nav.geometry import (
    heading_vector,
    quaternion_from_yaw,
    wrap_angle,
    yaw_from_quaternion,
    yaw_of_direction,
)
from envs.nav.grid import AgentBody, NavGrid
from envs.nav.motion import try_move
from envs.nav.raycast import line_of_sight

__all__ = [
    "AgentBody",
    "GeodesicSolver",
    "MOVE_FORWARD",
    "NavGrid",
    "STOP",
    "ShortestPathFollower",
    "TURN_LEFT",
    "TURN_RIGHT",
    "heading_vector",
    "line_of_sight",
    "quaternion_from_yaw",
    "try_move",
    "wrap_angle",
    "yaw_from_quaternion",
    "yaw_of_direction",
]
