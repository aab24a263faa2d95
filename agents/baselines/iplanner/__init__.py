"""iPlanner (Yang et al. 2023): its network at the published size and the agent that plans with it."""

from agents.baselines.iplanner.agent import IPlannerAgent
from agents.baselines.iplanner.config import IPlannerConfig

__all__ = ["IPlannerAgent", "IPlannerConfig"]
