"""InternVLA-N1 System 2: a Qwen2.5-VL that answers pixel goals in a look-down image, turns or STOP."""

from agents.system2.agent import System2Agent, System2ItemTransform
from agents.system2.config import System2Config

__all__ = ["System2Agent", "System2Config", "System2ItemTransform"]
