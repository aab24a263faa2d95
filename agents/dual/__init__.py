"""The dual systems: a frozen System 2 (Qwen2.5-VL) whose latent goal conditions a System-1 trajectory head
(``navdp_async`` or ``nextdit_async``), trained jointly on pixel-goal samples and run asynchronously."""

from agents.dual.config import DualConfig

__all__ = ["DualConfig"]
