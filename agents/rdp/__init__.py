"""Recurrent Diffusion Policy (RDP), the diffusion baseline of VLN-PE (Wang et al. 2025) in InternNav."""

from agents.rdp.agent import RDPAgent
from agents.rdp.config import RDPConfig
from agents.rdp.network import RDPNet

__all__ = ["RDPAgent", "RDPConfig", "RDPNet"]
