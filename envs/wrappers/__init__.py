"""Gymnasium wrappers, one behaviour each."""

from envs.wrappers.drop_text import DropText

__all__ = ["DropText"]
