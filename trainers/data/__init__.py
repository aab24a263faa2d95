"""Training data: the trajectory store (episodes of poses, expert labels and executed actions)."""

from trainers.data.store import Episode, TrajectoryStore

__all__ = ["Episode", "TrajectoryStore"]
