"""Navigation agents: the ``Agent`` interface, its registry, baselines, the VLN-CE Seq2Seq / CMA policies,
RDP and NavDP.

Importing this package registers every agent: ``make_agent(name)`` for ``expert``, ``random``, ``forward``,
``seq2seq``, ``cma``, ``rdp``, ``navdp``, ``system2`` and ``ddppo``, then the agents of the modules named
in the environment variable ``NAVGYM_PLUGINS`` (comma-separated importable module names, e.g.
``NAVGYM_PLUGINS=mylab.agents``): such a module defines an :class:`Agent` subclass and registers it with
``@AGENTS.register(name)``; it is then trained and evaluated like the built-in agents (``trainers/run.py
agent=<name>``, its config schema is stored).
"""

import importlib
import os

from agents import cma, expert, navdp, rdp, seq2seq, system2
from agents.base import AGENTS, NUM_ACTIONS, Agent, load_agent, make_agent
from agents.baselines.ddppo import agent as ddppo  # noqa: F401  (registers ddppo)
from agents.registry import Registry

PLUGINS_VARIABLE = "NAVGYM_PLUGINS"


def load_plugins(names: str | None = None) -> list[str]:
    """Import the agent modules named in ``names`` (default: ``$NAVGYM_PLUGINS``); returns their names.

    Raises:
        ImportError: a module cannot be imported; the message names it and the variable.
    """
    raw = os.environ.get(PLUGINS_VARIABLE, "") if names is None else names
    modules = [m.strip() for m in raw.split(",") if m.strip()]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ImportError(f"{PLUGINS_VARIABLE}: cannot import agent module {module!r}: {err}") from err
    return modules


load_plugins()

__all__ = [
    "AGENTS",
    "NUM_ACTIONS",
    "Agent",
    "Registry",
    "cma",
    "expert",
    "load_agent",
    "load_plugins",
    "make_agent",
    "navdp",
    "rdp",
    "seq2seq",
    "system2",
]
