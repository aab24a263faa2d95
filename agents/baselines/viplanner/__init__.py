"""ViPlanner (Roth et al. 2024): its network at the published size, its semantic classes and the agent."""

from agents.baselines.viplanner.agent import ViPlannerAgent
from agents.baselines.viplanner.config import ViPlannerConfig

__all__ = ["ViPlannerAgent", "ViPlannerConfig"]
