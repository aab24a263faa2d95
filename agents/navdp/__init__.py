"""NavDP, InternVLA-N1's System-1 navigation diffusion policy with a critic (anchors Part A §2.4)."""

from agents.navdp.agent import NavDPAgent
from agents.navdp.config import NavDPConfig

__all__ = ["NavDPAgent", "NavDPConfig"]
