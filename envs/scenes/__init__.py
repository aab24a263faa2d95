"""Scenes of the embedded simulator: the scene model, procedural houses and GLB scene files."""

from envs.scenes.generate import HouseOptions, generate_house
from envs.scenes.io import SceneLoadError, load_scene, save_scene
from envs.scenes.scene import UNLABELLED_ID, Instance, Room, Scene, SceneMesh

__all__ = [
    "UNLABELLED_ID",
    "HouseOptions",
    "Instance",
    "Room",
    "Scene",
    "SceneLoadError",
    "SceneMesh",
    "generate_house",
    "load_scene",
    "save_scene",
]
