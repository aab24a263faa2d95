"""Config of the ViPlanner agent (Roth et al. 2024): a small default that trains on a CPU, and the published
sizes (:meth:`ViPlannerConfig.paper`: 360×640 inputs, encoder width 64, decoder 512/256/1024/512/128,
71,045,584 parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from agents.baselines.planner import PlannerConfig


@dataclass
class ViPlannerConfig(PlannerConfig):
    """ViPlanner's settings; fields as :class:`agents.baselines.planner.PlannerConfig`.

    ViPlanner's values (released ``model.yaml``): depth beyond 15 m -> 0, goal clipped to ±10 m (NavDP's
    server) and a goal farther than 15 m brought to 7.5 m.
    """

    name: str = "viplanner"
    max_depth: float = 15.0
    goal_clip: float = 10.0
    max_goal_distance: float | None = 15.0

    def __post_init__(self) -> None:
        if self.name != "viplanner":
            self._fail("name", "'viplanner'")
        super().__post_init__()
