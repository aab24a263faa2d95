"""Navigation agents: the ``Agent`` interface, its registry and every built-in agent.

Importing this package registers the built-in agents (``AGENTS.names()``): ``expert``, ``random`` and
``forward``; the VLN policies ``seq2seq``, ``cma`` and ``rdp``; System 1 ``navdp`` and the System-1 baselines
of ``agents/baselines/``; System 2 ``system2`` and the dual systems ``dual``. Then it imports the modules
named in the environment variable ``NAVGYM_PLUGINS`` (comma-separated importable module names, e.g.
``NAVGYM_PLUGINS=mylab.agents``): such a module defines an :class:`Agent` subclass and registers it with
``@AGENTS.register(name)``; it is then trained and evaluated like the built-in agents (``trainers/run.py
agent=<name>``, its config schema is stored).
"""

import importlib
import os

from agents import cma, expert, navdp, rdp, seq2seq, system2
from agents.base import AGENTS, NUM_ACTIONS, Agent, load_agent, make_agent
from agents.baselines import iplanner, viplanner
from agents.baselines.ddppo import agent as ddppo  # noqa: F401  (registers ddppo)
from agents.baselines.gnm import agent as _gnm  # noqa: F401  (registers gnm)
from agents.baselines.nomad import agent as _nomad  # noqa: F401  (registers nomad)
from agents.baselines.vint import agent as _vint  # noqa: F401  (registers vint)
from agents.dual import agent as _dual_agent  # noqa: F401  (registers ``dual``)
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
    "iplanner",
    "load_agent",
    "load_plugins",
    "make_agent",
    "navdp",
    "rdp",
    "seq2seq",
    "system2",
    "viplanner",
]
