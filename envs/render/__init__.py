"""Rendering for the embedded simulator: headless EGL contexts, cameras, the scene renderer, top-down maps."""

from envs.render.camera import CameraSpec
from envs.render.context import RenderBackendError, create_context
from envs.render.renderer import Renderer
from envs.render.topdown import TopDownMap

__all__ = ["CameraSpec", "Renderer", "RenderBackendError", "TopDownMap", "create_context"]
