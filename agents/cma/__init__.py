"""Cross-Modal Attention (CMA) VLN-CE agent (Krantz et al. 2020)."""

from agents.cma.agent import CMAAgent
from agents.cma.config import CMAConfig
from agents.cma.network import CMANet

__all__ = ["CMAAgent", "CMAConfig", "CMANet"]
