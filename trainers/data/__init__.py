"""Training data: the trajectory store (episodes of poses, expert labels and executed actions)."""

from envs.datasets.store import Episode, TrajectoryStore

__all__ = ["Episode", "TrajectoryStore"]
