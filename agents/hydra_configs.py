"""Every registered agent's config dataclass in Hydra's ConfigStore, group ``agent``.

``configs/agent/<name>.yaml`` (``<name>`` = the registry key = ``Agent.name``) extends the schema stored here
as ``agent/<name>_schema``::

    defaults:
      - <name>_schema
      - _self_

so trainers and benchmarks compose ``agent=<name>`` against the agent's own dataclass, and a misspelt key in
the YAML or on the command line fails at composition, naming the key. An agent without such a YAML (one
registered by a ``NAVGYM_PLUGINS`` module) is also stored as ``agent/<name>``, its defaults being the YAML.
Hydra does not call ``__post_init__`` while composing; ``OmegaConf.to_object`` on the composed node builds
the dataclass and runs its checks.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_store import ConfigStore

import agents  # noqa: F401  (registers every agent)
from agents.base import AGENTS

GROUP = "agent"
#: The agent group's YAML files.
AGENT_CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / GROUP


def schema_name(agent_name: str) -> str:
    """ConfigStore name of an agent's schema: ``<name>_schema``."""
    return f"{agent_name}_schema"


def register_agent_configs(cs: ConfigStore | None = None) -> ConfigStore:
    """Store ``agent/<name>_schema`` for every registered agent; returns the ConfigStore.

    Idempotent (storing the same node again replaces it).
    """
    cs = cs or ConfigStore.instance()
    for name in AGENTS.names():
        node = AGENTS.get(name).config_class
        cs.store(group=GROUP, name=schema_name(name), node=node)
        if not (AGENT_CONFIG_DIR / f"{name}.yaml").is_file():
            cs.store(group=GROUP, name=name, node=node)
    return cs


register_agent_configs()
