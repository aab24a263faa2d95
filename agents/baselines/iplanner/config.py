"""Config of the iPlanner agent (Yang et al. 2023): a small default that trains on a CPU, and the published
sizes (:meth:`IPlannerConfig.paper`: 360×640 input, encoder width 64, decoder 512/256/1024/512/128, 53,326,864
parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from agents.baselines.planner import PlannerConfig


@dataclass
class IPlannerConfig(PlannerConfig):
    """iPlanner's settings; fields as :class:`agents.baselines.planner.PlannerConfig`.

    iPlanner's values: depth beyond 10 m -> 0 (its released agent), goal clipped to ±5 m (NavDP's server),
    no far-goal rule.
    """

    name: str = "iplanner"
    max_depth: float = 10.0
    goal_clip: float = 5.0
    max_goal_distance: float | None = None

    def __post_init__(self) -> None:
        if self.name != "iplanner":
            self._fail("name", "'iplanner'")
        super().__post_init__()
