"""Encoders shared by the agents: instruction (embedding + LSTM), depth (DD-PPO ResNet) and RGB (ResNet)."""

from agents.encoders.depth import DepthEncoder, ResNetEncoder, load_ddppo_weights
from agents.encoders.instruction import InstructionEncoder, load_glove_embeddings
from agents.encoders.rgb import RGBEncoder, load_torchvision_weights
from agents.encoders.torchvision_resnet import TorchvisionResNet, torchvision_resnet

__all__ = [
    "DepthEncoder",
    "InstructionEncoder",
    "RGBEncoder",
    "ResNetEncoder",
    "TorchvisionResNet",
    "load_ddppo_weights",
    "load_glove_embeddings",
    "load_torchvision_weights",
    "torchvision_resnet",
]
