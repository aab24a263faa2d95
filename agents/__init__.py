"""Navigation agents: the ``Agent`` interface, its registry, baselines and the VLN-CE Seq2Seq / CMA policies.

Importing this package registers every agent: ``make_agent(name)`` for ``expert``, ``random``, ``forward``,
``seq2seq`` and ``cma``.
"""

from agents import cma, expert, seq2seq
from agents.base import AGENTS, NUM_ACTIONS, Agent, load_agent, make_agent
from agents.registry import Registry

__all__ = [
    "AGENTS",
    "NUM_ACTIONS",
    "Agent",
    "Registry",
    "cma",
    "expert",
    "load_agent",
    "make_agent",
    "seq2seq",
]
